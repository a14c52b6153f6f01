"""Where training is: the :class:`Position` saved in a checkpoint and read from it, in one place.

A position is taken between two whole optimizer steps (or at an epoch's end), so that a run
continued from it follows the uninterrupted run exactly: the same data order (the epoch's random
generator state), the same next batch, the same learning rate and schedule state, the same
running training loss and the same number of ``metrics.jsonl`` rows. Its JSON form is the
checkpoint's ``position`` (a dict of these field names, unchanged since format version 2, so old
checkpoints resume); the carried recurrent state travels beside it as arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..checkpoint import rng_state_to_json

# (field, type) that a stored position must hold; the rest have defaults (older checkpoints)
_REQUIRED: tuple[tuple[str, type], ...] = (
    ("epoch", int),
    ("batch", int),
    ("step", int),
    ("lr", float),
    ("elapsed", float),
    ("epoch_rng", dict),
)


@dataclass
class Position:
    """The loop's whole state besides the parameters and the optimizer's arrays."""

    lr: float  # the learning rate of the next step (the schedule's state)
    epoch_rng: dict  # the data-order generator at the start of ``epoch`` (JSON state)
    epoch: int = 0  # epochs completed
    batch: int = 0  # the first batch of ``epoch`` not yet applied
    step: int = 0  # optimizer steps taken
    prev_valid: float | None = None  # the last end-of-epoch held-out loss (LR halving)
    best_valid: float | None = None  # the lowest of them (best.npz)
    elapsed: float = 0.0  # seconds of training before this run started
    running: float = 0.0  # training loss summed since the last "train" row
    running_n: int = 0  # ... and its count
    metrics_lines: int = 0  # rows written to metrics.jsonl
    carry: Any = field(default=None, repr=False)  # the state carried into ``batch`` (streams)

    @classmethod
    def start(cls, lr: float, seed: int) -> Position:
        """The position of a new run."""
        return cls(lr=float(lr), epoch_rng=rng_state_to_json(np.random.default_rng(seed)))

    # -- the checkpoint's form: written and read here only ----------------------------------------
    def to_json(self) -> dict:
        """The checkpoint's ``position`` (everything but the carried state)."""
        d = asdict(self)
        del d["carry"]
        return d

    @classmethod
    def from_json(cls, d: dict, carry: Any = None) -> Position:
        """The position stored by :meth:`to_json` (checked with :func:`problem`); keys an older
        rnnkit did not write take their defaults."""
        known = {f.name for f in fields(cls)} - {"carry"}
        return cls(**{k: v for k, v in d.items() if k in known}, carry=carry)


def problem(d: Any) -> str | None:
    """What is wrong with a stored position (None: it can be read)."""
    if not isinstance(d, dict):
        return "'position' is not a dict"
    for k, want in _REQUIRED:
        v = d.get(k)
        ok = isinstance(v, want) or (want is float and isinstance(v, int))
        negative = want in (int, float) and isinstance(v, (int, float)) and v < 0
        if not ok or isinstance(v, bool) or negative:
            return f"position {k!r} is {v!r}"
    return None
