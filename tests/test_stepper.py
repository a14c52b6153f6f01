"""The one-step-at-a-time runner used for sampling gives exactly the layer's forward pass."""

import numpy as np
import pytest

from rnnkit.layers.registry import make_recurrent
from rnnkit.layers.stepper import Stepper


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-14)])
def test_stepper_matches_forward(cell, dtype, tol):
    rng = np.random.default_rng(0)
    layer = make_recurrent(cell, 5, 7, seed=1, dtype=dtype)
    E = rng.standard_normal((11, 5)).astype(dtype)
    ids = rng.integers(0, 11, (9, 3))
    s0 = tuple(rng.standard_normal((3, 7)).astype(dtype) for _ in range(layer.cell.n_states))
    h0 = tuple(s[None] for s in s0) if len(s0) == 2 else s0[0][None]
    y, h_n = layer.forward(E[ids], h0)
    st = Stepper(layer, 3, embedding=E, state0=s0)
    ys = np.stack([st.step(i).copy() for i in ids])
    np.testing.assert_allclose(ys, y, rtol=0, atol=tol)
    final = h_n if isinstance(h_n, tuple) else (h_n,)
    for got, want in zip(st.state, final):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)  # both (L, B, H)


def test_stepper_feature_inputs_match_forward():
    rng = np.random.default_rng(2)
    layer = make_recurrent("gru", 4, 6, seed=3, dtype="float64")
    x = rng.standard_normal((5, 2, 4))
    y, _ = layer.forward(x)
    st = Stepper(layer, 2)
    ys = np.stack([st.step(xt).copy() for xt in x])
    np.testing.assert_allclose(ys, y, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# step-level forward AND backward (StepFunction) against the sequence forward/backward
# ---------------------------------------------------------------------------------------------
from rnnkit.layers.stepper import StepFunction  # noqa: E402


def _pack(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("ids_in", [False, True])
def test_step_function_equals_sequence(cell, num_layers, ids_in):
    """Stepping forward then back, step by step, gives the sequence pass's y, h_n, dx, dh0 and
    every weight gradient (float64, round-off)."""
    rng = np.random.default_rng(5)
    T, B, I, H = 6, 3, 4, 5
    layer = make_recurrent(cell, I, H, seed=2, dtype="float64", num_layers=num_layers)
    x = rng.integers(0, I, (T, B)) if ids_in else rng.standard_normal((T, B, I))
    n = layer.cell.n_states
    h0 = tuple(rng.standard_normal((num_layers, B, H)) for _ in range(n))
    h0 = h0 if n == 2 else h0[0]
    dy = rng.standard_normal((T, B, H))
    dhn = tuple(rng.standard_normal((num_layers, B, H)) for _ in range(n))
    dhn = dhn if n == 2 else dhn[0]
    y, h_n = layer.forward(x, h0)
    dx, dh0 = layer.backward(dy, dhn)
    want = dict(layer.grads)

    f = StepFunction(layer)
    state, tapes, ys = h0, [], []
    for t in range(T):
        yt, state, tape = f.forward(x[t], state)
        ys.append(yt)
        tapes.append(tape)
    np.testing.assert_allclose(np.stack(ys), y, rtol=1e-12, atol=1e-13)
    for a, b in zip(_pack(state), _pack(h_n)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    ds, dxs = dhn, []
    for t in range(T - 1, -1, -1):
        dxt, ds = f.backward(tapes[t], dy[t], ds)
        dxs.append(dxt)
    if ids_in:
        assert all(d is None for d in dxs)
    else:
        np.testing.assert_allclose(np.stack(dxs[::-1]), dx, rtol=1e-10, atol=1e-12)
    for a, b in zip(_pack(ds), _pack(dh0)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    got = f.grads()
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)
    assert f.grads() == {}  # started anew


def test_step_function_feedback_decoder_gradcheck():
    """A decoder that feeds its own (soft) output back as the next input: gradients through the
    feedback loop against central differences."""
    from rnnkit.gradcheck import gradcheck

    rng = np.random.default_rng(1)
    B, H, T = 2, 4, 4
    layer = make_recurrent("gru", H, H, seed=0, dtype="float64")
    x0 = rng.standard_normal((B, H))
    R = rng.standard_normal((T, B, H))

    def run():
        f = StepFunction(layer)
        x, s, tapes, ys = x0, None, [], []
        for _ in range(T):
            y, s, tape = f.forward(x, s)
            tapes.append(tape)
            ys.append(y)
            x = y  # the output is the next input
        return f, tapes, ys

    def loss():
        _, _, ys = run()
        return float(sum((y * r).sum() for y, r in zip(ys, R)))

    f, tapes, ys = run()
    dnext, ds = np.zeros((B, H)), None
    for t in range(T - 1, -1, -1):
        dx, ds = f.backward(tapes[t], R[t] + dnext, ds)
        dnext = dx  # the gradient of the input at t flows to the output at t-1
    g = f.grads()
    res = gradcheck(loss, {"x0": x0, **layer.params}, {"x0": dnext, **g})
    assert res.max_rel_error < 1e-6, res


def test_step_function_errors():
    from rnnkit.errors import RnnkitError

    layer = make_recurrent("lstm", 3, 4, seed=0, dtype="float64")
    f = StepFunction(layer)
    y, s, tape = f.forward(np.zeros((2, 3)), None)
    f.backward(tape, np.ones((2, 4)))
    with pytest.raises(RnnkitError, match="already"):
        f.backward(tape, np.ones((2, 4)))
    with pytest.raises(RnnkitError, match="state"):
        f.forward(np.zeros((2, 3)), np.zeros((1, 2, 4)))  # LSTM needs (h, c)
    with pytest.raises(RnnkitError, match="bidirectional"):
        StepFunction(make_recurrent("rnn", 3, 4, bidirectional=True))
