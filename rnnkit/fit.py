"""One training loop for every task: ``fit(task, model, cfg, run)``.

The loop knows nothing of language models, trees or images. It needs

* a **model** (:class:`rnnkit.models.protocol.Model`) with ``loss_and_grads(batch, carry) ->
  StepOut`` (the loss and the gradients of the SUM over the batch, the count the sum is over, and
  any state to carry to the next batch) and ``evaluate(batch, carry) -> StepOut`` (no gradients),
  plus the Module interface (``parameters()``, ``state_dict()``, ``load_state_dict()``);
* a **task** (:class:`rnnkit.training.protocol.TrainTask`, which ``rnnkit.tasks`` implement) with
  ``batches(split, rng)`` (an indexable sequence, so that a position inside an epoch is an
  index), ``carries_state`` (a stream whose state crosses batches), ``summarize(loss_sum, count,
  extra) -> metrics`` and ``state_dict()`` for what it must save (a vocabulary);

and does the rest: the optimizer, the gradient mean over the GLOBAL count (sums over ranks, so
gradient accumulation and data parallelism give the same update), clipping, the NaN/inf stop on
every step, the halve-on-plateau schedule, evaluation, ``metrics.jsonl``, ``loss.png``, the
progress bar, the time budget, Ctrl-C and SIGTERM (both save the position), and exact resume from
``checkpoint.npz``. Stop decisions and sums go through a :class:`~rnnkit.parallel.Comm`, whose
one-process version is trivial.

The loop itself is :class:`rnnkit.training.trainer.Trainer`, in small parts (package
:mod:`rnnkit.training`); this module is its public face, with the names programs import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .parallel import SERIAL, Comm
from .rundir import RunDir

# the names programs import from here (the trainer's parts live in rnnkit.training)
from .training.config import FitConfig, FitResult, TrainingStopped  # noqa: F401
from .training.evaluation import evaluate, evaluate_sums  # noqa: F401
from .training.interrupts import DeferredInterrupt, Interrupted, Stop  # noqa: F401
from .training.plots import plot_metrics  # noqa: F401
from .training.progress import progress_bar, quiet  # noqa: F401
from .training.protocol import Model, TrainTask
from .training.trainer import Trainer  # noqa: F401


def fit(
    task: TrainTask,
    model: Model,
    cfg: FitConfig,
    run: RunDir | None,
    *,
    resume_state: dict | None = None,
    comm: Comm = SERIAL,
    log: Callable[[str], Any] = quiet,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` on ``task``; ``run`` is the (locked) run folder, or None to train in
    memory. ``resume_state`` is the position read from a checkpoint
    (:func:`rnnkit.rundir.resume_state`) to continue exactly. Ctrl-C or SIGTERM save the position
    and raise :class:`Interrupted`; a NaN/inf loss raises :class:`TrainingStopped`."""
    trainer = Trainer(
        task, model, cfg, run, comm, resume_state=resume_state, log=log, progress=progress
    )
    res = trainer.run()
    stop = Stop(res.stopped_by)
    if stop.by_signal:
        raise Interrupted(res.checkpoint, terminated=stop is Stop.TERMINATED)
    return res


def config_dict(cfg) -> dict:
    return asdict(cfg)
