"""The output-to-hidden recurrence (10.2.1) trained by teacher forcing, scheduled sampling, and the
transduce task: running-sum (the output model's) against delay2 (the hidden RNN's)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.data.transduce import delay, make_sequences, padded_batches, parse_digits, running_sum
from rnnkit.errors import RnnkitError
from rnnkit.functional import softmax_cross_entropy
from rnnkit.gradcheck import gradcheck
from rnnkit.models.output_rnn import OutputRNN, ScheduledSampling, shift_right

T, B, I, H, K = 6, 4, 5, 7, 4
LENGTHS = np.array([6, 3, 1, 5])


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _data(ids: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, I, (T, B)) if ids else rng.standard_normal((T, B, I))
    return x, rng.integers(0, K, (T, B))


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_gradcheck_teacher_forced_loss(ids, lengths):
    m = OutputRNN(I, H, K, input_ids=ids, seed=1, dtype="float64")
    x, y = _data(ids)
    r = m.loss_and_grads((x, y, lengths))
    grads = {k: v.copy() for k, v in r.grads.items()}
    assert sorted(grads) == ["U", "V", "W", "b", "c"]
    res = gradcheck(lambda: m.evaluate((x, y, lengths)).loss_sum, dict(m.parameters()), grads)
    assert res.max_rel_error < 1e-6, res


def test_gradcheck_input_features_and_padding_gets_no_gradient():
    m = OutputRNN(I, H, K, input_ids=False, seed=2, dtype="float64")
    x, y = _data(False, 3)
    fed = shift_right(y, m.start_id)
    R = np.random.default_rng(4).standard_normal((int(LENGTHS.sum()), K))

    def loss():
        return float((m.forward(x, fed, LENGTHS) * R).sum())

    loss()
    dx = m.backward(R.copy())
    res = gradcheck(loss, {"x": x}, {"x": dx})
    assert res.max_rel_error < 1e-6, res
    assert np.all(dx[3:, 1] == 0) and np.all(dx[1:, 2] == 0)


# ------------------------------------------------------------------------------ the equations
def test_teacher_forced_forward_is_the_step_equations():
    """All steps at once == h(t) = tanh(b + U x(t) + W onehot(y(t-1))), o(t) = c + V h(t)."""
    m = OutputRNN(I, H, K, input_ids=True, seed=5, dtype="float64")
    x, y = _data(True, 6)
    logits = m.forward(x, shift_right(y, m.start_id), LENGTHS)
    rows = []
    for t in range(T):
        for b in range(B):
            if t < LENGTHS[b]:
                z = np.eye(K + 1)[K if t == 0 else y[t - 1, b]]
                h = np.tanh(m.b + m.U @ np.eye(I)[x[t, b]] + m.W @ z)
                rows.append(m.c + m.V @ h)
    np.testing.assert_allclose(logits, np.array(rows), rtol=1e-12, atol=1e-12)


def test_free_running_feeds_back_its_own_outputs():
    m = OutputRNN(I, H, K, seed=7, dtype="float64")
    x, _ = _data(True, 8)
    pred, fed = m.run(x)
    assert np.array_equal(fed, shift_right(pred, m.start_id))
    # teacher-forcing the model on its own greedy outputs reproduces them
    logits = m.forward(x, fed)
    assert np.array_equal(logits.argmax(axis=1).reshape(T, B), pred)
    sampled, _ = m.run(x, greedy=False, rng=np.random.default_rng(0), temperature=0.5)
    assert sampled.shape == (T, B) and sampled.min() >= 0 and sampled.max() < K


def test_scheduled_sampling_schedule_and_fed_tokens():
    ss = ScheduledSampling(final_p=1.0, ramp_steps=2, greedy=True)
    assert [ss.p(s) for s in (0, 1, 2, 5)] == [0.0, 0.5, 1.0, 1.0]
    m = OutputRNN(I, H, K, seed=9, dtype="float64", sampling=ss)
    assert "ss_step" not in m.parameters() and "ss_step" in m.state_dict()  # frozen, saved
    x, y = _data(True, 10)
    assert np.array_equal(m.fed_tokens(x, y), shift_right(y, m.start_id))  # step 0: p = 0
    mixed = m.fed_tokens(x, y)  # step 1: p = 0.5, a mix of targets and predictions
    pred, _ = m.run(x)
    own = m.fed_tokens(x, y)  # step 2: p = 1: the model's own greedy outputs
    assert np.array_equal(own, shift_right(pred, m.start_id))
    assert int(m.ss_step[0]) == 3
    assert not np.array_equal(mixed, shift_right(y, m.start_id))
    m.eval()
    assert np.array_equal(m.fed_tokens(x, y), shift_right(y, m.start_id))  # evaluation: no mixing
    with pytest.raises(RnnkitError, match="probability"):
        ScheduledSampling(final_p=1.5)


def test_scheduled_sampling_loss_is_teacher_forced_loss_on_the_mixed_tokens():
    m = OutputRNN(
        I, H, K, seed=11, dtype="float64", sampling=ScheduledSampling(final_p=0.7, ramp_steps=1)
    )
    x, y = _data(True, 12)
    m.ss_step[0] = 5
    fed = m.run(x, greedy=False, rng=np.random.default_rng([m.seed, 5]), targets=y, p_own=0.7)[1]
    r = m.loss_and_grads((x, y, None))
    want = softmax_cross_entropy(m.forward(x, fed), y.reshape(-1))[0]
    assert r.loss_sum == pytest.approx(want, rel=1e-12)
    assert not np.array_equal(fed, shift_right(y, m.start_id))


def test_errors_are_one_line():
    m = OutputRNN(I, H, K)
    with pytest.raises(RnnkitError, match="out of range"):
        m.loss_and_grads((np.full((2, 2), I), np.zeros((2, 2), int), None))
    with pytest.raises(RnnkitError, match="lengths"):
        m.loss_and_grads((np.zeros((2, 2), int), np.zeros((2, 2), int), np.array([3, 1])))
    with pytest.raises(RnnkitError, match="n_out"):
        OutputRNN(I, H, 1)


# ------------------------------------------------------------------------------ data
def test_generated_problems():
    x = np.array([3, 9, 4, 0, 7])
    assert running_sum(x).tolist() == [3, 2, 6, 6, 3]
    assert delay(x, 2).tolist() == [0, 0, 3, 9, 4]
    xs, ys = make_sequences("running-sum", 50, 2, 9, seed=1)
    xs2, _ = make_sequences("running-sum", 50, 2, 9, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(xs, xs2))
    assert {len(a) for a in xs} <= set(range(2, 10)) and all(
        len(a) == len(b) for a, b in zip(xs, ys)
    )
    batches = padded_batches(xs, ys, 16)
    assert sum(b[0].shape[1] for b in batches) == 50 and batches[0][2] is not None
    assert parse_digits("3 1 4").tolist() == [3, 1, 4]
    with pytest.raises(RnnkitError, match="digits"):
        parse_digits("3x")


# ------------------------------------------------------------------------------ learning
def _train(tmp_path, problem, model, epochs, extra=()):
    out = tmp_path / f"{problem}-{model}"
    code, so, se = _run(
        [
            "train",
            "transduce",
            "--problem",
            problem,
            "--model",
            model,
            "--epochs",
            epochs,
            "--n-train",
            2000,
            "--n-valid",
            200,
            *extra,
            "--out",
            out,
            "--no-progress",
            "--samples",
            "0",
        ]
    )
    assert code == 0, se
    code, so, _ = _run(["eval", out, "--json"])
    assert code == 0
    return out, json.loads(so)


def test_output_model_learns_running_sum_free_running(tmp_path):
    out, m = _train(tmp_path, "running-sum", "output", 6)
    assert m["accuracy"] > 0.9 and m["exact"] > 0.8, m  # free-running: its own outputs fed back
    # predict from the checkpoint, on a sequence longer than any seen in training
    code, so, _ = _run(["predict", out, "3 1 4 1 5", "9" * 30])
    assert code == 0
    lines = so.splitlines()
    assert lines[0] == "31415\t34894\tok"
    assert lines[1].endswith("\tok")
    code, _, se = _run(["predict", out, "12a"])
    assert code == 2 and "digits" in se and len(se.strip().splitlines()) == 1


def test_hidden_rnn_learns_delay2_and_output_model_cannot(tmp_path):
    _, hid = _train(tmp_path, "delay2", "hidden", 3)
    _, outm = _train(tmp_path, "delay2", "output", 3)
    assert hid["accuracy"] > 0.95, hid
    # y(t-1) = x(t-3) says nothing of x(t-2): chance (1/10) after the first two steps
    assert outm["accuracy"] < 0.35 and outm["exact"] < 0.05, outm


def test_scheduled_sampling_trains_and_resumes_exactly(tmp_path):
    flags = ["--scheduled-sampling", "0.5", "--ss-ramp", "40"]
    full, _ = _train(tmp_path / "a", "running-sum", "output", 2, flags)
    half, _ = _train(tmp_path / "b", "running-sum", "output", 1, flags)
    code, _, se = _run(
        [
            "train",
            "transduce",
            "--out",
            half,
            "--resume",
            "--epochs",
            2,
            "--no-progress",
            "--samples",
            "0",
        ]
    )
    assert code == 0, se
    from rnnkit.tasks.runs import load_model

    _, a, _, _ = load_model(full)
    _, b, _, _ = load_model(half)
    assert int(a.ss_step[0]) == int(b.ss_step[0]) == 2 * 63  # the schedule's clock: 2000 / 32
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p, q), n
