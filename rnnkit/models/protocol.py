"""The model contract: what the training loop, evaluation and every task may ask of a model.

It lives at the bottom of the models layer so that a model depends on nothing above it (no model
imports the trainer); the trainer (``rnnkit.fit``) and the tasks import it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class StepOut:
    """What a model returns for one batch: sums, not means."""

    loss_sum: float
    count: int
    grads: dict | None = None  # dotted name -> gradient of loss_sum
    carry: Any = None  # state handed to the next batch (streams), else None
    extra: dict = field(default_factory=dict)  # summable counts for metrics (correct, total...)


@runtime_checkable
class Model(Protocol):
    """A trainable model: the loss and gradients of the SUM over a batch, and the Module
    interface the trainer uses for the optimizer and checkpoints (``rnnkit.Module`` has it)."""

    def loss_and_grads(self, batch: Any, carry: Any = None) -> StepOut:
        """The summed loss, its gradients (dotted names, as ``named_parameters``), the count."""
        ...

    def evaluate(self, batch: Any, carry: Any = None) -> StepOut:
        """The summed loss and metric counts without gradients."""
        ...

    def parameters(self) -> dict[str, np.ndarray]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...
