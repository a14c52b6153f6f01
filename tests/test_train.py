"""Tests for rnnkit.train: a char model learns real text, a word model's perplexity drops, exact
resume (epochs, time budget, interrupt), NaN stop, lr halving, metrics, plot and checkpoint."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnkit.training.evaluation as evaluation_mod
import rnnkit.training.plots as plots_mod
import rnnkit.training.progress as progress_mod
from rnnkit.data import default_corpus_text, unigram_entropy_bits
from rnnkit.models.lm import LanguageModel, LMConfig
from rnnkit.train import TrainConfig, TrainingStopped, evaluate, load_lm, prepare_data, train_lm

QUIET = dict(log=lambda *a, **k: None)


def _word_cfg(out, **kw) -> TrainConfig:
    base: dict[str, Any] = dict(
        level="word",
        max_sentences=200,
        vocab_size=300,
        batch_size=16,
        epochs=2,
        lr=1e-2,
        out=str(out),
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _small_model(**kw) -> LMConfig:
    base: dict[str, Any] = dict(vocab_size=0, embed_size=16, hidden_size=16)
    base.update(kw)
    return LMConfig(**base)


@pytest.fixture(scope="module")
def char_corpus(tmp_path_factory) -> str:
    """The first 12K characters of the embedded corpus, as a file (a short char stream)."""
    p = tmp_path_factory.mktemp("corpus") / "char.txt"
    p.write_text(default_corpus_text()[:12000], encoding="utf-8")
    return str(p)


def _char_cfg(out, corpus, **kw) -> TrainConfig:
    base = dict(
        level="char",
        corpus=corpus,
        batch_size=8,
        bptt=32,
        epochs=2,
        lr=1e-2,
        out=str(out),
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _rows(out) -> list[dict]:
    text = (Path(out) / "metrics.jsonl").read_text(encoding="utf-8")
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def _eval_rows(out) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "elapsed"} for r in _rows(out) if r["kind"] == "eval"
    ]


def _params(out) -> dict:
    model, _, _, _ = load_lm(Path(out) / "checkpoint.npz")
    return model.params


def _assert_same_params(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.fixture(autouse=True)
def _no_plot(monkeypatch):
    """Drawing loss.png costs ~0.5 s per evaluation; only the char_run fixture (module scope, set up
    before this patch) and the plot test draw it."""
    monkeypatch.setattr(plots_mod, "plot_metrics", lambda *a, **k: True)


# ------------------------------------------------------------------------------- learning
@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """Elman char model on the whole embedded corpus: hidden 64, 3 epochs (~290 steps)."""
    out = tmp_path_factory.mktemp("char_run")
    cfg = TrainConfig(
        level="char",
        batch_size=32,
        bptt=64,
        epochs=3,
        eval_every=3,
        lr=1e-2,
        out=str(out),
        progress=False,
        seed=0,
    )
    data = prepare_data(cfg)
    res = train_lm(cfg, LMConfig(vocab_size=0, embed_size=32, hidden_size=64), **QUIET)
    return cfg, data, res, out


def test_char_model_beats_unigram_entropy(char_run):
    cfg, data, res, out = char_run
    h_uni = unigram_entropy_bits(data.valid, len(data.vocab))
    print(
        f"\nheld-out bits/char {res.bits_per_token:.3f}  vs  unigram entropy {h_uni:.3f} bits "
        f"({res.steps} steps)"
    )
    assert res.steps >= 250
    assert res.stopped_by == "epochs"
    assert 3.5 < h_uni < 5.5  # English text, ~100 distinct characters
    assert res.bits_per_token < h_uni - 0.5
    assert res.bits_per_token == pytest.approx(res.valid_nll / math.log(2))
    assert res.perplexity == pytest.approx(math.exp(res.valid_nll))


def test_word_model_perplexity_drops(tmp_path):
    cfg = _word_cfg(tmp_path, epochs=4)
    data = prepare_data(cfg)
    mc = _small_model(vocab_size=len(data.vocab))
    nll0, n0 = evaluate(LanguageModel(mc), cfg, data)
    ppl0 = math.exp(nll0 / n0)
    res = train_lm(cfg, _small_model(), **QUIET)
    assert n0 > 100
    assert ppl0 > 0.8 * len(data.vocab)  # near uniform at initialisation
    assert res.perplexity < 0.5 * ppl0, (ppl0, res.perplexity)
    ppls = [r["valid_ppl"] for r in res.history]
    assert len(ppls) == 4 and ppls[-1] < ppls[0]


# ------------------------------------------------------------------------------- resume
def test_resume_after_epochs_is_exact_word(tmp_path):
    full = _word_cfg(tmp_path / "full", epochs=4)
    train_lm(full, _small_model(), **QUIET)
    part = _word_cfg(tmp_path / "part", epochs=2)
    train_lm(part, _small_model(), **QUIET)
    res = train_lm(replace(part, epochs=4), resume=True, **QUIET)
    assert res.stopped_by == "epochs" and res.epochs_done == 4
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "part"))
    a, b = _eval_rows(tmp_path / "full"), _eval_rows(tmp_path / "part")
    assert len(a) == 4 and a == b


@pytest.mark.parametrize("level", ["word", "char"])
def test_resume_after_time_budget_is_exact(tmp_path, char_corpus, level, monkeypatch):
    """A time budget that stops after the first step (mid-epoch; the char state is carried), then
    resume to the end: same final parameters, and the same end-of-epoch eval rows."""
    mk = (
        (lambda out, **kw: _word_cfg(out, **kw))
        if level == "word"
        else (lambda out, **kw: _char_cfg(out, char_corpus, **kw))
    )
    full = mk(tmp_path / "full", epochs=2)
    r_full = train_lm(full, _small_model(), **QUIET)
    part = mk(tmp_path / "part", epochs=2, time_budget=1e-9)
    r1 = train_lm(part, _small_model(), **QUIET)
    assert r1.stopped_by == "time_budget" and r1.steps == 1
    ckpt = np.load(tmp_path / "part" / "checkpoint.npz", allow_pickle=False)
    meta = json.loads(ckpt["__meta__"].tobytes())
    assert meta["position"]["batch"] == 1 and meta["position"]["step"] == 1
    assert any(k.startswith("carry/") for k in ckpt.files) == (level == "char")
    r2 = train_lm(replace(part, time_budget=None), resume=True, **QUIET)
    assert r2.stopped_by == "epochs" and r2.steps == r_full.steps
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "part"))
    whole = [r for r in _eval_rows(tmp_path / "part") if float(r["epoch"]).is_integer()]
    assert _eval_rows(tmp_path / "full") == whole
    assert r2.valid_nll == r_full.valid_nll


@pytest.mark.parametrize("level", ["word", "char"])
def test_resume_after_keyboard_interrupt_is_exact(tmp_path, char_corpus, level, monkeypatch):
    mk = (
        (lambda out, **kw: _word_cfg(out, **kw))
        if level == "word"
        else (lambda out, **kw: _char_cfg(out, char_corpus, **kw))
    )
    full = mk(tmp_path / "full", epochs=2)
    train_lm(full, _small_model(), **QUIET)

    orig = LanguageModel.loss_and_grads
    calls = {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # in the middle of the first epoch, after no checkpoint yet
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    part = mk(tmp_path / "part", epochs=2)
    monkeypatch.setattr(LanguageModel, "loss_and_grads", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_lm(part, _small_model(), **QUIET)
    monkeypatch.setattr(LanguageModel, "loss_and_grads", orig)
    meta = json.loads(np.load(tmp_path / "part" / "checkpoint.npz")["__meta__"].tobytes())
    assert meta["position"]["step"] == 4
    train_lm(part, resume=True, **QUIET)
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "part"))
    assert _eval_rows(tmp_path / "full") == _eval_rows(tmp_path / "part")


def test_resume_after_interrupt_between_steps_is_exact(tmp_path, char_corpus, monkeypatch):
    """An interrupt that lands after a completed step (here: in the progress bar's update) saves
    the position and the carried char state; --resume then ends exactly like an uninterrupted
    run."""
    full = _char_cfg(tmp_path / "full", char_corpus, epochs=2)
    train_lm(full, _small_model(), **QUIET)

    class Bar:
        n = 0

        def update(self, k):
            if k == 1:
                Bar.n += 1
                if Bar.n == 7:
                    raise KeyboardInterrupt

        def set_postfix(self, **kw):
            pass

        def close(self):
            pass

    part = _char_cfg(tmp_path / "part", char_corpus, epochs=2)
    monkeypatch.setattr(progress_mod, "progress_bar", lambda *a: Bar())
    with pytest.raises(KeyboardInterrupt):
        train_lm(part, _small_model(), **QUIET)
    monkeypatch.undo()
    ckpt = np.load(tmp_path / "part" / "checkpoint.npz", allow_pickle=False)
    pos = json.loads(ckpt["__meta__"].tobytes())["position"]
    assert (pos["epoch"], pos["batch"], pos["step"]) == (0, 7, 7)
    assert "carry/0" in ckpt.files
    train_lm(part, resume=True, **QUIET)
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "part"))
    assert _eval_rows(tmp_path / "full") == _eval_rows(tmp_path / "part")


# ------------------------------------------------------------------------------- NaN stop
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = _word_cfg(tmp_path / "run", epochs=3)
    n_batches = math.ceil(len(prepare_data(cfg).train) / cfg.batch_size)
    bad_call = n_batches + 3  # in the middle of epoch 2, after epoch 1's checkpoint
    ckpt = tmp_path / "run" / "checkpoint.npz"
    orig = LanguageModel.loss_and_grads
    seen = {"n": 0, "bytes": None}

    def nan_at_k(self, *a, **k):
        r = orig(self, *a, **k)
        seen["n"] += 1
        if seen["n"] == bad_call:
            seen["bytes"] = ckpt.read_bytes()
            r.loss_sum = float("nan")
        return r

    monkeypatch.setattr(LanguageModel, "loss_and_grads", nan_at_k)
    with pytest.raises(TrainingStopped) as ei:
        train_lm(cfg, _small_model(), **QUIET)
    msg = str(ei.value)
    assert str(ckpt) in msg and "nan" in msg and f"step {bad_call}" in msg
    assert seen["bytes"] is not None and ckpt.read_bytes() == seen["bytes"]
    assert not list((tmp_path / "run").glob("*.tmp"))
    # it loads, and holds exactly the parameters after epoch 1
    monkeypatch.setattr(LanguageModel, "loss_and_grads", orig)
    train_lm(_word_cfg(tmp_path / "one", epochs=1), _small_model(), **QUIET)
    _assert_same_params(_params(tmp_path / "run"), _params(tmp_path / "one"))
    pos = json.loads(np.load(ckpt, allow_pickle=False)["__meta__"].tobytes())["position"]
    assert (pos["epoch"], pos["batch"], pos["step"]) == (1, 0, n_batches)


def test_nan_loss_before_any_checkpoint(tmp_path, monkeypatch):
    orig = LanguageModel.loss_and_grads

    def inf_grads(self, *a, **k):
        r = orig(self, *a, **k)
        r.grads["out.bias"][0] = np.inf  # a finite loss but an infinite gradient norm
        return r

    monkeypatch.setattr(LanguageModel, "loss_and_grads", inf_grads)
    cfg = _word_cfg(tmp_path, epochs=1)
    with pytest.raises(TrainingStopped, match="no checkpoint was written yet"):
        train_lm(cfg, _small_model(), **QUIET)
    assert not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.parametrize(
    "clip_norm,clip_value", [(5.0, None), (None, None), (None, 0.5), (5.0, 0.5)]
)
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_nonfinite_gradient_stops_whatever_the_clipping(
    tmp_path, monkeypatch, clip_norm, clip_value, bad
):
    """The gradient is checked at every step: with norm clipping, value clipping, both or none,
    a finite loss with a non-finite gradient stops before any update."""
    orig = LanguageModel.loss_and_grads
    calls = {"n": 0}

    def bad_at_2(self, *a, **k):
        r = orig(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            r.grads["rnn.weight_hh_l0"][0, 0] = bad
        return r

    monkeypatch.setattr(LanguageModel, "loss_and_grads", bad_at_2)
    cfg = _word_cfg(tmp_path, epochs=1, clip_norm=clip_norm, clip_value=clip_value)
    with pytest.raises(TrainingStopped, match="at step 2 .*stopped without updating"):
        train_lm(cfg, _small_model(), **QUIET)
    assert calls["n"] == 2


# ------------------------------------------------------------------------------- lr schedule
@pytest.mark.parametrize("halve", [True, False])
def test_sgd_lr_halved_when_held_out_loss_goes_up(tmp_path, monkeypatch, halve):
    losses = iter([2.0, 2.5, 2.4, 3.0])  # up, down, up

    def fake_evaluate(task, model, split="valid", comm=None):
        return task.summarize(next(losses) * 100.0, 100, {})

    monkeypatch.setattr(evaluation_mod, "evaluate", fake_evaluate)
    cfg = _word_cfg(tmp_path, epochs=4, optimizer="sgd", lr=0.5, halve_lr=halve)
    res = train_lm(cfg, _small_model(), **QUIET)
    rows = _eval_rows(tmp_path)
    assert [r["valid_loss"] for r in rows] == [2.0, 2.5, 2.4, 3.0]
    assert rows == [{k: v for k, v in r.items() if k != "elapsed"} for r in res.history]
    if halve:
        assert [r.get("lr_halved_to") for r in rows] == [None, 0.25, None, 0.125]
        assert [r["lr"] for r in rows] == [0.5, 0.5, 0.25, 0.25]
        final_lr = 0.125
    else:
        assert not any("lr_halved_to" in r for r in rows)
        assert [r["lr"] for r in rows] == [0.5] * 4
        final_lr = 0.5
    meta = json.loads(
        np.load(tmp_path / "checkpoint.npz", allow_pickle=False)["__meta__"].tobytes()
    )
    assert meta["position"]["lr"] == final_lr
    assert meta["optim"]["name"] == "sgd" and meta["optim"]["hyperparams"]["lr"] == final_lr


def test_best_npz_holds_the_model_of_the_lowest_held_out_loss(tmp_path, monkeypatch):
    from rnnkit.tasks.runs import load_model

    losses, seen = iter([2.0, 1.5, 1.8, 1.6]), []

    def fake_evaluate(task, model, split="valid", comm=None):
        seen.append({k: v.copy() for k, v in model.params.items()})
        return task.summarize(next(losses) * 100.0, 100, {})

    monkeypatch.setattr(evaluation_mod, "evaluate", fake_evaluate)
    res = train_lm(_word_cfg(tmp_path, epochs=4), _small_model(), **QUIET)
    assert [r.get("best") for r in _eval_rows(tmp_path)] == [True, True, None, None]
    assert res.best is not None and res.best["epoch"] == 2 and res.best["valid_loss"] == 1.5
    assert res.best_checkpoint == str(tmp_path / "best.npz")
    _, model, meta, _ = load_model(tmp_path / "best.npz", load_data=False)
    assert meta.get("position") is None  # the model alone: eval and predict, not --resume
    _assert_same_params(model.params, seen[1])
    assert not np.array_equal(seen[1]["out.weight"], seen[3]["out.weight"])
    # a new run in the folder (--overwrite) does not inherit the old run's best.npz
    losses = iter([float("nan")])  # its only evaluation is not finite: no best at all
    res = train_lm(_word_cfg(tmp_path, epochs=1), _small_model(), **QUIET)
    assert res.best is None and not (tmp_path / "best.npz").exists()


# ------------------------------------------------------------------------------- outputs
def test_metrics_rows_and_png(char_run):
    cfg, data, res, out = char_run
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) and r["kind"] in ("train", "eval") for r in rows)
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in train] == list(range(50, res.steps + 1, 50))
    assert all(
        math.isfinite(r["train_loss"]) and r["train_loss"] > 0 and r["grad_norm"] > 0 for r in train
    )
    assert len(evals) == 1 and evals[0]["step"] == res.steps and evals[0]["epoch"] == 3
    e = evals[0]
    assert e["valid_ppl"] == pytest.approx(math.exp(e["valid_loss"]))
    assert e["valid_bits"] == pytest.approx(e["valid_loss"] / math.log(2))
    assert train[0]["train_loss"] > train[-1]["train_loss"]
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_checkpoint_contents(char_run):
    cfg, data, res, out = char_run
    path = out / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
        arrays = {k: z[k] for k in files}
    assert meta["format"] == "rnnkit" and meta["version"] == 2 and meta["task"] == "lm"
    assert meta["task_state"]["vocab"] == data.vocab.itos
    assert meta["model_config"]["hidden_size"] == 64 and meta["model_config"]["vocab_size"] == len(
        data.vocab
    )
    assert meta["task_config"]["level"] == "char" and meta["task_config"]["bptt"] == 64
    assert meta["param_shapes"]["embed.weight"] == [len(data.vocab), 32]
    assert meta["optim"]["name"] == "adam" and meta["optim"]["step"] == res.steps
    assert meta["position"]["epoch"] == 3 and meta["position"]["batch"] == 0
    model, vocab, _, _ = load_lm(path)
    for k, p in model.params.items():
        assert np.array_equal(arrays[f"param/{k}"], p)
        for st in ("exp_avg", "exp_avg_sq"):
            assert arrays[f"optim/{st}/{k}"].shape == p.shape, (st, k)
    assert any(np.abs(arrays[f"optim/exp_avg_sq/{k}"]).max() > 0 for k in model.params)
    assert vocab.itos == data.vocab.itos


def test_time_budget_eval_leaves_the_schedule_alone(tmp_path, monkeypatch):
    """The evaluation at a time-budget stop is logged (marked partial_epoch) but does not drive the
    learning-rate schedule: an uninterrupted run never makes it, so a resumed run stays exact."""
    losses = iter([2.0, 3.0, 4.0])

    monkeypatch.setattr(
        evaluation_mod, "evaluate", lambda t, m, *a: t.summarize(next(losses) * 100.0, 100, {})
    )
    cfg = _word_cfg(tmp_path, epochs=2, optimizer="sgd", lr=0.5)
    train_lm(cfg, _small_model(), **QUIET)  # evals 2.0, 3.0: lr 0.5 -> 0.25
    train_lm(replace(cfg, epochs=3, time_budget=1e-9), resume=True, **QUIET)  # partial eval 4.0
    last = _eval_rows(tmp_path)[-1]
    assert last["valid_loss"] == 4.0 and last["partial_epoch"] and "lr_halved_to" not in last
    pos = json.loads(
        np.load(tmp_path / "checkpoint.npz", allow_pickle=False)["__meta__"].tobytes()
    )["position"]
    assert pos["lr"] == 0.25 and pos["prev_valid"] == 3.0


def test_time_budget_stop_then_resume_is_exact_when_the_lr_is_halved(tmp_path):
    """A real run whose held-out loss goes up (SGD, lr 5, no clipping) halves its learning rate;
    stopping it by a time budget after one step and resuming gives the uninterrupted parameters."""
    kw = dict(optimizer="sgd", lr=5.0, clip_norm=None, epochs=4)
    full = train_lm(_word_cfg(tmp_path / "full", **kw), _small_model(), **QUIET)
    part = _word_cfg(tmp_path / "part", time_budget=1e-9, **kw)
    train_lm(part, _small_model(), **QUIET)
    resumed = train_lm(replace(part, time_budget=None), resume=True, **QUIET)
    assert any("lr_halved_to" in r for r in _eval_rows(tmp_path / "full"))
    a, _, _, _ = load_lm(tmp_path / "full" / "checkpoint.npz")
    b, _, _, _ = load_lm(tmp_path / "part" / "checkpoint.npz")
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    assert resumed.valid_nll == full.valid_nll


def test_interrupt_during_epoch_end_evaluation_resumes_at_that_evaluation(tmp_path, monkeypatch):
    kw = dict(optimizer="sgd", lr=5.0, clip_norm=None, epochs=3)
    full = train_lm(_word_cfg(tmp_path / "full", **kw), _small_model(), **QUIET)
    calls = {"n": 0}
    real = evaluation_mod.evaluate

    def flaky(*a):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(evaluation_mod, "evaluate", flaky)
    cfg = _word_cfg(tmp_path / "part", **kw)
    with pytest.raises(KeyboardInterrupt):
        train_lm(cfg, _small_model(), **QUIET)
    monkeypatch.setattr(evaluation_mod, "evaluate", real)
    resumed = train_lm(cfg, resume=True, **QUIET)
    assert [r["valid_loss"] for r in _eval_rows(tmp_path / "part")] == [
        r["valid_loss"] for r in _eval_rows(tmp_path / "full")
    ]
    assert resumed.valid_nll == full.valid_nll


def test_resuming_a_finished_run_adds_no_evaluation(tmp_path):
    cfg = _word_cfg(tmp_path, epochs=1)
    first = train_lm(cfg, _small_model(), **QUIET)
    again = train_lm(cfg, resume=True, **QUIET)
    assert len(_eval_rows(tmp_path)) == 1 and again.valid_nll == first.valid_nll


# ------------------------------------------------------------------------------- the port
def test_port_to_the_shared_loop_keeps_the_numbers(tmp_path):
    """Held-out losses of short runs measured with the LM-only loop before the port to
    ``rnnkit.fit`` (same corpus, seeds and settings); the shared loop reproduces them to float32
    round-off (gradients are now sums scaled by the count: a different rounding order)."""
    rng = np.random.default_rng(0)
    words = "the cat dog sat on a mat ran fast slow and big small red blue house".split()
    sents = [" ".join(rng.choice(words, rng.integers(3, 9))).capitalize() + "." for _ in range(300)]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(sents) + "\n")
    before = {
        "word-rnn": [2.908794025838117, 2.820872930221227],
        "word-lstm": [2.9090508609623105, 2.785852851805749],
        "char-gru": [3.093961380075807, 2.9318413153429272],
    }
    for key, want in before.items():
        level, cell = key.split("-")
        cfg = TrainConfig(
            level=level,
            corpus=str(corpus),
            epochs=2,
            batch_size=16,
            bptt=20,
            out=str(tmp_path / key),
            progress=False,
        )
        # the defaults of that time, and its embedded-rows input projection
        old_init = dict(embed_init_std=0.1, forget_bias=1.0, fused_input=False)
        r = train_lm(cfg, LMConfig(hidden_size=16, embed_size=8, cell=cell, **old_init), **QUIET)
        np.testing.assert_allclose([h["valid_loss"] for h in r.history], want, rtol=1e-6)


def test_resume_with_dropout_is_exact(tmp_path):
    """The dropout random stream is saved with the checkpoint: a run stopped after one step and
    resumed draws the same masks as an uninterrupted one."""
    mk = dict(num_layers=2, dropout=0.3)
    full = train_lm(_word_cfg(tmp_path / "full", epochs=2), _small_model(**mk), **QUIET)
    part = _word_cfg(tmp_path / "part", epochs=2, time_budget=1e-9)
    train_lm(part, _small_model(**mk), **QUIET)
    resumed = train_lm(replace(part, time_budget=None), resume=True, **QUIET)
    _assert_same_params(_params(tmp_path / "full"), _params(tmp_path / "part"))
    assert resumed.valid_nll == full.valid_nll
    meta = json.loads(np.load(tmp_path / "part" / "checkpoint.npz")["__meta__"].tobytes())
    assert "dropout_rng" in meta["module_state"]["rnn"]


# ------------------------------------------------------------------------------- the wrapper
def test_train_config_takes_every_data_and_fit_option_once():
    """TrainConfig declares no field of its own besides out and progress: every LMDataConfig and
    FitConfig option is accepted by name and lands in that config (seed in both)."""
    from dataclasses import fields

    from rnnkit.fit import FitConfig
    from rnnkit.tasks.lm import LMDataConfig

    fit_vals = dict(
        optimizer="sgd", lr=0.5, weight_decay=0.1, clip_norm=2.0, clip_value=0.3, epochs=7,
        time_budget=9.0, eval_every=2, halve_lr=False, lr_decay=0.9, lr_decay_start=3, seed=4,
        log_every=11,
    )  # fmt: skip
    assert set(fit_vals) == {f.name for f in fields(FitConfig)}
    cfg = TrainConfig(level="char", bptt=16, batching="stream", out=None, **fit_vals)
    assert {k: getattr(cfg.fit, k) for k in fit_vals} == fit_vals
    assert (cfg.data.level, cfg.data.bptt, cfg.data.batching, cfg.data.seed) == (
        "char",
        16,
        "stream",
        4,
    )
    assert cfg.epochs == 7 and cfg.bptt == 16 and cfg.out is None  # read back flat
    assert {f.name for f in fields(TrainConfig)} == {"data", "fit", "out", "progress"}
    every_data = {f.name: getattr(LMDataConfig(), f.name) for f in fields(LMDataConfig)}
    del every_data["corpus_hash"]  # set by the task, not an option
    assert TrainConfig(**every_data).data == LMDataConfig()
    again = replace(cfg, epochs=3, level="word")
    assert again.fit.epochs == 3 and again.data.level == "word" and cfg.fit.epochs == 7
    with pytest.raises(Exception, match="no option 'hidden_size'"):
        TrainConfig(hidden_size=3)


def test_train_lm_options_as_keywords(tmp_path):
    """train_lm(cfg, model_cfg, **options): options over cfg (here the lr decay, which the old
    flat config could not set) reach the loop."""
    res = train_lm(
        _word_cfg(tmp_path, epochs=2),
        _small_model(),
        optimizer="sgd",
        lr=0.5,
        lr_decay=0.5,
        halve_lr=False,
        **QUIET,
    )
    assert [r["lr"] for r in res.history] == [0.5, 0.25]
