"""Ctrl-C and SIGTERM as values: a signal sets a flag, and the loop returns a :class:`Stop` at the
next safe point (after a whole optimizer step, or after an epoch's evaluation and checkpoint),
where the position is consistent and can be saved.

A second Ctrl-C stops at once without saving (the step in progress may be half done). A
``KeyboardInterrupt`` raised by code (or before the handlers are installed) is caught by the
trainer and handled as Ctrl-C. :class:`Interrupted` is what :func:`rnnkit.fit.fit` raises after
saving, so that a program (the command line: exit status 130, or 143 for SIGTERM) stops as it
would on a plain Ctrl-C.
"""

from __future__ import annotations

import enum
import signal
import threading

__all__ = ["Stop", "DeferredInterrupt", "Interrupted", "HardStop"]


class Stop(enum.Enum):
    """Why the loop stopped (the value is :attr:`FitResult.stopped_by`)."""

    EPOCHS = "epochs"
    TIME_BUDGET = "time_budget"
    INTERRUPTED = "interrupted"  # Ctrl-C
    TERMINATED = "terminated"  # SIGTERM

    @classmethod
    def from_code(cls, code: int) -> Stop | None:
        """The stop for a (collective) code of :attr:`DeferredInterrupt.code`."""
        return None if not code else cls.TERMINATED if code >= 2 else cls.INTERRUPTED

    @property
    def by_signal(self) -> bool:
        return self in (Stop.INTERRUPTED, Stop.TERMINATED)


class HardStop(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, without saving."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after saving its position in ``checkpoint``."""

    def __init__(self, checkpoint: str, terminated: bool = False):
        super().__init__(checkpoint)
        self.checkpoint, self.terminated = checkpoint, terminated


class DeferredInterrupt:
    """While entered (in the main thread), Ctrl-C and SIGTERM set :attr:`code` instead of
    raising; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.requested, self.signal = False, None
        self._old: dict = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise HardStop()
        self.requested, self.signal = True, signum

    @property
    def code(self) -> int:
        """0: nothing; 1: Ctrl-C; 2: SIGTERM (summed or maxed over ranks: the largest wins)."""
        return 0 if not self.requested else 2 if self.signal == signal.SIGTERM else 1

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
