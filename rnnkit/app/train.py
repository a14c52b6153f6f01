"""``rnnkit train TASK``: build or resume a run from the flags, train it, show what it learnt."""

from __future__ import annotations

import os
import sys

from ..errors import RnnkitError
from .flags import given
from .report import summary_lines


def check_resume_flags(task_cls, a, meta: dict) -> None:
    """A flag given with --resume must agree with the checkpoint (or be one that may change)."""
    stored = {
        "task": meta["task_config"],
        "model": meta["model_config"],
        "fit": meta.get("fit") or {},
    }
    allowed = set(task_cls.resume_overridable)
    for name, section in a._dests.items():
        if not hasattr(a, name) or (section == "fit" and name in allowed):
            continue
        value, have = getattr(a, name), stored[section].get(name)
        if name in task_cls.path_fields and value is not None:
            value = os.path.abspath(value)
        if value != have:
            flag = "--" + name.replace("_", "-")
            raise RnnkitError(
                f"{flag} {value} differs from the checkpoint's {have}: a resumed run "
                f"keeps its model, data and training settings (only "
                f"{', '.join('--' + x.replace('_', '-') for x in sorted(allowed))} may change)"
            )


def _resumed(a, task_cls, run, out: str):
    """(task, model, fit config, resume state) of the run in ``out``."""
    from ..fit import FitConfig
    from ..rundir import config_from, resume_state
    from ..tasks.runs import load_model

    if not run.checkpoint.exists():
        raise RnnkitError(f"nothing to resume: {run.checkpoint} does not exist")
    task, model, meta, arrays = load_model(run.checkpoint)
    if meta["task"] != a.task:
        raise RnnkitError(f"{out} holds a {meta['task']} run, not {a.task}")
    check_resume_flags(task_cls, a, meta)
    fit_cfg = config_from(FitConfig, meta.get("fit") or {}, "fit")
    for k, v in given(a, a._dests, "fit").items():
        setattr(fit_cfg, k, v)
    rs = resume_state(meta, arrays)
    if hasattr(a, "lr"):
        rs["position"]["lr"] = a.lr
    return task, model, fit_cfg, rs


def _fresh_configs(a, task_cls):
    """(task config, model config, fit config) from the flags, the task's defaults elsewhere."""
    from ..fit import FitConfig

    tcfg = task_cls.Config(**given(a, a._dests, "task"))
    mcfg = task_cls.ModelConfig(**given(a, a._dests, "model"))
    defaults = task_cls.fit_defaults_for(mcfg, tcfg)
    fit_cfg = FitConfig(**{**defaults, **given(a, a._dests, "fit")}).validate()
    if hasattr(tcfg, "seed"):
        tcfg.seed = fit_cfg.seed
    return tcfg, mcfg, fit_cfg


def _prepare(a, task_cls, run, out: str, comm):
    """Open the run folder and build (or restore) what it trains, on every rank together."""
    with comm.collective_errors():  # an error on any rank stops every rank, with its message
        if a.resume and a.overwrite:
            raise RnnkitError("--resume and --overwrite exclude each other")
        if a.resume:
            task, model, fit_cfg, rs = _resumed(a, task_cls, run, out)
        else:
            tcfg, mcfg, fit_cfg = _fresh_configs(a, task_cls)
            rs = None
        run.open(resume=a.resume, overwrite=a.overwrite)  # lock, refuse to overwrite
        if not a.resume:
            task = task_cls(tcfg)  # Ctrl-C here saves nothing, and says so
            model = task.build_model(mcfg, seed=fit_cfg.seed)
    return task, model, fit_cfg, rs


def _report(a, task, model, res, fit_cfg) -> None:
    for line in summary_lines(
        task.after_training(model, res, samples=a.samples, seed=fit_cfg.seed)
    ):
        print(line, flush=True)
    b, h = res.best, res.history
    if b is not None and (not h or (b["step"], b["epoch"]) != (h[-1]["step"], h[-1]["epoch"])):
        print(
            f"lowest held-out loss at an epoch's end {b['valid_loss']:.4g}, epoch "
            f"{b['epoch']:g} (the last: {res.metrics['loss']:.4g}): that model is "
            f"{res.best_checkpoint}, for eval and predict"
        )


def cmd_train(a) -> int:
    from ..fit import Interrupted, fit
    from ..parallel import world
    from ..rundir import RunDir
    from ..tasks import get_task

    comm = world()  # one process, or the K ranks of mpirun (docs/mpi.md)
    task_cls = get_task(a.task)
    if getattr(a, "preset", None) and not a.resume:  # the preset's values where no flag was given
        for k, v in task_cls.presets[a.preset].items():
            if not hasattr(a, k):
                setattr(a, k, v)
    out = getattr(a, "out", f"runs/{a.task}")
    run = RunDir(out, rank=comm.rank)
    try:
        task, model, fit_cfg, rs = _prepare(a, task_cls, run, out, comm)
        try:
            res = fit(
                task,
                model,
                fit_cfg,
                run,
                resume_state=rs,
                progress=a.progress,
                comm=comm,
                log=print,
            )
        except Interrupted as exc:
            why = "terminated" if exc.terminated else "interrupted"
            if comm.rank == 0:
                print(
                    f"rnnkit: {why}; the position is saved in {exc.checkpoint}: continue with  "
                    f"rnnkit train {a.task} --out {out} --resume",
                    file=sys.stderr,
                )
            return 143 if exc.terminated else 130
        if comm.rank == 0:
            _report(a, task, model, res, fit_cfg)
    finally:
        run.close()
    return 0
