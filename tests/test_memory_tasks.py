"""The long-memory tasks (``rnnkit train adding | copy | remember-first``) and ``rnnkit inspect
gradients``: training from the command line beats the memoryless baseline at a short length,
``eval --json`` reports the metrics, resume is exact with fresh data per epoch, the model's
gradients pass gradcheck, and the inspected gradient norms and Jacobians match brute force."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.app.inspect_grads import add_parser, run
from rnnkit.data.synthetic import adding_problem, copy_memory
from rnnkit.gradcheck import gradcheck
from rnnkit.models.gradients import gradient_norms, jacobian_norms, step_jacobians
from rnnkit.models.sequence import MemoryModelConfig, SequenceModel
from rnnkit.rundir import save_run
from rnnkit.tasks import get_task
from rnnkit.tasks.runs import load_model

_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _train(task, out, *args):
    return _run(["train", task, "--out", out, "--no-progress", "--samples", "0", *args])


def _eval(out) -> dict:
    code, text, err = _run(["eval", out, "--json"])
    assert code == 0, err
    return json.loads(text)


def test_adding_lstm_beats_the_baseline_at_T10(tmp_path):
    code, _, err = _train(
        "adding",
        tmp_path,
        "--length",
        10,
        "--cell",
        "lstm",
        "--hidden-size",
        16,
        "--train-size",
        1000,
        "--valid-size",
        200,
        "--batch-size",
        20,
        "--epochs",
        5,
    )
    assert code == 0, err
    m = _eval(tmp_path)
    assert m["mse"] < 0.1 and m["baseline"] == pytest.approx(1 / 6)
    assert m["relative_loss"] == pytest.approx(m["mse"] * 6)


def test_remember_first_and_copy_report_accuracy_against_the_baseline(tmp_path):
    code, _, err = _train(
        "remember-first",
        tmp_path / "r",
        "--length",
        8,
        "--cell",
        "gru",
        "--hidden-size",
        16,
        "--train-size",
        600,
        "--valid-size",
        200,
        "--batch-size",
        20,
        "--epochs",
        3,
    )
    assert code == 0, err
    m = _eval(tmp_path / "r")
    assert m["accuracy"] > 0.9 and m["relative_loss"] < 0.5  # chance 0.25
    code, _, err = _train(
        "copy",
        tmp_path / "c",
        "--length",
        3,
        "--recall",
        2,
        "--cell",
        "gru",
        "--hidden-size",
        32,
        "--train-size",
        1000,
        "--valid-size",
        200,
        "--batch-size",
        20,
        "--epochs",
        4,
    )
    assert code == 0, err
    m = _eval(tmp_path / "c")
    assert m["baseline"] == pytest.approx(2 * np.log(8) / 7)
    assert m["relative_loss"] < 0.9 and m["accuracy"] > 0.3  # chance 1/8


def test_resume_is_exact_with_fresh_data_per_epoch(tmp_path):
    args = [
        "--length",
        6,
        "--cell",
        "rnn",
        "--hidden-size",
        5,
        "--train-size",
        60,
        "--valid-size",
        20,
        "--batch-size",
        20,
    ]
    assert _train("adding", tmp_path / "a", *args, "--epochs", 2)[0] == 0
    assert _train("adding", tmp_path / "b", *args, "--epochs", 1)[0] == 0
    assert _train("adding", tmp_path / "b", "--epochs", 2, "--resume")[0] == 0
    pa, pb = (load_model(tmp_path / k)[1].state_dict() for k in "ab")
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    # the held-out set depends on the seed only; each epoch's training data is fresh
    t = get_task("adding")(get_task("adding").Config(length=6, valid_size=20))
    np.testing.assert_array_equal(t.valid[0], get_task("adding")(t.cfg).valid[0])
    e1 = t.batches("train", np.random.default_rng(1))[0][0]
    e2 = t.batches("train", np.random.default_rng(2))[0][0]
    assert not np.array_equal(e1, e2)


def _model(cell, head, loss, I, O, **kw):
    return SequenceModel(
        MemoryModelConfig(
            cell=cell,
            hidden_size=4,
            input_size=I,
            output_size=O,
            head=head,
            loss=loss,
            dtype="float64",
            **kw,
        )
    )


@pytest.mark.parametrize("cell", ["rnn", "skip", "clockwork"])
def test_sequence_model_gradients(cell):
    m = _model(cell, "last", "mse", 2, 1, delays="1,3", periods="1,2")
    x, y = adding_problem(3, 7, 0)
    g = m.loss_and_grads((x, y)).grads
    res = gradcheck(lambda: m.evaluate((x, y)).loss_sum, dict(m.parameters()), g)
    assert res.max_rel_error < 1e-6, res
    m = _model(cell, "every", "ce", 5, 5, delays="1,3", periods="1,2")
    ids, tgt = copy_memory(3, 3, 1, n_symbols=3, length=2)
    g = m.loss_and_grads((ids, tgt)).grads
    res = gradcheck(lambda: m.evaluate((ids, tgt)).loss_sum, dict(m.parameters()), g)
    assert res.max_rel_error < 1e-6, res


# -------------------------------------------------------------------------- inspect gradients
def _numeric_state_grad(layer, x, loss_of_y_last, t, b, n_states):
    """dL/dh(t) of sequence b by central differences: run to step t, perturb h(t) (the other
    states held), run the rest, take the loss at the last step."""
    xb = x[:, b : b + 1]
    _, s = layer.forward(xb[:t])
    s = tuple(a.copy() for a in (s if isinstance(s, tuple) else (s,)))
    g = np.zeros(layer.hidden_size)
    for i in range(layer.hidden_size):
        vals = []
        for eps in (1e-5, -1e-5):
            sp = tuple(a.copy() for a in s)
            sp[0][-1, 0, i] += eps
            y, _ = layer.forward(xb[t:], sp if n_states > 1 else sp[0])
            vals.append(loss_of_y_last(y[-1], b))
        g[i] = (vals[0] - vals[1]) / 2e-5
    return np.linalg.norm(g)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "skip"])
def test_gradient_norms_match_finite_differences(cell):
    m = _model(cell, "last", "mse", 2, 1, delays="1,2", num_layers=2)
    x, y = adding_problem(2, 6, 3)

    def loss_of_y_last(y_last, b):
        return float(((m.out.forward(y_last) - y[b : b + 1]) ** 2).sum())

    def dloss(y_last):
        loss, n, dy, _ = m.head_loss(y_last, y)
        return loss / n, dy

    norms, _ = gradient_norms(m.rnn, x, dloss)
    for t in (1, 3, 5):
        for b in range(2):
            num = _numeric_state_grad(m.rnn, x, loss_of_y_last, t, b, m.rnn.cell.n_states)
            assert norms[t - 1, b] == pytest.approx(num, rel=1e-6)


@pytest.mark.parametrize(
    "cell,kw",
    [("lstm", {"num_layers": 2}), ("skip", {"delays": "1,2"}), ("clockwork", {"periods": "1,2"})],
)
def test_step_jacobian_matches_finite_differences(cell, kw):
    m = _model(cell, "last", "mse", 2, 1, **kw)
    layer = m.rnn
    rng = np.random.default_rng(0)
    K, L, H, B = layer.cell.n_states, layer.num_layers, layer.hidden_size, 2
    x_t = rng.standard_normal((B, 2))
    s = tuple(rng.standard_normal((L, B, H)) for _ in range(K))
    if cell == "clockwork":
        s = (s[0], np.ones((L, B, H)))  # counter 1: the period-2 units hold
    J = step_jacobians(layer, x_t, s)
    n = K * L * H

    def step(flat, b):
        parts = tuple(p.reshape(L, 1, H) for p in flat.reshape(K, L, H))
        _, sn = layer.forward(x_t[None, b : b + 1], parts if K > 1 else parts[0])
        return np.concatenate([a.reshape(-1) for a in (sn if K > 1 else (sn,))])

    for b in range(B):
        s0 = np.concatenate([a[:, b].reshape(-1) for a in s])
        num = np.stack(
            [(step(s0 + e, b) - step(s0 - e, b)) / 2e-6 for e in np.eye(n) * 1e-6], axis=1
        )
        np.testing.assert_allclose(J[b], num, rtol=1e-6, atol=1e-8)
    xs = rng.standard_normal((3, B, 2))
    spec, rms = jacobian_norms(layer, xs)
    J1 = step_jacobians(layer, xs[0], tuple(np.zeros((L, B, H)) for _ in range(K)))
    sv = np.linalg.svd(J1, compute_uv=False)
    np.testing.assert_allclose(spec[0], sv[:, 0], rtol=1e-8)
    np.testing.assert_allclose(rms[0], np.sqrt((sv**2).mean(axis=1)), rtol=1e-8)


def test_inspect_command_writes_a_png(tmp_path, capsys):
    task = get_task("adding")(get_task("adding").Config(length=8, valid_size=10))
    paths = []
    for cell in ("rnn", "lstm"):
        model = task.build_model(MemoryModelConfig(cell=cell, hidden_size=4))
        (tmp_path / cell).mkdir()
        save_run(tmp_path / cell / "checkpoint.npz", model, task)
        paths.append(str(tmp_path / cell))
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(
        [
            "inspect",
            "gradients",
            *paths,
            "--out",
            str(tmp_path / "g.png"),
            "--sequences",
            "4",
            "--jacobian-sequences",
            "2",
            "--json",
        ]
    )
    assert run(args) == 0
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [len(c["grad_norm"]) for c in curves] == [8, 8]
    assert all(len(c["jacobian_norm"]) == len(c["jacobian_rms"]) == 8 for c in curves)
