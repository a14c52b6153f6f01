"""The progress bar of an epoch (tqdm, on a terminal only)."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, desc: str, enabled: bool | None):
    """A tqdm bar on a terminal (None elsewhere, or without tqdm)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


class EpochBar:
    """An epoch's bar, ``done`` batches already counted (a resumed epoch); without a bar (not a
    terminal, no tqdm, disabled) every method does nothing."""

    def __init__(self, total: int, desc: str, enabled: bool | None, done: int = 0):
        self._bar: Any = progress_bar(total, desc, enabled)
        if self._bar is not None:
            self._bar.update(done)

    def advance(self, loss: float) -> None:
        """One more batch, its loss shown."""
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.3f}")
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def quiet(line: str) -> None:
    """The default ``log`` of the library's training functions: nothing is printed (the
    command line passes ``print``; a caller may pass its own)."""
