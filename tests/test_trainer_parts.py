"""The trainer's parts one at a time (rnnkit/training), none of them through a whole run: the
learning-rate schedule, the best model, the NaN stop, the time budget and signals as returned
values, the Position's round trip through a checkpoint, the gradient mean over the global count,
clipping; and a whole run in memory (no file written)."""

from __future__ import annotations

import json
import math
import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rnnkit.fit import FitConfig, Interrupted, TrainingStopped, fit
from rnnkit.models.protocol import Model, StepOut
from rnnkit.module import Module
from rnnkit.parallel import SERIAL, Comm
from rnnkit.rundir import RunDir, load_run, resume_state, save_run
from rnnkit.tasks.base import Task
from rnnkit.training import evaluation, gradients, schedule
from rnnkit.training.interrupts import DeferredInterrupt, Stop
from rnnkit.training.position import Position, problem
from rnnkit.training.protocol import SavedModel, TrainTask
from rnnkit.training.trainer import Trainer


# ------------------------------------------------------------------------------- a tiny problem
@dataclass
class LineConfig:
    n: int = 24  # training examples
    batch_size: int = 8


@dataclass
class LinearConfig:
    dim: int = 3


class Linear(Module):
    """Least squares: loss_i = (w . x_i - y_i)^2 / 2, summed."""

    def __init__(self, config: LinearConfig):
        super().__init__()
        self.config = config
        self.add_param("w", np.zeros(config.dim))
        self.calls = 0

    def loss_and_grads(self, batch, carry=None) -> StepOut:
        self.calls += 1
        x, y = batch
        r = x @ self.w - y
        return StepOut(float(0.5 * r @ r), len(y), {"w": x.T @ r})

    def evaluate(self, batch, carry=None) -> StepOut:
        x, y = batch
        r = x @ self.w - y
        return StepOut(float(0.5 * r @ r), len(y))


class Line(Task):
    """y = x . (1, 2, 3): batches of a fixed set, shuffled by the epoch's generator."""

    name = "line"
    Config = LineConfig
    ModelConfig = LinearConfig

    def __init__(self, cfg: LineConfig | None = None):
        super().__init__(cfg or LineConfig())
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((self.cfg.n, 3))
        self.y = self.x @ np.array([1.0, 2.0, 3.0])

    def batches(self, split, rng):
        idx = np.arange(self.cfg.n) if rng is None else rng.permutation(self.cfg.n)
        b = self.cfg.batch_size
        return [(self.x[idx[i : i + b]], self.y[idx[i : i + b]]) for i in range(0, len(idx), b)]


def _trainer(**cfg: Any) -> Trainer:
    t = Trainer(Line(), Linear(LinearConfig()), FitConfig(**{"log_every": 1000, **cfg}))
    t.log = lambda *a: None
    t.start()
    return t


def test_the_parts_meet_the_protocols():
    assert isinstance(Line(), TrainTask) and isinstance(Linear(LinearConfig()), Model)
    assert isinstance(Linear(LinearConfig()), SavedModel)
    from rnnkit.models.lm import LMConfig
    from rnnkit.tasks.lm import LMDataConfig, LMTask

    task = LMTask(LMDataConfig(max_sentences=30, vocab_size=50))
    assert isinstance(task, TrainTask)
    assert isinstance(task.build_model(LMConfig(embed_size=4, hidden_size=4)), SavedModel)


# ------------------------------------------------------------------------------- lr schedule
def test_lr_halved_when_the_held_out_loss_goes_up_only():
    cfg = FitConfig(lr=0.8)
    pos = Position.start(0.8, seed=0)
    outs = [schedule.after_evaluation(pos, v, cfg) for v in (2.0, 2.5, 2.4, 3.0, 3.0)]
    assert [o.halved_to for o in outs] == [None, 0.4, None, 0.2, None]
    assert pos.lr == 0.2 and pos.prev_valid == 3.0
    pos = Position.start(0.8, seed=0)
    for v in (2.0, 2.5, 3.0):
        assert schedule.after_evaluation(pos, v, FitConfig(halve_lr=False)).halved_to is None
    assert pos.lr == 0.8


def test_lr_decay_from_its_start_epoch():
    cfg = FitConfig(lr=1.0, lr_decay=0.5, lr_decay_start=3)
    pos = Position.start(1.0, seed=0)
    lrs = []
    for epoch in range(5):
        pos.epoch = epoch
        schedule.after_epoch(pos, cfg)
        lrs.append(pos.lr)
    assert lrs == [1.0, 1.0, 0.5, 0.25, 0.125]  # after epochs 3, 4, 5 (1-based)
    pos = Position.start(1.0, seed=0)
    schedule.after_epoch(pos, FitConfig())  # no decay configured
    assert pos.lr == 1.0


def test_evaluation_due_every_k_epochs_and_at_the_last():
    cfg = FitConfig(epochs=5, eval_every=2)
    assert [schedule.evaluation_due(e, cfg) for e in range(1, 6)] == [
        False,
        True,
        False,
        True,
        True,
    ]


# ------------------------------------------------------------------------------- best model
def test_best_is_the_lowest_finite_loss():
    pos, cfg = Position.start(1.0, seed=0), FitConfig()
    best = [schedule.after_evaluation(pos, v, cfg).best for v in (math.nan, 2.0, 1.5, 1.8, 1.5)]
    assert best == [False, True, True, False, False] and pos.best_valid == 1.5


def test_the_trainer_keeps_the_best_model_and_marks_its_row(monkeypatch):
    t = _trainer()
    losses = iter([2.0, 1.0, 3.0, 0.5])
    monkeypatch.setattr(evaluation, "evaluate", lambda task, m, *a: {"loss": next(losses)})
    seen = []
    for k in range(3):
        t.model.w[:] = k
        seen.append(t.evaluate(k + 1.0))
    assert [r.get("best") for r in seen] == [True, True, None]
    assert t.record.best_state is not None and np.all(t.record.best_state["w"] == 1.0)
    assert t.record.best_eval()["valid_loss"] == 1.0 and t.pos.best_valid == 1.0
    partial = t.evaluate(3.5, scheduled=False)  # a time-budget stop: no schedule, no best
    assert "best" not in partial and t.pos.best_valid == 1.0
    assert partial["partial_epoch"] and t.pos.prev_valid == 3.0


# ------------------------------------------------------------------------------- NaN stop
@pytest.mark.parametrize("where", ["loss", "grad"])
def test_a_non_finite_step_stops_before_updating(where):
    t = _trainer()
    batch = t.task.batches("train", None)[0]
    real = t.model.loss_and_grads

    def bad(b, carry=None):
        r = real(b, carry)
        if where == "loss":
            r.loss_sum = math.nan
        else:
            r.grads["w"][1] = math.inf
        return r

    t.model.loss_and_grads = bad
    w = t.model.w.copy()
    with pytest.raises(
        TrainingStopped, match="at step 1 .*stopped without updating.*no checkpoint"
    ):
        t.one_step(batch)
    assert np.array_equal(t.model.w, w) and t.pos.step == 0


def test_check_finite_names_the_last_good_checkpoint():
    gradients.check_finite(1.0, 2.0, 3, 1, None)  # finite: nothing
    with pytest.raises(TrainingStopped, match="last good checkpoint is runs/x/checkpoint.npz"):
        gradients.check_finite(math.inf, 2.0, 3, 1, "runs/x/checkpoint.npz")


# ------------------------------------------------------------------------------- budget, signals
def test_a_spent_time_budget_is_returned_after_a_whole_step():
    t = _trainer(time_budget=1e-9)
    r = t.one_step(t.task.batches("train", None)[0])
    assert r.stop is Stop.TIME_BUDGET and t.pos.step == 1 and t.pos.batch == 1
    assert _trainer().one_step(t.task.batches("train", None)[0]).stop is None


@pytest.mark.parametrize(
    "signum,stop", [(signal.SIGINT, Stop.INTERRUPTED), (signal.SIGTERM, Stop.TERMINATED)]
)
def test_a_signal_is_returned_by_the_step(signum, stop):
    t = _trainer()
    with t.interrupt:
        os.kill(os.getpid(), signum)  # handled: a flag, no exception
        r = t.one_step(t.task.batches("train", None)[0])
    assert r.stop is stop and t.pos.step == 1
    assert stop.by_signal and not Stop.TIME_BUDGET.by_signal


def test_a_signal_during_an_epoch_end_is_returned_after_its_save():
    t = _trainer(epochs=3)
    rng = np.random.default_rng(0)
    t.interrupt.requested, t.interrupt.signal = True, signal.SIGINT
    assert t.end_epoch(rng) is Stop.INTERRUPTED
    assert (t.pos.epoch, t.pos.batch) == (1, 0) and t.record.position["epoch"] == 1


def test_deferred_interrupt_codes_and_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    d = DeferredInterrupt()
    with d:
        assert d.code == 0
        os.kill(os.getpid(), signal.SIGTERM)
        assert d.code == 2
    assert signal.getsignal(signal.SIGTERM) is before
    assert [Stop.from_code(c) for c in (0, 1, 2)] == [None, Stop.INTERRUPTED, Stop.TERMINATED]


def test_fit_raises_interrupted_with_the_saved_position(tmp_path, monkeypatch):
    task, model = Line(), Linear(LinearConfig())
    real = model.loss_and_grads

    def ctrl_c_at_3(b, carry=None):
        if model.calls == 2:
            raise KeyboardInterrupt
        return real(b, carry)

    model.loss_and_grads = ctrl_c_at_3
    with RunDir(tmp_path).open() as run, pytest.raises(Interrupted) as ei:
        fit(task, model, FitConfig(epochs=2), run, log=lambda *a: None, progress=False)
    assert ei.value.checkpoint == str(tmp_path / "checkpoint.npz") and not ei.value.terminated
    meta, _ = load_run(tmp_path)
    assert (meta["position"]["step"], meta["position"]["batch"]) == (2, 2)


# ------------------------------------------------------------------------------- the position
def test_position_round_trip_through_a_checkpoint(tmp_path):
    pos = Position.start(0.25, seed=3)
    pos.epoch, pos.batch, pos.step, pos.prev_valid, pos.best_valid = 2, 1, 7, 1.5, 1.25
    pos.elapsed, pos.running, pos.running_n, pos.metrics_lines = 3.5, 4.0, 16, 5
    pos.carry = (np.ones((1, 2, 3), np.float32), np.zeros((1, 2, 3), np.float32))
    d = pos.to_json()
    assert "carry" not in d and problem(d) is None and json.loads(json.dumps(d)) == d
    task, model = Line(), Linear(LinearConfig())
    save_run(
        tmp_path / "c.npz",
        model,
        task,
        fit_cfg=FitConfig(),
        position=d,
        optim=({}, {}),
        carry=pos.carry,
    )
    rs = resume_state(*load_run(tmp_path / "c.npz"))
    back = Position.from_json(rs["position"], carry=rs["carry"])
    assert back.to_json() == d
    assert all(np.array_equal(a, b) for a, b in zip(back.carry, pos.carry))


def test_an_older_position_dict_still_reads():
    old = {"epoch": 1, "batch": 0, "step": 9, "lr": 0.5, "elapsed": 2.0, "prev_valid": 3.0,
           "best_valid": 3.0, "epoch_rng": Position.start(1.0, 0).epoch_rng}  # fmt: skip
    pos = Position.from_json(old)
    assert (pos.epoch, pos.step, pos.running, pos.running_n, pos.metrics_lines) == (1, 9, 0.0, 0, 0)
    assert problem({**old, "lr": "fast"}) == "position 'lr' is 'fast'"
    assert problem({**old, "step": -1}) == "position 'step' is -1"
    assert problem([1]) == "'position' is not a dict"


def test_a_resumed_trainer_starts_at_the_saved_position(tmp_path):
    t = _trainer(optimizer="sgd", lr=0.1)
    for b in t.task.batches("train", None)[:2]:
        t.one_step(b)
    t.pos.lr = 0.05
    with RunDir(tmp_path).open() as run:
        t2 = Trainer(t.task, t.model, t.cfg, run, log=lambda *a: None)
        t2.opt, t2.pos = t.opt, t.pos
        t2.save()
    rs = resume_state(*load_run(tmp_path))
    t3 = Trainer(t.task, Linear(LinearConfig()), t.cfg, resume_state=rs, log=lambda *a: None)
    t3.start()
    assert t3.pos.to_json() == {**t.pos.to_json(), "elapsed": t3.pos.elapsed}
    assert t3.opt.lr == 0.05


# ------------------------------------------------------------------------------- gradients
class TwoRanks(Comm):
    """The gradient sum of two ranks whose second rank holds ``other``."""

    def __init__(self, other: tuple[dict, float, int]):
        self.other = other

    def allreduce_grads(self, grads, loss_sum, count, flags=()):
        g2, l2, n2 = self.other
        for k in grads:
            grads[k] += g2[k]
        return loss_sum + l2, count + n2, tuple(int(f) for f in flags)


def test_the_mean_is_over_the_global_count():
    task, model = Line(LineConfig(n=10)), Linear(LinearConfig())
    model.w[:] = 0.5
    x, y = task.batches("train", None)[0]
    whole = model.loss_and_grads((x, y)).grads["w"] / 8
    a, b = model.loss_and_grads((x[:6], y[:6])), model.loss_and_grads((x[6:], y[6:]))  # 6 + 2
    loss_sum, n, _ = gradients.global_mean(
        a.grads, a.loss_sum, a.count, TwoRanks((b.grads, b.loss_sum, b.count))
    )
    assert n == 8 and loss_sum == pytest.approx(model.loss_and_grads((x, y)).loss_sum)
    np.testing.assert_allclose(a.grads["w"], whole)  # not the mean of the two ranks' means
    g = {"w": np.array([2.0, 4.0])}
    assert gradients.global_mean(g, 3.0, 2, SERIAL, (True, False)) == (3.0, 2, (1, 0))
    assert g["w"].tolist() == [1.0, 2.0]


def test_clipping_norm_then_values():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert gradients.clip(g, 1.0, None) == pytest.approx(5.0)  # the norm before clipping
    np.testing.assert_allclose(g["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(g["b"], [[0.8]], rtol=1e-6)
    g = {"a": np.array([3.0, -0.1]), "b": np.array([[-4.0]])}
    assert gradients.clip(g, None, 0.5) == pytest.approx(math.sqrt(25.01))
    assert g["a"].tolist() == [0.5, -0.1] and g["b"].tolist() == [[-0.5]]
    g = {"a": np.array([3.0, 4.0])}
    assert gradients.clip(g, None, None) == pytest.approx(5.0) and g["a"].tolist() == [3.0, 4.0]


# ------------------------------------------------------------------------------- in memory
def test_training_in_memory_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task, model = Line(), Linear(LinearConfig())
    trainer = Trainer(task, model, FitConfig(epochs=3, lr=0.1, log_every=2), log=lambda *a: None)
    res = trainer.run()
    assert os.listdir(tmp_path) == []
    assert res.stopped_by == "epochs" and res.steps == 9 and res.epochs_done == 3
    assert res.checkpoint == "" and res.best_checkpoint == ""
    assert res.metrics["loss"] < 0.5 * evaluation.evaluate(task, Linear(LinearConfig()))["loss"]
    rows = trainer.record.rows
    assert [r["kind"] for r in rows].count("eval") == 3 and [
        r["step"] for r in rows if r["kind"] == "train"
    ] == [2, 4, 6, 8]
    assert res.best is not None and res.best == trainer.record.best_eval()
    # fit() takes no run folder too
    res2 = fit(
        Line(),
        Linear(LinearConfig()),
        FitConfig(epochs=3, lr=0.1, log_every=2),
        None,
        log=lambda *a: None,
    )
    assert res2.metrics == res.metrics and os.listdir(tmp_path) == []


def test_train_lm_in_memory(tmp_path, monkeypatch):
    from rnnkit.models.lm import LMConfig
    from rnnkit.train import TrainConfig, train_lm

    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        level="word",
        max_sentences=60,
        vocab_size=100,
        batch_size=16,
        epochs=1,
        out=None,
        progress=False,
    )
    r = train_lm(cfg, LMConfig(embed_size=8, hidden_size=8), log=lambda *a: None)
    assert os.listdir(tmp_path) == [] and r.checkpoint == "" and math.isfinite(r.bits_per_token)


# ------------------------------------------------------------------------------- imports
def test_the_training_layer_imports_only_downward():
    """rnnkit/training/*, fit, rundir and parallel import nothing of the tasks or the application
    (imports inside functions counted); the training package does not import rundir or fit (they
    import it), so there is no cycle between them."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "rnnkit"
    files = [
        *sorted((root / "training").glob("*.py")),
        *(root / f for f in ("fit.py", "rundir.py", "parallel.py")),
    ]
    bad = []
    for p in files:
        pkg = "rnnkit.training" if p.parent.name == "training" else "rnnkit"
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = pkg.rsplit(".", node.level - 1)[0] if node.level else ""
                names = [
                    f"{base}.{node.module}"
                    if node.level and node.module
                    else base or node.module or ""
                ]
                names += [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for n in names:
                up = ("rnnkit.tasks", "rnnkit.train", "rnnkit.cli", "rnnkit.app", "rnnkit.__main__")
                if n.startswith(up) and (
                    n == "rnnkit.train" or not n.startswith("rnnkit.training")
                ):
                    bad.append(f"{p.name}: {n}")
                if pkg == "rnnkit.training" and n.startswith(("rnnkit.rundir", "rnnkit.fit")):
                    bad.append(f"{p.name}: {n}")
    assert not bad, bad
