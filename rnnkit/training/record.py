"""Where a run's outputs go: a run folder (:class:`FolderRecord` over a :class:`RunFolder`, which
:class:`rnnkit.rundir.RunDir` is: ``checkpoint.npz``, ``best.npz``, ``metrics.jsonl``,
``loss.png``; rank 0 alone writes) or memory (:class:`MemoryRecord`: no file is written; the
rows, the last position and the best model's parameters are kept in the object).

The training package does not import :mod:`rnnkit.rundir` (which reads positions with
:mod:`~rnnkit.training.position`): it names what it needs of a run folder in :class:`RunFolder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from . import plots
from .config import FitConfig
from .protocol import Model, TrainTask


class RunFolder(Protocol):
    """The run folder as the trainer uses it (:class:`rnnkit.rundir.RunDir`)."""

    checkpoint: Path
    best: Path
    metrics: Path
    png: Path

    def log(self, row: dict) -> None: ...

    def reset_metrics(self) -> None: ...

    def trim_metrics(self, n_lines: int) -> None: ...

    def save(self, model, task, *, fit_cfg=None, position=None, optim=None, carry=None) -> None: ...

    def save_best(self, model, task, *, fit_cfg=None) -> None: ...

    def last_eval(self) -> dict | None: ...

    def best_eval(self) -> dict | None: ...


class Record(Protocol):
    """What the trainer writes, and reads back at its end."""

    checkpoint: str  # where the position is saved ("" in memory)
    best_path: str  # where the best model is saved ("" in memory)

    def begin(self, metrics_lines: int | None) -> None:
        """A new run (None: forget earlier rows) or a resumed one (keep the first rows)."""
        ...

    def log(self, row: dict) -> None: ...

    def save(
        self, model: Model, task: TrainTask, cfg: FitConfig, position: dict, optim: Any, carry: Any
    ) -> None:
        """The position (:meth:`Position.to_json`), the optimizer's state and the carried state,
        with the model: what a resumed run continues from."""
        ...

    def save_best(self, model: Model, task: TrainTask, cfg: FitConfig) -> None: ...

    def plot(self, task: TrainTask) -> None: ...

    def last_good(self) -> str | None:
        """The checkpoint that stands, if one was written."""
        ...

    def last_eval(self) -> dict | None: ...

    def best_eval(self) -> dict | None: ...


class FolderRecord:
    """A run folder; on ranks other than 0 (``write`` False) nothing is written or read. The
    model must be a :class:`~rnnkit.training.protocol.SavedModel`."""

    def __init__(self, run: RunFolder, write: bool = True):
        self.run, self.write = run, write
        self.checkpoint, self.best_path = str(run.checkpoint), str(run.best)

    def begin(self, metrics_lines: int | None) -> None:
        if metrics_lines is None:
            self.run.reset_metrics()
        else:
            self.run.trim_metrics(metrics_lines)

    def log(self, row: dict) -> None:
        if self.write:
            self.run.log(row)

    def save(self, model, task, cfg, position, optim, carry) -> None:
        if self.write:
            self.run.save(model, task, fit_cfg=cfg, position=position, optim=optim, carry=carry)

    def save_best(self, model, task, cfg) -> None:
        if self.write:
            self.run.save_best(model, task, fit_cfg=cfg)

    def plot(self, task) -> None:
        if self.write:
            plots.plot_metrics(
                self.run.metrics, self.run.png, task.loss_label, f"rnnkit {task.name}"
            )

    def last_good(self) -> str | None:
        return self.checkpoint if self.run.checkpoint.exists() else None

    def last_eval(self) -> dict | None:
        return self.run.last_eval() if self.write else None

    def best_eval(self) -> dict | None:
        return self.run.best_eval() if self.write else None


class MemoryRecord:
    """Training in memory: ``rows`` (what metrics.jsonl would hold), ``position`` (the last saved
    one, as JSON) and ``best_state`` (a copy of the best model's ``state_dict``)."""

    checkpoint = ""
    best_path = ""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.position: dict | None = None
        self.best_state: dict | None = None

    def begin(self, metrics_lines: int | None) -> None:
        self.rows = self.rows[: metrics_lines or 0]

    def log(self, row: dict) -> None:
        self.rows.append(row)

    def save(self, model, task, cfg, position, optim, carry) -> None:
        self.position = position

    def save_best(self, model, task, cfg) -> None:
        self.best_state = {k: v.copy() for k, v in model.state_dict().items()}

    def plot(self, task) -> None:
        pass

    def last_good(self) -> str | None:
        return None

    def last_eval(self) -> dict | None:
        evals = [r for r in self.rows if r.get("kind") == "eval"]
        return evals[-1] if evals else None

    def best_eval(self) -> dict | None:
        best = [r for r in self.rows if r.get("kind") == "eval" and r.get("best")]
        return best[-1] if best else None
