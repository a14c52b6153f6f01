"""What the trainer is told (:class:`FitConfig`, the same for every task), what it returns
(:class:`FitResult`) and the one error that ends training (:class:`TrainingStopped`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import RnnkitError, check_ints


class TrainingStopped(RnnkitError):
    """Training could not go on (a NaN/inf loss); the message names the last good checkpoint."""

    collective = True  # decided on the summed loss and gradients: every rank raises it at once


@dataclass
class FitConfig:
    """How to train; the same for every task."""

    optimizer: str = field(
        default="adam",
        metadata={
            "help": "sgd | adagrad | rmsprop | adam",
            "choices": ["sgd", "adagrad", "rmsprop", "adam"],
        },
    )
    lr: float = field(default=3e-3, metadata={"help": "learning rate"})
    weight_decay: float = field(
        default=0.0, metadata={"help": "L2 penalty (coupled, as torch.optim)"}
    )
    clip_norm: float | None = field(
        default=5.0, metadata={"help": "clip the global gradient norm (none: off)"}
    )
    clip_value: float | None = field(
        default=None, metadata={"help": "clip each gradient entry to [-V, V]"}
    )
    epochs: int = field(default=20, metadata={"help": "passes over the training data"})
    time_budget: float | None = field(
        default=None,
        metadata={
            "help": "stop after this many seconds of training (checkpointed; --resume goes on)"
        },
    )
    eval_every: int = field(default=1, metadata={"help": "epochs between held-out evaluations"})
    halve_lr: bool = field(
        default=True,
        metadata={
            "help": "halve the learning rate when the held-out loss goes up",
            "negative": "--no-lr-halving",
        },
    )
    lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "multiply the learning rate by this after each epoch from --lr-decay-start on"
        },
    )
    lr_decay_start: int = field(
        default=1, metadata={"help": "the first epoch after which --lr-decay applies"}
    )
    seed: int = field(default=0, metadata={"help": "random seed (data order, initialisation)"})
    log_every: int = field(
        default=50, metadata={"help": "steps between training-loss rows in metrics.jsonl"}
    )

    def validate(self) -> FitConfig:
        check_ints(self, ("epochs", "eval_every", "log_every"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise RnnkitError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.lr_decay is not None and not (
            isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1
        ):
            raise RnnkitError(f"--lr-decay must be in (0, 1], got {self.lr_decay!r}")
        if (
            isinstance(self.lr_decay_start, bool)
            or not isinstance(self.lr_decay_start, int)
            or self.lr_decay_start < 1
        ):
            raise RnnkitError(
                f"--lr-decay-start must be an integer >= 1, got {self.lr_decay_start!r}"
            )
        for name in ("lr", "time_budget", "clip_norm", "clip_value"):
            v = getattr(self, name)
            if v is None and name != "lr":
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not (math.isfinite(v) and v > 0)
            ):
                raise RnnkitError(
                    f"--{name.replace('_', '-')} must be a positive number, got {v!r}"
                )
        if not isinstance(self.weight_decay, (int, float)) or not (self.weight_decay >= 0):
            raise RnnkitError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in ("sgd", "adagrad", "rmsprop", "adam"):
            raise RnnkitError(f"unknown optimizer {self.optimizer!r}")
        return self


@dataclass
class FitResult:
    """What a training run ended with. ``stopped_by`` is ``epochs``, ``time_budget``,
    ``interrupted`` (Ctrl-C) or ``terminated`` (SIGTERM); ``checkpoint`` and ``best_checkpoint``
    are empty when training ran in memory (no run folder); ``metrics`` is empty when a signal
    stopped the run before its first evaluation."""

    metrics: dict  # the last evaluation's metrics (task-specific keys, "loss" always)
    steps: int
    epochs_done: float
    history: list = field(default_factory=list)
    checkpoint: str = ""
    stopped_by: str = "epochs"  # epochs | time_budget | interrupted | terminated
    best: dict | None = None  # the evaluation row of the lowest held-out loss (saved as best.npz)
    best_checkpoint: str = ""
