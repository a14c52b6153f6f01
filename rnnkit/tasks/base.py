"""What a task is: data, a model built from a config, the metrics it reports, the state it saves.

A task is registered by name (``rnnkit.tasks.register_task``); ``rnnkit train NAME`` builds its
flags from the task's two config dataclasses (``Config``: data and task settings; ``ModelConfig``)
plus the shared :class:`~rnnkit.fit.FitConfig`, and ``eval``, ``generate`` and ``predict``
dispatch on the task name stored in the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import RnnkitError
from .results import GenerateOptions, Predictions, PredictOptions, Samples, Summary


class Task:
    """Base class. Subclasses set ``name``, ``Config``, ``ModelConfig`` and implement the rest."""

    name: str = ""
    Config: type = object
    ModelConfig: type = object
    carries_state: bool = False  # a stream whose recurrent state crosses batches
    loss_label: str = "loss per item (nats)"
    description: str = ""
    # FitConfig fields a resumed run may change (every other flag must match the checkpoint)
    resume_overridable: tuple = ("epochs", "time_budget", "lr", "eval_every", "log_every")
    # FitConfig values this task trains best with (a flag given on the command line wins)
    fit_defaults: dict = {}
    # named sets of flag values (``--preset NAME``); flags given on the command line win
    presets: dict = {}
    # Config fields holding file paths (made absolute before comparing on --resume)
    path_fields: tuple = ("corpus", "valid", "test")
    # the data, of each task's own kind (None before it is read, e.g. sampling from a checkpoint)
    vocab: Any
    train: Any
    valid: Any

    # the default shown in --help where fit_defaults_for makes it depend on other flags
    fit_defaults_shown: dict[str, str] = {}

    @classmethod
    def fit_defaults_for(cls, model_cfg, task_cfg=None) -> dict:
        """The FitConfig defaults for this model (and data) configuration, e.g. a learning rate
        per cell or per level."""
        return dict(cls.fit_defaults)

    def __init__(self, cfg, state: tuple[dict, dict] | None = None, load_data: bool = True):
        """Prepare the data for ``cfg``; ``state`` is what ``state_dict`` saved (a vocabulary),
        given when loading a checkpoint; ``load_data=False`` (with a state): no data, e.g. to
        sample from a trained model."""
        self.cfg = cfg

    def build_model(self, mcfg, seed: int = 0):
        raise NotImplementedError

    def batches(self, split: str, rng: np.random.Generator | None):
        """An indexable sequence of batches; ``rng`` None: the fixed evaluation order."""
        raise NotImplementedError

    def summarize(self, loss_sum: float, count: int, extra: dict) -> dict:
        """Metrics from summed values: always "loss" (per count), plus the task's own."""
        return {"loss": loss_sum / max(count, 1)}

    def state_dict(self) -> tuple[dict, dict]:
        """(arrays, JSON-able meta) the task needs to be rebuilt from a checkpoint."""
        return {}, {}

    def check_model_config(self, mcfg_dict: dict, shapes: dict) -> None:
        """Compare a stored model config with the stored parameter shapes before building."""

    # -- data parallelism (mpirun -n K rnnkit train ...; see rnnkit/parallel.py, docs/mpi.md) -----
    # Contract: every rank builds the same global batch; ``shard`` returns this rank's part, such
    # that the model's SUMS (loss, count, gradients, extra) over the K parts add up to those of
    # the whole batch; ``None`` when the rank gets nothing (it then contributes zeros). Scalars in a
    # batch are passed to every part, so they must not depend on which examples it holds.
    _shard_warned = False

    def shard(self, batch, rank: int, size: int):
        """This rank's share of a global batch (only called with ``size > 1``).

        Default (:func:`rnnkit.parallel.split_batch`): a batch that is an array or a tuple, list
        or dict of arrays is cut into ``size`` contiguous blocks along its batch axis, time-major:
        axis 1 of the (T, B) and (T, B, F) arrays, axis 0 of (B,) ones (lengths, labels); None,
        numbers and strings pass unchanged. A batch it cannot read (objects, nested containers,
        mismatched sizes) is computed whole by rank 0 (correct, not faster; a warning says so),
        except in a task that ``carries_state`` (an error: override ``shard`` and
        ``shard_carry``). Override when your batch axis is elsewhere or examples should be
        dealt otherwise (e.g. balanced by length)."""
        from ..parallel import Unshardable, split_batch

        try:
            return split_batch(batch, rank, size)
        except Unshardable as exc:
            if self.carries_state:
                raise type(exc)(
                    f"the {self.name} task's batches cannot be split across ranks "
                    f"({exc}): give the task shard() and shard_carry() methods, or "
                    f"train it without mpirun"
                ) from None
            if rank == 0 and not self._shard_warned:
                self._shard_warned = True
                import warnings

                warnings.warn(
                    f"rnnkit: the {self.name} task's batches cannot be split ({exc}): "
                    f"rank 0 computes every batch alone (no speed-up from mpirun)",
                    stacklevel=2,
                )
            return batch if rank == 0 else None

    def shard_carry(self, carry, rank: int, size: int):
        """This rank's part of a carried state (``carries_state`` tasks, on resume): by default
        the block of axis 1 (the layers' (L*D, B, H) states, tuples too) matching the columns the
        default ``shard`` gives the rank."""
        from ..parallel import split_state

        return split_state(carry, rank, size)

    def join_carry(self, parts: list):
        """The whole carried state from the ranks' parts in rank order (None for an empty
        part), for the checkpoint: the inverse of ``shard_carry``."""
        from ..parallel import join_state

        return join_state(parts)

    # -- what a person sees (returned as records; rnnkit.app formats them) -----------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> Summary:
        """The summary of a finished run (``result``: the fit result) with up to ``samples``
        held-out examples picked with ``seed``."""
        return Summary(**Summary.of(result))

    def predict(self, model, inputs: list[str], options: PredictOptions) -> Predictions:
        raise RnnkitError(f"the {self.name} task has no predict command")

    def generate(self, model, options: GenerateOptions) -> Samples:
        raise RnnkitError(f"the {self.name} task cannot generate; try predict")


def perplexity_metrics(loss_sum: float, count: int) -> dict:
    v = loss_sum / max(count, 1)
    return {
        "loss": v,
        "ppl": math.exp(min(v, 700)) if math.isfinite(v) else math.inf,
        "bits": v / math.log(2),
    }
