"""What a task is: data, a model built from a config, the metrics it reports, the state it saves.

A task is registered by name (``rnnkit.tasks.register_task``); ``rnnkit train NAME`` builds its
flags from the task's two config dataclasses (``Config``: data and task settings; ``ModelConfig``)
plus the shared :class:`~rnnkit.fit.FitConfig`, and ``eval``, ``generate`` and ``predict``
dispatch on the task name stored in the checkpoint.
"""

from __future__ import annotations

import math

import numpy as np


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

    # -- what the CLI shows ----------------------------------------------------------------------
    def after_training(self, model, result, out_dir, samples: int = 5, seed: int = 0) -> None:
        """Print what a person wants to see at the end (samples, examples)."""

    def predict(self, model, inputs: list[str], args) -> int:
        from ..errors import RnnkitError
        raise RnnkitError(f"the {self.name} task has no predict command")

    def generate(self, model, args) -> int:
        from ..errors import RnnkitError
        raise RnnkitError(f"the {self.name} task cannot generate; try predict")


def perplexity_metrics(loss_sum: float, count: int) -> dict:
    v = loss_sum / max(count, 1)
    return {"loss": v, "ppl": math.exp(min(v, 700)) if math.isfinite(v) else math.inf,
            "bits": v / math.log(2)}
