"""The conformance suite: every registered cell is checked the same way. Registering a cell
(``rnnkit.layers.register_cell``) is how it gets tested: this file needs no change.

For each cell, float64 unless said otherwise:
* gradcheck of full BPTT on a ragged batch, w.r.t. inputs, initial states and every parameter
  (the cell's own included), relative error < 1e-6;
* truncated BPTT against a brute-force unrolling of every output's window;
* a ragged batch gives what each sequence gives alone (outputs, final states, gradients);
* a retained cache gives the same gradients as a consumed one, twice;
* stepping one step at a time (``StepFunction``) equals the sequence forward and backward;
* float32 agrees with float64;
* stacked and bidirectional layers of the cell pass gradcheck too;
* a fused runner (``Cell.steps_class``) gives what the cell's ``step`` / ``step_back`` give.

``tests/test_cells_registered.py`` checks that every test here runs for every registered cell.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from rnnkit.gradcheck import _truncated_reference, gradcheck, relative_error
from rnnkit.layers import StepFunction, cell_names, check_parts, make_recurrent

CELLS = cell_names()
T, B, I, H = 5, 3, 4, 3
LENGTHS = np.array([5, 2, 1])


def _problem(cell, seed=0, dtype="float64", **kw):
    rng = np.random.default_rng(seed)
    layer = make_recurrent(cell, I, H, seed=seed, dtype=dtype, **kw)
    L = layer.num_layers * layer.num_directions
    n = layer.cell.n_states
    x = rng.standard_normal((T, B, I)).astype(dtype)
    s0 = tuple(rng.standard_normal((L, B, H)).astype(dtype) for _ in range(n))
    R = rng.standard_normal((T, B, layer.output_size)).astype(dtype)
    return layer, x, (s0 if n > 1 else s0[0]), R


def _pack(s):
    return check_parts(s, len(s) if isinstance(s, tuple) else 1)


def _check_grad(layer, x, h0, R, lengths):
    def loss():
        y, _ = layer.forward(x, h0, lengths=lengths)
        return float((y * R).sum())

    loss()
    dx, dh0 = layer.backward(R)
    ps = {"x": x, **{f"h0[{i}]": s for i, s in enumerate(_pack(h0))}, **layer.params}
    gs = {"x": dx, **{f"h0[{i}]": d for i, d in enumerate(_pack(dh0))}, **layer.grads}
    assert set(layer.grads) == set(layer.params)
    return gradcheck(loss, ps, gs).max_rel_error


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_full_bptt_ragged(cell):
    layer, x, h0, R = _problem(cell)
    assert _check_grad(layer, x, h0, R, LENGTHS) < 1e-6


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "kw", [dict(num_layers=2), dict(bidirectional=True), dict(num_layers=2, bidirectional=True)]
)
def test_gradcheck_stacked_bidirectional(cell, kw):
    layer, x, h0, R = _problem(cell, seed=3, **kw)
    assert _check_grad(layer, x, h0, R, LENGTHS) < 1e-6


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("k", [0, 2])
def test_truncated_bptt_equals_windows(cell, k):
    layer, x, h0, R = _problem(cell, seed=1)
    layer.forward(x, h0, lengths=LENGTHS)
    layer.backward(R, bptt_truncate=k)
    got = dict(layer.grads)
    ref = _truncated_reference(layer, x, h0, LENGTHS, R, k)
    for n in ref:
        assert relative_error(got[n], ref[n]).max() < 1e-8, n


@pytest.mark.parametrize("cell", CELLS)
def test_truncation_at_T_is_full_bptt(cell):
    layer, x, h0, R = _problem(cell, seed=2)
    layer.forward(x, h0, lengths=LENGTHS)
    layer.backward(R)
    full = dict(layer.grads)
    layer.forward(x, h0, lengths=LENGTHS)
    layer.backward(R, bptt_truncate=T)
    for n in full:
        np.testing.assert_allclose(layer.grads[n], full[n], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_ragged_batch_equals_each_sequence_alone(cell):
    layer, x, h0, R = _problem(cell, seed=4)
    dhn = tuple(np.random.default_rng(9).standard_normal(s.shape) for s in _pack(h0))
    dhn = dhn if len(dhn) > 1 else dhn[0]
    y, hn = layer.forward(x, h0, lengths=LENGTHS)
    dx, dh0 = layer.backward(R, dhn)
    total = {n: np.zeros_like(g) for n, g in layer.grads.items()}
    g_batch = dict(layer.grads)
    for b, Lb in enumerate(LENGTHS):
        hb = tuple(s[:, b : b + 1] for s in _pack(h0))
        dhb = tuple(s[:, b : b + 1] for s in _pack(dhn))
        yb, hnb = layer.forward(x[:Lb, b : b + 1], hb if len(hb) > 1 else hb[0])
        dxb, dh0b = layer.backward(R[:Lb, b : b + 1], dhb if len(dhb) > 1 else dhb[0])
        np.testing.assert_allclose(y[:Lb, b : b + 1], yb, rtol=1e-12, atol=1e-14)
        assert np.all(y[Lb:, b] == 0)
        np.testing.assert_allclose(dx[:Lb, b : b + 1], dxb, rtol=1e-10, atol=1e-12)
        for a, c in zip(_pack(hn), _pack(hnb)):
            np.testing.assert_allclose(a[:, b : b + 1], c, rtol=1e-12, atol=1e-14)
        for a, c in zip(_pack(dh0), _pack(dh0b)):
            np.testing.assert_allclose(a[:, b : b + 1], c, rtol=1e-10, atol=1e-12)
        for n in total:
            total[n] += layer.grads[n]
    for n in total:
        np.testing.assert_allclose(g_batch[n], total[n], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("k", [None, 2])
def test_retained_cache_equals_consumed(cell, k):
    layer, x, h0, R = _problem(cell, seed=5)
    layer.forward(x, h0, lengths=LENGTHS)
    r1 = layer.backward(R, bptt_truncate=k, retain_cache=True)
    g1 = dict(layer.grads)
    r2 = layer.backward(R, bptt_truncate=k)
    g2 = dict(layer.grads)
    for a, b in zip((r1[0],) + _pack(r1[1]), (r2[0],) + _pack(r2[1])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for n in g1:
        np.testing.assert_allclose(g1[n], g2[n], rtol=1e-12, atol=1e-14)
    with pytest.raises(Exception, match="twice"):
        layer.backward(R)


@pytest.mark.parametrize("cell", CELLS)
def test_step_at_a_time_equals_sequence(cell):
    layer, x, h0, R = _problem(cell, seed=6, num_layers=2)
    y, hn = layer.forward(x, h0)
    dx, dh0 = layer.backward(R)
    f = StepFunction(layer)
    s, tapes = h0, []
    for t in range(T):
        yt, s, tape = f.forward(x[t], s)
        np.testing.assert_allclose(yt, y[t], rtol=1e-12, atol=1e-13)
        tapes.append(tape)
    ds = None
    for t in range(T - 1, -1, -1):
        dxt, ds = f.backward(tapes[t], R[t], ds)
        np.testing.assert_allclose(dxt, dx[t], rtol=1e-10, atol=1e-12)
    for a, b in zip(_pack(ds), _pack(dh0)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    g = f.grads()
    for n in layer.grads:
        np.testing.assert_allclose(g[n], layer.grads[n], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_agrees_with_float64(cell):
    l64, x, h0, R = _problem(cell, seed=7)
    l32 = make_recurrent(cell, I, H, seed=7, dtype="float32")
    l32.load_state_dict(l64.state_dict())
    y64, _ = l64.forward(x, h0, lengths=LENGTHS)
    l64.backward(R)
    h32 = tuple(s.astype(np.float32) for s in _pack(h0))
    y32, _ = l32.forward(x.astype(np.float32), h32 if len(h32) > 1 else h32[0], lengths=LENGTHS)
    l32.backward(R.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    for n in l64.grads:
        assert l32.grads[n].dtype == np.float32
        np.testing.assert_allclose(l32.grads[n], l64.grads[n], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("k", [None, 1])
def test_fused_runner_equals_reference_steps(cell, k):
    """A cell's optional fused runner (``steps_class``: the built-in Elman, LSTM and GRU) gives
    what its ``step`` / ``step_back`` give, run by the generic runner: outputs, final states,
    every gradient; full and truncated BPTT on a ragged batch (a cell without one: trivially)."""
    fused, x, h0, R = _problem(cell, seed=8, num_layers=2)
    ref = make_recurrent(cell, I, H, seed=8, dtype="float64", num_layers=2)
    ref.cell.steps_class = None  # the generic runner on step / step_back
    outs = []
    for layer in (fused, ref):
        y, hn = layer.forward(x, h0, lengths=LENGTHS)
        dx, dh0 = layer.backward(R, hn, bptt_truncate=k)
        outs.append(((y, dx) + check_parts(hn, layer.cell.n_states) + _pack(dh0), layer.grads))
    (a, ga), (b, gb) = outs
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    assert set(ga) == set(gb)
    for n in ga:
        np.testing.assert_allclose(ga[n], gb[n], rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("retain", [False, True])
def test_a_pass_is_freed_without_the_garbage_collector(cell, retain):
    """No reference cycle keeps a forward pass's arrays alive: once the caller drops the cache,
    its memory is free at once (a cycle delays that to the next collection, and every pass then
    writes into fresh memory: page faults that made the LSTM's projection 2x slower)."""
    from rnnkit.layers.recurrent import recurrent_backward, recurrent_forward

    layer, x, h0, R = _problem(cell, dtype="float32")
    w = layer.weights(0, 0)
    gc.disable()
    try:
        y, _, cache = recurrent_forward(
            layer.cell, w, x, None, LENGTHS, hidden_size=H, dtype=x.dtype
        )
        runner = weakref.ref(cache.steps)
        recurrent_backward(layer.cell, w, cache, R[..., :H], retain_cache=retain)
        del cache
        assert runner() is None
    finally:
        gc.enable()
