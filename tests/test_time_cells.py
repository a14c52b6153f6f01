"""The multiple-time-scale cells of ``rnnkit/layers/time_cells.py`` (leaky-fixed, skip,
clockwork): each forward equals a plain loop written from its equation, and BPTT passes gradcheck
on sequences long enough for every delay and period to act. (The conformance suite checks them
like every registered cell.)"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit.layers.time_cells  # noqa: F401  (registers the cells)
from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.layers import cell_names, make_recurrent
from rnnkit.models.lm import LanguageModel, LMConfig

T, B, I, H = 12, 2, 3, 6


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))


def _pre(layer, x_t, h_prev):
    p = layer.params
    return (
        x_t @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h_prev @ p["weight_hh_l0"].T + p["bias_hh_l0"]
    )


def test_registered():
    assert {"leaky-fixed", "skip", "clockwork"} <= set(cell_names())


def test_leaky_fixed_time_constants_and_forward():
    layer = make_recurrent("leaky-fixed", I, H, seed=0, dtype="float64", tau_min=2.0, tau_max=64.0)
    np.testing.assert_allclose(layer.cell.tau, [2, 4, 8, 16, 32, 64])
    assert set(layer.params) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    x, _ = _data()
    y, _ = layer.forward(x)
    h = np.zeros((B, H))
    for t in range(T):
        h = h + (np.tanh(_pre(layer, x[t], h)) - h) / layer.cell.tau
        np.testing.assert_allclose(y[t], h, rtol=1e-12, atol=1e-14)


def test_skip_forward_reads_the_delayed_states():
    layer = make_recurrent("skip", I, H, seed=1, dtype="float64", delays="1,3,5")
    assert layer.cell.n_states == 5
    assert {"weight_hh_skip3_l0", "weight_hh_skip5_l0"} <= set(layer.params)
    x, _ = _data(1)
    y, h_n = layer.forward(x)
    hs = [np.zeros((B, H))] * 5  # h(-4) .. h(0)
    for t in range(T):
        a = _pre(layer, x[t], hs[-1])
        for d in (3, 5):
            a = a + hs[-d] @ layer.params[f"weight_hh_skip{d}_l0"].T
        hs.append(np.tanh(a))
        np.testing.assert_allclose(y[t], hs[-1], rtol=1e-12, atol=1e-14)
    for j in range(5):  # the final state is the delay line h(T-1), ..., h(T-5)
        np.testing.assert_allclose(h_n[j][0], hs[-1 - j], rtol=1e-12, atol=1e-14)


def test_clockwork_units_update_on_their_period():
    layer = make_recurrent("clockwork", I, H, seed=2, dtype="float64", periods=(1, 2, 4))
    np.testing.assert_array_equal(layer.cell.period, [1, 1, 2, 2, 4, 4])
    x, _ = _data(2)
    y, (h_n, n_n) = layer.forward(x)
    h = np.zeros((B, H))
    for t in range(T):
        upd = t % layer.cell.period == 0
        h = np.where(upd, np.tanh(_pre(layer, x[t], h)), h)
        np.testing.assert_allclose(y[t], h, rtol=1e-12, atol=1e-14)
    assert np.all(n_n == T % 4)  # the counter wraps at lcm(periods)
    # two chunks with the state carried give the one pass: the counter carries the phase
    y1, s1 = layer.forward(x[:5])
    y2, _ = layer.forward(x[5:], s1)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "cell,opts",
    [
        ("skip", {"delays": (1, 3, 4)}),
        ("clockwork", {"periods": (1, 3, 4)}),
        ("leaky-fixed", {"tau_max": 10.0}),
    ],
)
def test_gradcheck_long_enough_for_every_time_scale(cell, opts):
    layer = make_recurrent(cell, I, H, seed=3, dtype="float64", **opts)
    x, R = _data(3)
    lengths = np.array([T, 7])

    def loss():
        y, _ = layer.forward(x, lengths=lengths)
        return float((y * R).sum())

    loss()
    dx, _ = layer.backward(R)
    res = gradcheck(loss, {"x": x, **layer.params}, {"x": dx, **layer.grads})
    assert res.max_rel_error < 1e-6, res


@pytest.mark.parametrize("cell", ["skip", "clockwork", "leaky-fixed"])
def test_language_model_takes_the_cell(cell):
    m = LanguageModel(
        LMConfig(vocab_size=7, embed_size=3, hidden_size=4, cell=cell, dtype="float64", seed=0)
    )
    rng = np.random.default_rng(0)
    inp, tgt, lengths = rng.integers(0, 7, (9, 2)), rng.integers(0, 7, (9, 2)), np.array([9, 4])
    g = m.loss_and_grads((inp, tgt, lengths)).grads
    res = gradcheck(lambda: m.nll(inp, tgt, lengths)[0], dict(m.params), g)
    assert res.max_rel_error < 1e-6, res


@pytest.mark.parametrize(
    "cell,opts",
    [
        ("skip", {"delays": "1,x"}),
        ("skip", {"delays": (0, 2)}),
        ("clockwork", {"periods": ()}),
        ("leaky-fixed", {"tau_min": 0.5}),
    ],
)
def test_bad_options_are_one_line_errors(cell, opts):
    with pytest.raises(RnnkitError):
        make_recurrent(cell, I, H, **opts)
