"""One training loop for every task: ``fit(task, model, cfg, out)``.

The loop knows nothing of language models, trees or images. It needs

* a **model** with ``loss_and_grads(batch, carry) -> StepOut`` (the loss and the gradients of the
  SUM over the batch, the count the sum is over, and any state to carry to the next batch) and
  ``evaluate(batch, carry) -> StepOut`` (no gradients), plus the Module interface
  (``parameters()``, ``state_dict()``, ``load_state_dict()``);
* a **task** (``rnnkit.tasks``) with ``batches(split, rng)`` (an indexable sequence, so that a
  position inside an epoch is an index), ``carries_state`` (a stream whose state crosses batches),
  ``summarize(loss_sum, count, extra) -> metrics`` and ``state_dict()`` for what it must save
  (a vocabulary);

and does the rest: the optimizer, the gradient mean over the GLOBAL count (sums over ranks, so
gradient accumulation and data parallelism give the same update), clipping, the NaN/inf stop on
every step, the halve-on-plateau schedule, evaluation, ``metrics.jsonl``, ``loss.png``, the
progress bar, the time budget, Ctrl-C and SIGTERM (both save the position), and exact resume from
``checkpoint.npz``. Stop decisions and sums go through a :class:`~rnnkit.parallel.Comm`, whose
one-process version is trivial.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import rng_from_json, rng_state_to_json
from .errors import RnnkitError, check_ints
from .models.protocol import StepOut
from .optim import clip_grad_norm, clip_grad_value, make_optimizer
from .parallel import SERIAL, Comm, rank_generators
from .rundir import RunDir


class TrainingStopped(RnnkitError):
    """Training could not go on (a NaN/inf loss); the message names the last good checkpoint."""

    collective = True  # decided on the summed loss and gradients: every rank raises it at once


@dataclass
class FitConfig:
    """How to train; the same for every task."""

    optimizer: str = field(
        default="adam",
        metadata={
            "help": "sgd | adagrad | rmsprop | adam",
            "choices": ["sgd", "adagrad", "rmsprop", "adam"],
        },
    )
    lr: float = field(default=3e-3, metadata={"help": "learning rate"})
    weight_decay: float = field(
        default=0.0, metadata={"help": "L2 penalty (coupled, as torch.optim)"}
    )
    clip_norm: float | None = field(
        default=5.0, metadata={"help": "clip the global gradient norm (none: off)"}
    )
    clip_value: float | None = field(
        default=None, metadata={"help": "clip each gradient entry to [-V, V]"}
    )
    epochs: int = field(default=20, metadata={"help": "passes over the training data"})
    time_budget: float | None = field(
        default=None,
        metadata={
            "help": "stop after this many seconds of training (checkpointed; --resume goes on)"
        },
    )
    eval_every: int = field(default=1, metadata={"help": "epochs between held-out evaluations"})
    halve_lr: bool = field(
        default=True,
        metadata={
            "help": "halve the learning rate when the held-out loss goes up",
            "negative": "--no-lr-halving",
        },
    )
    lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "multiply the learning rate by this after each epoch from --lr-decay-start on"
        },
    )
    lr_decay_start: int = field(
        default=1, metadata={"help": "the first epoch after which --lr-decay applies"}
    )
    seed: int = field(default=0, metadata={"help": "random seed (data order, initialisation)"})
    log_every: int = field(
        default=50, metadata={"help": "steps between training-loss rows in metrics.jsonl"}
    )

    def validate(self) -> FitConfig:
        check_ints(self, ("epochs", "eval_every", "log_every"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise RnnkitError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.lr_decay is not None and not (
            isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1
        ):
            raise RnnkitError(f"--lr-decay must be in (0, 1], got {self.lr_decay!r}")
        if (
            isinstance(self.lr_decay_start, bool)
            or not isinstance(self.lr_decay_start, int)
            or self.lr_decay_start < 1
        ):
            raise RnnkitError(
                f"--lr-decay-start must be an integer >= 1, got {self.lr_decay_start!r}"
            )
        for name in ("lr", "time_budget", "clip_norm", "clip_value"):
            v = getattr(self, name)
            if v is None and name != "lr":
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not (math.isfinite(v) and v > 0)
            ):
                raise RnnkitError(
                    f"--{name.replace('_', '-')} must be a positive number, got {v!r}"
                )
        if not isinstance(self.weight_decay, (int, float)) or not (self.weight_decay >= 0):
            raise RnnkitError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in ("sgd", "adagrad", "rmsprop", "adam"):
            raise RnnkitError(f"unknown optimizer {self.optimizer!r}")
        return self


@dataclass
class FitResult:
    metrics: dict  # the last evaluation's metrics (task-specific keys, "loss" always)
    steps: int
    epochs_done: float
    history: list = field(default_factory=list)
    checkpoint: str = ""
    stopped_by: str = "epochs"  # epochs | time_budget
    best: dict | None = None  # the evaluation row of the lowest held-out loss (saved as best.npz)
    best_checkpoint: str = ""


class _HardStop(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, without saving (the step in progress may be half done)."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C (the position is saved)."""


class _BudgetSpent(Exception):
    pass


class DeferredInterrupt:
    """Ctrl-C or SIGTERM during training sets a flag; the loop stops at the next safe point
    (after a whole optimizer step, or after an evaluation and its checkpoint). A second Ctrl-C
    stops at once without saving."""

    def __init__(self):
        self.requested, self.signal, self._old = False, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise _HardStop()
        self.requested, self.signal = True, signum

    @property
    def code(self) -> int:
        """0: nothing; 1: Ctrl-C; 2: SIGTERM (the largest over ranks wins)."""
        return 0 if not self.requested else 2 if self.signal == signal.SIGTERM else 1

    @staticmethod
    def stop(code: int) -> None:
        """Raise for a (collective) code from :attr:`code`."""
        if code:
            raise _Terminated() if code >= 2 else KeyboardInterrupt()

    def check(self, comm: Comm = SERIAL) -> None:
        self.stop(comm.max(self.code))

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        return False


def plot_metrics(metrics_path, png_path, ylabel: str = "loss", title: str = "rnnkit") -> bool:
    """Training and held-out loss against steps as a PNG (matplotlib's object API and an Agg
    canvas: no global backend switch); False when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    rows = [
        json.loads(ln)
        for ln in Path(metrics_path).read_text(encoding="utf-8").splitlines()
        if ln.strip()
    ]
    tr = [(r["step"], r["train_loss"]) for r in rows if r.get("kind") == "train"]
    va = [(r["step"], r["valid_loss"]) for r in rows if r.get("kind") == "eval"]
    fig = Figure(figsize=(7, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if tr:
        ax.plot(*zip(*tr), lw=1, alpha=0.7, label="training (running mean)")
    if va:
        ax.plot(*zip(*va), "o-", lw=2, label="held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if tr or va:
        ax.legend()
    fig.tight_layout()
    tmp = str(png_path) + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, png_path)
    return True


def progress_bar(total: int, desc: str, enabled: bool | None):
    """A tqdm bar on a terminal (None elsewhere, or without tqdm)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v) or abs(v) >= 1e6:
            return f"{v:.4g}"
        return f"{v:.4f}"
    return str(v)


def evaluate(task, model, split: str = "valid", comm: Comm = SERIAL) -> dict:
    """The task's metrics on a split (no gradients): loss per count and the task's own."""
    return task.summarize(*evaluate_sums(task, model, split, comm))


def evaluate_sums(
    task, model, split: str = "valid", comm: Comm = SERIAL
) -> tuple[float, int, dict]:
    """(loss_sum, count, summed extra) over a split, without gradients."""
    model.eval()
    total, count, carry = 0.0, 0, None
    extra: dict[str, Any] = {}
    try:
        for batch in task.batches(split, None):
            if comm.size > 1:  # each rank evaluates its share; the sums are combined below
                batch = task.shard(batch, comm.rank, comm.size)
                if batch is None:
                    continue
            r = model.evaluate(batch, carry if task.carries_state else None)
            total, count = total + r.loss_sum, count + r.count
            for k, v in (r.extra or {}).items():
                extra[k] = extra.get(k, 0) + v
            carry = r.carry
    finally:
        model.train()
    return comm.sum_values(total, count, extra)


def fit(
    task,
    model,
    cfg: FitConfig,
    run: RunDir,
    *,
    resume_state: dict | None = None,
    comm: Comm = SERIAL,
    log=print,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` on ``task``; ``run`` is the (locked) run folder. ``resume_state`` is the
    position read from a checkpoint (``RunDir.load``) to continue exactly."""
    cfg.validate()
    params = model.parameters()
    if resume_state is None:
        opt = make_optimizer(cfg.optimizer, cfg.lr, weight_decay=cfg.weight_decay)
        epoch, batch0, step = 0, 0, 0
        epoch_rng_state = rng_state_to_json(np.random.default_rng(cfg.seed))
        prev_valid = best_valid = None
        elapsed0, running, run_n, n_lines, carry = 0.0, 0.0, 0, 0, None
        run.reset_metrics()
    else:
        rs = resume_state
        pos = rs["position"]
        opt = make_optimizer(rs["optim_meta"]["name"], pos["lr"])
        opt.load_state_dict(rs["optim_arrays"], rs["optim_meta"])
        opt.lr = pos["lr"]
        epoch, batch0, step = pos["epoch"], pos["batch"], pos["step"]
        epoch_rng_state = pos["epoch_rng"]
        prev_valid, best_valid = pos["prev_valid"], pos["best_valid"]
        elapsed0 = pos["elapsed"]
        running, run_n = pos.get("running", 0.0), pos.get("running_n", 0)
        n_lines = pos.get("metrics_lines", 0)
        carry = rs.get("carry")
        if comm.size > 1 and task.carries_state:  # the whole state was saved: take this rank's part
            carry = task.shard_carry(carry, comm.rank, comm.size)
        run.trim_metrics(n_lines)
        log(f"resuming from {run.checkpoint}: epoch {epoch + 1}, batch {batch0}, step {step}")

    if comm.size > 1:  # dropout: each rank draws its own masks (SeedSequence.spawn)
        rank_generators(model, cfg.seed, comm.rank, comm.size)
    t_start = time.perf_counter()
    elapsed = lambda: elapsed0 + time.perf_counter() - t_start  # noqa: E731
    history: list[dict] = []
    stopped_by = "epochs"

    def checkpoint(ep: int, batch: int, rng_state: dict, st) -> None:
        if comm.size > 1:  # collective: every rank's block of the state; the ranks agree
            if task.carries_state:
                parts = comm.gather(st)
                st = task.join_carry(parts) if comm.rank == 0 else None
            if not comm.check_same(params):
                log(
                    "rnnkit: warning: the ranks' parameters differ (floating point that differs "
                    "between hosts?); rank 0's are saved"
                )
        oa, om = opt.state_dict()
        pos = {
            "epoch": ep,
            "batch": batch,
            "step": step,
            "epoch_rng": rng_state,
            "lr": opt.lr,
            "prev_valid": prev_valid,
            "best_valid": best_valid,
            "elapsed": elapsed(),
            "running": running,
            "running_n": run_n,
            "metrics_lines": n_lines,
        }
        if comm.rank == 0:
            run.save(model, task, fit_cfg=cfg, position=pos, optim=(oa, om), carry=st)

    def log_row(row: dict) -> None:
        nonlocal n_lines
        if comm.rank == 0:
            run.log(row)
        n_lines += 1

    def do_eval(ep_float: float, schedule: bool = True) -> dict:
        """Held-out metrics; with ``schedule`` they also drive the learning-rate halving (the
        evaluation at a time-budget stop does not, so that a resumed run stays exact)."""
        nonlocal prev_valid, best_valid
        m = evaluate(task, model, "valid", comm)
        v = m["loss"]
        row = {
            "kind": "eval",
            "step": step,
            "epoch": round(ep_float, 4),
            "valid_loss": v,
            **{f"valid_{k}": x for k, x in m.items() if k != "loss"},
            "lr": opt.lr,
            "elapsed": round(elapsed(), 3),
        }
        if not math.isfinite(v):
            row["diverged"] = True
        if not schedule:
            row["partial_epoch"] = True
        elif cfg.halve_lr and prev_valid is not None and v > prev_valid:
            opt.lr *= 0.5
            row["lr_halved_to"] = opt.lr
        if schedule:
            prev_valid = v
            if math.isfinite(v) and (best_valid is None or v < best_valid):
                best_valid = v
                row["best"] = True
                if comm.rank == 0:
                    run.save_best(model, task, fit_cfg=cfg)
        log_row(row)
        history.append(row)
        shown = "  ".join(f"{k} {_fmt(x)}" for k, x in m.items() if k != "loss")
        log(
            f"epoch {ep_float:6.2f}  step {step:6d}  held-out loss {_fmt(v)}  {shown}  "
            f"lr {row['lr']:.3g}" + ("  (lr halved)" if "lr_halved_to" in row else "")
        )
        if comm.rank == 0:
            plot_metrics(run.metrics, run.png, task.loss_label, f"rnnkit {task.name}")
        return row

    next_b = batch0  # the first batch not yet applied: where an interrupt resumes
    interrupt = DeferredInterrupt()
    try:
        with interrupt:
            while epoch < cfg.epochs:
                rng = rng_from_json(epoch_rng_state)
                batches = task.batches("train", rng)
                if batch0 == 0:
                    carry = None  # each epoch reads the stream from its start
                bar = progress_bar(
                    len(batches),
                    f"epoch {epoch + 1}/{cfg.epochs}",
                    progress if comm.rank == 0 else False,
                )
                if bar is not None:
                    bar.update(batch0)
                for b in range(batch0, len(batches)):
                    batch = batches[b]
                    if comm.size > 1:
                        batch = task.shard(batch, comm.rank, comm.size)
                    with np.errstate(all="ignore"):  # a NaN/inf is reported below, once
                        r = (
                            model.loss_and_grads(batch, carry if task.carries_state else None)
                            if batch is not None
                            # nothing for this rank: it adds zeros
                            else StepOut(0.0, 0, {k: np.zeros_like(p) for k, p in params.items()})
                        )
                    grads = r.grads
                    if grads is None:
                        raise RnnkitError("the model's loss_and_grads returned no gradients")
                    # stop flags ride with the gradients: the decision is collective, at no cost
                    over = (
                        cfg.time_budget is not None
                        and time.perf_counter() - t_start >= cfg.time_budget
                    )
                    code = interrupt.code
                    loss_sum, n, (over, n_int, n_term) = comm.allreduce_grads(
                        grads, r.loss_sum, r.count, (over, code == 1, code == 2)
                    )
                    scale = 1.0 / max(n, 1)
                    for g in grads.values():
                        g *= scale
                    loss = loss_sum * scale
                    gnorm = (
                        clip_grad_norm(grads, cfg.clip_norm)
                        if cfg.clip_norm
                        else math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
                    )
                    if not (math.isfinite(loss) and math.isfinite(gnorm)):
                        where = (
                            f"the last good checkpoint is {run.checkpoint}"
                            if run.checkpoint.exists()
                            else "no checkpoint was written yet"
                        )
                        raise TrainingStopped(
                            f"loss became {loss:.4g} (gradient norm {gnorm:.4g}) "
                            f"at step {step + 1} (epoch {epoch + 1}); stopped without updating; "
                            f"{where}; "
                            f"try a lower --lr or --clip-norm"
                        )
                    if cfg.clip_value:
                        clip_grad_value(grads, cfg.clip_value)
                    opt.step(params, grads)
                    step += 1
                    if batch is not None:
                        carry = r.carry if task.carries_state else None
                    next_b = b + 1
                    running, run_n = running + loss_sum, run_n + n
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.3f}")
                        bar.update(1)
                    if step % cfg.log_every == 0:
                        log_row(
                            {
                                "kind": "train",
                                "step": step,
                                "train_loss": running / max(run_n, 1),
                                "lr": opt.lr,
                                "grad_norm": gnorm,
                                "elapsed": round(elapsed(), 3),
                            }
                        )
                        running, run_n = 0.0, 0
                    if over:
                        if bar is not None:
                            bar.close()
                        stopped_by = "time_budget"
                        do_eval(epoch + (b + 1) / len(batches), schedule=False)
                        # b + 1 == len(batches) is a valid position too: the epoch's
                        # evaluation is due
                        checkpoint(epoch, b + 1, epoch_rng_state, carry)
                        raise _BudgetSpent
                    interrupt.stop(2 if n_term else 1 if n_int else 0)
                if bar is not None:
                    bar.close()
                due = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
                if due:
                    do_eval(
                        epoch + 1
                    )  # an interrupt here resumes at this evaluation (next_b: all done)
                if cfg.lr_decay is not None and epoch + 1 >= cfg.lr_decay_start:
                    opt.lr *= cfg.lr_decay  # the fixed schedule (Zaremba et al.)
                epoch, batch0, next_b = epoch + 1, 0, 0
                epoch_rng_state = rng_state_to_json(rng)
                if due:
                    checkpoint(epoch, 0, epoch_rng_state, None)
                interrupt.check(comm)
    except _BudgetSpent:
        pass
    except _HardStop:
        raise KeyboardInterrupt() from None  # mid-step: nothing saved, the last checkpoint stands
    except KeyboardInterrupt as exc:
        # between steps the parameters are consistent: keep the position so --resume continues
        checkpoint(epoch, next_b, epoch_rng_state, carry)
        raise Interrupted(str(run.checkpoint), isinstance(exc, _Terminated)) from None

    if not history:  # rank 0's metrics file says what the last evaluation was
        last = comm.bcast(run.last_eval() if comm.rank == 0 else None) or do_eval(epoch)
    else:
        last = history[-1]
    metrics = {k[len("valid_") :]: v for k, v in last.items() if k.startswith("valid_")}
    metrics["loss"] = last["valid_loss"]
    best = comm.bcast(run.best_eval() if comm.rank == 0 else None)
    return FitResult(
        best=best,
        best_checkpoint=str(run.best) if best is not None else "",
        metrics=metrics,
        steps=step,
        epochs_done=last["epoch"],
        history=history,
        checkpoint=str(run.checkpoint),
        stopped_by=stopped_by,
    )


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after saving its position in ``checkpoint``."""

    def __init__(self, checkpoint: str, terminated: bool = False):
        super().__init__(checkpoint)
        self.checkpoint, self.terminated = checkpoint, terminated


def config_dict(cfg) -> dict:
    return asdict(cfg)
