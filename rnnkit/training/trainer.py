"""The training loop in parts: :class:`Trainer` ``run()`` = restore, then epochs of steps, each
epoch ending in an evaluation and a save, then the result.

Every part reads and updates one :class:`~rnnkit.training.position.Position`; a stop (the epochs
done, the time budget spent, Ctrl-C, SIGTERM) is a :class:`~rnnkit.training.interrupts.Stop`
returned up the parts, and the only exception that ends training is
:class:`~rnnkit.training.config.TrainingStopped` (a NaN/inf loss or gradient). Stop decisions and
sums go through a :class:`~rnnkit.parallel.Comm`: under ``mpirun`` every rank takes the same
decisions at the same step, riding on the gradients' one Allreduce.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checkpoint import rng_from_json, rng_state_to_json
from ..errors import RnnkitError
from ..optim import Optimizer, make_optimizer
from ..parallel import SERIAL, Comm, rank_generators
from . import evaluation, gradients, schedule
from .config import FitConfig, FitResult
from .interrupts import DeferredInterrupt, HardStop, Stop
from .metrics import eval_line, eval_row, row_metrics, train_row
from .position import Position
from .progress import EpochBar, quiet
from .protocol import Model, StepOut, TrainTask
from .record import FolderRecord, MemoryRecord, Record, RunFolder


class Clock:
    """Seconds of training: this run's, and with those before it (a resumed run's)."""

    def __init__(self, before: float = 0.0):
        self.before, self.t0 = before, time.perf_counter()

    def this_run(self) -> float:
        return time.perf_counter() - self.t0

    def elapsed(self) -> float:
        return self.before + self.this_run()


@dataclass
class StepResult:
    """One optimizer step: the batch's mean loss, the gradient norm before clipping, and the stop
    it ends with (None: go on)."""

    loss: float
    grad_norm: float
    stop: Stop | None = None


class Trainer:
    """Train ``model`` on ``task``: ``Trainer(task, model, cfg, run).run() -> FitResult``.

    ``run`` is the (opened, locked) run folder; None trains in memory (no file is written; the
    rows are in ``trainer.record.rows``). ``resume_state`` is a checkpoint's position
    (:func:`rnnkit.rundir.resume_state`) to continue exactly. ``log`` receives the lines a person
    reads (one per evaluation); ``progress`` shows a bar (None: on a terminal)."""

    def __init__(
        self,
        task: TrainTask,
        model: Model,
        cfg: FitConfig,
        run: RunFolder | None = None,
        comm: Comm = SERIAL,
        *,
        resume_state: dict | None = None,
        log: Callable[[str], Any] = quiet,
        progress: bool | None = None,
    ):
        self.task, self.model, self.cfg, self.comm = task, model, cfg, comm
        self.resume_state, self.log, self.progress = resume_state, log, progress
        self.record: Record = (
            MemoryRecord() if run is None else FolderRecord(run, write=comm.rank == 0)
        )
        self.params = model.parameters()
        self.history: list[dict] = []
        self.interrupt = DeferredInterrupt()  # its code stays 0 until entered and signalled
        self.clock = Clock()
        self.opt: Optimizer
        self.pos: Position

    # -- the whole run -----------------------------------------------------------------------------
    def run(self) -> FitResult:
        """Train to the end of ``cfg.epochs``, the time budget or a signal (positions saved)."""
        self.start()
        stop = self.train()
        if stop.by_signal:
            return self.result(stop, self.history[-1] if self.history else None)
        return self.result(stop, self.last_evaluation())

    def start(self) -> None:
        """Validate, restore (or begin) the position and the optimizer, start the clock."""
        self.cfg.validate()
        self.opt, self.pos = self.restore()
        if self.comm.size > 1:  # dropout: each rank draws its own masks (SeedSequence.spawn)
            rank_generators(self.model, self.cfg.seed, self.comm.rank, self.comm.size)
        self.clock = Clock(self.pos.elapsed)

    def train(self) -> Stop:
        """The epochs, with Ctrl-C and SIGTERM deferred to the next safe point. A
        KeyboardInterrupt raised by code between two safe points is taken as Ctrl-C: the position
        of the last whole step is saved."""
        with self.interrupt:
            try:
                stop = self.epochs()
            except HardStop:  # mid-step: nothing saved, the last checkpoint stands
                raise KeyboardInterrupt() from None
            except KeyboardInterrupt:
                stop = Stop.INTERRUPTED
        if stop.by_signal:
            self.save()
        return stop

    def epochs(self) -> Stop:
        while self.pos.epoch < self.cfg.epochs:
            stop = self.one_epoch()
            if stop is not None:
                return stop
        return Stop.EPOCHS

    # -- restore and save --------------------------------------------------------------------------
    def restore(self) -> tuple[Optimizer, Position]:
        """A new optimizer and position, or those of ``resume_state``."""
        cfg, rs = self.cfg, self.resume_state
        if rs is None:
            opt = make_optimizer(cfg.optimizer, cfg.lr, weight_decay=cfg.weight_decay)
            self.record.begin(None)
            return opt, Position.start(opt.lr, cfg.seed)
        pos = Position.from_json(rs["position"], carry=rs.get("carry"))
        opt = make_optimizer(rs["optim_meta"]["name"], pos.lr)
        opt.load_state_dict(rs["optim_arrays"], rs["optim_meta"])
        opt.lr = pos.lr
        comm = self.comm
        if comm.size > 1 and self.task.carries_state:  # the whole state was saved: this rank's part
            pos.carry = self.task.shard_carry(pos.carry, comm.rank, comm.size)
        self.record.begin(pos.metrics_lines)
        self.log(
            f"resuming from {self.record.checkpoint or 'memory'}: epoch {pos.epoch + 1}, "
            f"batch {pos.batch}, step {pos.step}"
        )
        return opt, pos

    def save(self) -> None:
        """Save the position (collective under mpirun: every rank's block of the carried state;
        the ranks' parameters compared)."""
        comm, carry = self.comm, self.pos.carry
        if comm.size > 1:
            if self.task.carries_state:
                parts = comm.gather(carry)
                carry = self.task.join_carry(parts or []) if comm.rank == 0 else None
            if not comm.check_same(self.params):
                self.log(
                    "rnnkit: warning: the ranks' parameters differ (floating point that differs "
                    "between hosts?); rank 0's are saved"
                )
        self.pos.elapsed = self.clock.elapsed()
        self.opt.lr = self.pos.lr
        optim = self.opt.state_dict()
        self.record.save(self.model, self.task, self.cfg, self.pos.to_json(), optim, carry)

    def log_row(self, row: dict) -> None:
        self.record.log(row)
        self.pos.metrics_lines += 1

    # -- an epoch ----------------------------------------------------------------------------------
    def one_epoch(self) -> Stop | None:
        """The rest of epoch ``pos.epoch`` from batch ``pos.batch``, then its end."""
        pos, cfg = self.pos, self.cfg
        rng = rng_from_json(pos.epoch_rng)
        batches = self.task.batches("train", rng)
        if pos.batch == 0:
            pos.carry = None  # each epoch reads the stream from its start
        enabled = self.progress if self.comm.rank == 0 else False
        bar = EpochBar(len(batches), f"epoch {pos.epoch + 1}/{cfg.epochs}", enabled, pos.batch)
        try:
            for b in range(pos.batch, len(batches)):
                r = self.one_step(batches[b])
                bar.advance(r.loss)
                if r.stop is Stop.TIME_BUDGET:
                    bar.close()
                    # pos.batch == len(batches) is a valid position too: the epoch's end is due
                    self.evaluate(pos.epoch + pos.batch / len(batches), scheduled=False)
                    self.save()
                if r.stop is not None:
                    return r.stop
        finally:
            bar.close()
        return self.end_epoch(rng)

    def end_epoch(self, rng: np.random.Generator) -> Stop | None:
        """The epoch's evaluation (when due), the fixed decay, the next position and its save;
        a signal received meanwhile stops here."""
        pos, cfg = self.pos, self.cfg
        due = schedule.evaluation_due(pos.epoch + 1, cfg)
        if due:  # an interrupt in here resumes at this evaluation (pos.batch: all done)
            self.evaluate(pos.epoch + 1)
        schedule.after_epoch(pos, cfg)
        pos.epoch, pos.batch, pos.carry = pos.epoch + 1, 0, None
        pos.epoch_rng = rng_state_to_json(rng)
        if due:
            self.save()
        return Stop.from_code(self.comm.max(self.interrupt.code))

    # -- a step ------------------------------------------------------------------------------------
    def one_step(self, batch: Any) -> StepResult:
        """One optimizer step on a global batch (this rank's share of it); the time budget and
        the signals are decided with the gradients' sum, so every rank stops at the same step."""
        task, comm, cfg, pos = self.task, self.comm, self.cfg, self.pos
        if comm.size > 1:
            batch = task.shard(batch, comm.rank, comm.size)
        out = self.loss_and_grads(batch)
        grads = out.grads
        assert grads is not None  # checked by loss_and_grads
        over = cfg.time_budget is not None and self.clock.this_run() >= cfg.time_budget
        code = self.interrupt.code
        loss_sum, n, (over, n_int, n_term) = gradients.global_mean(
            grads, out.loss_sum, out.count, comm, (over, code == 1, code == 2)
        )
        loss = loss_sum * (1.0 / max(n, 1))
        norm = gradients.clip(grads, cfg.clip_norm, cfg.clip_value)
        gradients.check_finite(loss, norm, pos.step + 1, pos.epoch + 1, self.record.last_good())
        self.opt.lr = pos.lr
        self.opt.step(self.params, grads)
        self.advance(batch is not None, out, loss_sum, n, norm)
        if over:
            return StepResult(loss, norm, Stop.TIME_BUDGET)
        return StepResult(loss, norm, Stop.from_code(2 if n_term else 1 if n_int else 0))

    def loss_and_grads(self, batch: Any) -> StepOut:
        """The model's sums on this rank's batch; zeros when it has none."""
        with np.errstate(all="ignore"):  # a NaN/inf is reported after the sum, once
            if batch is None:
                zeros = {k: np.zeros_like(p) for k, p in self.params.items()}
                return StepOut(0.0, 0, zeros)
            carry = self.pos.carry if self.task.carries_state else None
            out = self.model.loss_and_grads(batch, carry)
        if out.grads is None:
            raise RnnkitError("the model's loss_and_grads returned no gradients")
        return out

    def advance(self, had_batch: bool, out: StepOut, loss_sum: float, n: int, norm: float) -> None:
        """The position after a whole step, and the training row every ``log_every`` steps."""
        pos = self.pos
        pos.step += 1
        if had_batch:
            pos.carry = out.carry if self.task.carries_state else None
        pos.batch += 1
        pos.running, pos.running_n = pos.running + loss_sum, pos.running_n + n
        if pos.step % self.cfg.log_every == 0:
            mean = pos.running / max(pos.running_n, 1)
            self.log_row(train_row(pos.step, mean, pos.lr, norm, self.clock.elapsed()))
            pos.running, pos.running_n = 0.0, 0

    # -- evaluation and the result -----------------------------------------------------------------
    def evaluate(self, epoch: float, scheduled: bool = True) -> dict:
        """Held-out metrics, logged; when ``scheduled`` (an epoch's end) they also drive the
        learning-rate halving and the best model (the evaluation at a time-budget stop does
        not, so that a resumed run stays exact)."""
        m = evaluation.evaluate(self.task, self.model, "valid", self.comm)
        row = eval_row(m, self.pos.step, epoch, self.pos.lr, self.clock.elapsed())
        if not scheduled:
            row["partial_epoch"] = True
        else:
            out = schedule.after_evaluation(self.pos, m["loss"], self.cfg)
            if out.halved_to is not None:
                row["lr_halved_to"] = out.halved_to
            if out.best:
                row["best"] = True
                self.record.save_best(self.model, self.task, self.cfg)
        self.log_row(row)
        self.history.append(row)
        self.log(eval_line(row))
        self.record.plot(self.task)
        return row

    def last_evaluation(self) -> dict:
        """This run's last evaluation row; if it made none (a finished run resumed), the
        record's; else one made now."""
        if self.history:
            return self.history[-1]
        comm = self.comm
        return comm.bcast(self.record.last_eval() if comm.rank == 0 else None) or self.evaluate(
            self.pos.epoch
        )

    def result(self, stop: Stop, last: dict | None) -> FitResult:
        """The result: ``last`` gives the metrics (empty for a signal before any evaluation)."""
        comm = self.comm
        best = comm.bcast(self.record.best_eval() if comm.rank == 0 else None)
        return FitResult(
            metrics=row_metrics(last) if last else {},
            steps=self.pos.step,
            epochs_done=last["epoch"] if last else self.pos.epoch,
            history=self.history,
            checkpoint=self.record.checkpoint,
            stopped_by=stop.value,
            best=best,
            best_checkpoint=self.record.best_path if best is not None else "",
        )
