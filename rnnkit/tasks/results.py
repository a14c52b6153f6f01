"""What tasks return to whoever shows them (the command line, a notebook): typed records, no text.

A task's ``after_training`` returns a :class:`Summary` (each task its own subclass, in its own
module: the held-out metrics plus the examples it picked); ``predict`` takes
:class:`PredictOptions` and returns :class:`Predictions`, one row per input, of the row types
below. Formatting them is the application's (``rnnkit.app.report``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Summary",
    "PredictOptions",
    "GenerateOptions",
    "Samples",
    "Predictions",
    "NextTokens",
    "Ranked",
    "Transduced",
    "Captioned",
    "Decoded",
    "TreeLabel",
    "PredictionRow",
]


@dataclass
class Summary:
    """The end of a training run: its last held-out metrics, steps, why it stopped, where the
    checkpoint is. Tasks subclass it with what they show besides (samples, examples)."""

    metrics: dict
    steps: int
    stopped_by: str  # "epochs", "time_budget", ... (rnnkit.fit)
    checkpoint: str

    @staticmethod
    def of(result) -> dict[str, Any]:
        """The four fields from a fit result, as keyword arguments."""
        return dict(
            metrics=result.metrics,
            steps=result.steps,
            stopped_by=result.stopped_by,
            checkpoint=str(result.checkpoint),
        )


@dataclass
class PredictOptions:
    """How ``predict`` answers: ``top`` candidates (ranked outputs), beam width (sequences)."""

    top: int = 5
    beam: int = 1


@dataclass
class GenerateOptions:
    """What ``generate`` samples: ``n`` sentences (word models: from sentence start to end, at
    most ``length`` words) or passages of ``length`` characters, continuing ``prompt``; tokens
    drawn at ``temperature`` among the ``top_k`` likeliest (all when None), the unknown token
    resampled unless ``allow_unk``."""

    n: int = 5
    length: int = 300
    prompt: str = ""
    temperature: float = 0.8
    top_k: int | None = None
    allow_unk: bool = False
    seed: int = 0


@dataclass
class Samples:
    """Generated texts, and the prompt's words the model does not know (read as <unk>)."""

    lines: list[str]
    unknown: list[str] = field(default_factory=list)


@dataclass
class Predictions:
    """The rows of ``predict``, in input order, and what to tell the person beside them."""

    rows: list[PredictionRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "note: ...", "warning: ...", "error: ..."
    failed: int = 0  # inputs the model could not take (their row says so); exit status 1

    @property
    def status(self) -> int:
        return 1 if self.failed else 0


@dataclass
class NextTokens:
    """A language model's likeliest next tokens after ``prompt``, with their probabilities."""

    prompt: str
    candidates: list[tuple[str, float]]


@dataclass
class Ranked:
    """The likeliest outputs for one input (labels, words), with their probabilities."""

    input: str
    candidates: list[tuple[str, float]]


@dataclass
class Transduced:
    """One sequence in, the model's sequence out, and the right answer."""

    input: np.ndarray
    output: np.ndarray
    want: np.ndarray


@dataclass
class Captioned:
    """An image file and the caption the model gives it."""

    path: str
    caption: str


@dataclass
class Decoded:
    """An encoder-decoder's output for one input; None when the input could not be taken."""

    output: str | None


@dataclass
class TreeLabel:
    """A tree model's root label for one input, every class's probability, the gold label."""

    input: str
    label: int
    probs: list[float]
    gold: int | None = None


# one row of ``predict``, of the task's kind
PredictionRow = NextTokens | Ranked | Transduced | Captioned | Decoded | TreeLabel
