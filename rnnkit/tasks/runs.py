"""A trained model back from its run: :func:`load_model` rebuilds the task (by the name stored in
the checkpoint, from the task registry) and the model. It lives in the tasks layer because it
needs the registry; the task-agnostic reading and checking of a checkpoint is
:mod:`rnnkit.rundir`'s."""

from __future__ import annotations

from pathlib import Path

from ..errors import RnnkitError
from ..rundir import config_from, load_run
from .registry import get_task

__all__ = ["load_model"]


def load_model(path, *, task_overrides: dict | None = None, load_data: bool = True):
    """(task, model, meta, arrays) from a checkpoint or run folder: the task rebuilt from its
    stored config and state (its data prepared), the model from its config and parameters."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    meta, arrays = load_run(path)
    task_cls = get_task(meta["task"])
    tcfg = config_from(task_cls.Config, meta["task_config"], "task_config", path)
    for k, v in (task_overrides or {}).items():
        setattr(tcfg, k, v)
    mcfg = config_from(task_cls.ModelConfig, meta["model_config"], "model_config", path)
    # called before the task (and its data) exists: the checks read only their arguments
    check = task_cls.check_model_config
    check(task_cls, meta["model_config"], meta["param_shapes"])  # type: ignore[arg-type]
    t_arrays = {k[len("task/") :]: v for k, v in arrays.items() if k.startswith("task/")}
    task = task_cls(tcfg, state=(t_arrays, meta.get("task_state") or {}), load_data=load_data)
    model = task.build_model(mcfg, seed=getattr(mcfg, "seed", 0))
    params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
    model.load_state_dict(params)
    states = meta.get("module_state") or {}
    if not isinstance(states, dict):
        raise RnnkitError(f"malformed checkpoint {path}: 'module_state' is not a dict")
    model.load_named_extra_states(states)
    return task, model, meta, arrays
