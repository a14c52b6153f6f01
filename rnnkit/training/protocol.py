"""The task contract: what the trainer may ask of a task, and nothing more.

A task (``rnnkit.tasks``) gives the batches of a split as an indexable sequence (so that a position
inside an epoch is an index), says whether its recurrent state crosses batches, turns summed values
into metrics and says what it must save; under ``mpirun`` it also cuts a global batch and a carried
state into the ranks' shares. ``rnnkit.tasks.base.Task`` implements all of it (the sharding by
default). The model contract is :class:`rnnkit.models.protocol.Model`; a model trained into a run
folder is also a :class:`SavedModel` (``rnnkit.Module`` subclasses with a ``config`` are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..models.protocol import Model, StepOut

__all__ = ["TrainTask", "SavedModel", "Model", "StepOut"]


@runtime_checkable
class TrainTask(Protocol):
    """A task as the training loop sees it."""

    name: str  # recorded in the checkpoint, shown in the plot's title
    cfg: Any  # a config dataclass (saved as the checkpoint's ``task_config``)
    carries_state: bool  # a stream: the model's state at the end of a batch starts the next one
    loss_label: str  # the plot's y axis

    def batches(self, split: str, rng: np.random.Generator | None) -> Sequence[Any]:
        """The batches of ``split`` ("train", "valid", ...); ``rng`` None: the fixed order."""
        ...

    def summarize(self, loss_sum: float, count: int, extra: dict) -> dict:
        """Metrics from summed values: always "loss" (``loss_sum / count``), plus the task's."""
        ...

    def state_dict(self) -> tuple[dict, dict]:
        """(arrays, JSON-able meta) the task needs to be rebuilt from a checkpoint."""
        ...

    def shard(self, batch: Any, rank: int, size: int) -> Any:
        """Rank ``rank``'s share of a global batch (None: nothing for it); the model's sums over
        the shares add up to those of the whole batch."""
        ...

    def shard_carry(self, carry: Any, rank: int, size: int) -> Any:
        """Rank ``rank``'s part of a carried state (on resume)."""
        ...

    def join_carry(self, parts: list) -> Any:
        """The whole carried state from the ranks' parts in rank order (for the checkpoint)."""
        ...


@runtime_checkable
class SavedModel(Model, Protocol):
    """A model a checkpoint can hold: its config dataclass (``model_config``) and the state of
    its modules besides the parameters (dropout generators: ``module_state``)."""

    config: Any

    def named_extra_states(self) -> dict: ...
