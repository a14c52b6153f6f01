"""Memory of a training step: the backward consumes the forward's cache (PyTorch's retain_graph
semantics), gives the same gradients as a non-destructive backward, and keeps the peak of a
training step close to what the cached activations need."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.functional import softmax_cross_entropy
from rnnkit.layers import GRU, LSTM, RNN, _fast
from rnnkit.layers.dense import linear_backward, linear_forward
from rnnkit.layers.recurrent import recurrent_backward, recurrent_forward

KINDS = ("rnn", "relu", "lstm", "gru")
PATHS = [
    False,
    pytest.param(True, marks=pytest.mark.needs("numba")),
]
TWICE = "backward called twice after one forward"


@pytest.fixture
def fast_path():
    """Set the numba switch for one test and restore it afterwards."""
    old = _fast.ENABLED
    yield _fast.set_enabled
    _fast.ENABLED = old


def make(kind, I, H, dtype="float64", **kw):
    if kind in ("rnn", "relu"):
        return RNN(
            I, H, nonlinearity="relu" if kind == "relu" else "tanh", seed=3, dtype=dtype, **kw
        )
    return (LSTM if kind == "lstm" else GRU)(I, H, seed=3, dtype=dtype, **kw)


def inputs(layer, T, B, seed=0, ids=False):
    rng = np.random.default_rng(seed)
    I, H, dt = layer.input_size, layer.hidden_size, layer.dtype
    x = rng.integers(0, I, (T, B)) if ids else rng.standard_normal((T, B, I)).astype(dt)
    ns = layer.cell.n_states
    s0 = tuple(rng.standard_normal((1, B, H)).astype(dt) for _ in range(ns))
    dsn = tuple(rng.standard_normal((1, B, H)).astype(dt) for _ in range(ns))
    dy = rng.standard_normal((T, B, H)).astype(dt)
    one = (lambda s: s) if ns == 2 else (lambda s: s[0])
    return x, one(s0), dy, one(dsn)


def flat(out):
    dx, ds0 = out
    return [dx] + list(ds0 if isinstance(ds0, tuple) else (ds0,))


# -- (a) a consumed cache ---------------------------------------------------------------------
@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_second_backward_raises_unless_retained(kind, fast, fast_path):
    fast_path(fast)
    layer = make(kind, 3, 4)
    x, s0, dy, dsn = inputs(layer, 5, 2)
    layer.forward(x, s0)
    layer.backward(dy, dsn)
    with pytest.raises(RnnkitError, match=TWICE):
        layer.backward(dy, dsn)
    with pytest.raises(RnnkitError, match="retain_cache=True"):
        layer.backward(dy, bptt_truncate=1)
    # retained: as many identical backward passes as wanted, then one that consumes
    layer.forward(x, s0)
    a = layer.backward(dy, dsn, retain_cache=True)
    ga = {n: g.copy() for n, g in layer.grads.items()}
    b = layer.backward(dy, dsn, retain_cache=True)
    gb = {n: g.copy() for n, g in layer.grads.items()}
    c = layer.backward(dy, dsn)
    for u, v, w in zip(flat(a), flat(b), flat(c)):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
    for n in ga:
        np.testing.assert_array_equal(ga[n], gb[n])
        np.testing.assert_array_equal(ga[n], layer.grads[n])
    with pytest.raises(RnnkitError, match=TWICE):
        layer.backward(dy, dsn, retain_cache=True)
    layer.forward(x, s0)  # a new forward: a new cache
    layer.backward(dy, dsn)


@pytest.mark.parametrize("kind", KINDS)
def test_engine_consumes_and_frees_the_cache(kind):
    layer = make(kind, 3, 4)
    x, _, dy, _ = inputs(layer, 5, 2)
    y, s_n, cache = recurrent_forward(
        layer.cell, layer.weights(), x, None, hidden_size=4, dtype=layer.dtype
    )
    assert not any(np.shares_memory(s, S) for s in s_n for S in cache.S)  # copies
    recurrent_backward(layer.cell, layer.weights(), cache, dy, retain_cache=True)
    assert not cache.consumed and cache.S and cache.buf
    recurrent_backward(layer.cell, layer.weights(), cache, dy)
    assert cache.consumed and cache.S == () and cache.buf == {}  # the arrays are gone
    with pytest.raises(RnnkitError, match=TWICE):
        recurrent_backward(layer.cell, layer.weights(), cache, dy, retain_cache=True)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_errors_before_consuming(kind):
    """A backward refused for a bad argument leaves the cache usable."""
    layer = make(kind, 3, 4)
    x, s0, dy, dsn = inputs(layer, 5, 2)
    layer.forward(x, s0)
    with pytest.raises(RnnkitError, match="dy must have"):
        layer.backward(dy[:, :1])
    with pytest.raises(RnnkitError, match="bptt_truncate"):
        layer.backward(dy, bptt_truncate=-1)
    layer.backward(dy, dsn)


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_backward_does_not_write_its_arguments(kind, fast, fast_path):
    fast_path(fast)
    layer = make(kind, 3, 4, dtype="float32")
    x, s0, dy, dsn = inputs(layer, 6, 3)
    copies = [a.copy() for a in [x, dy] + list(dsn if isinstance(dsn, tuple) else (dsn,))]
    for k in (None, 2):
        layer.forward(x, s0, lengths=np.array([6, 3, 1]))
        layer.backward(dy, dsn, bptt_truncate=k)
    for a, b in zip([x, dy] + list(dsn if isinstance(dsn, tuple) else (dsn,)), copies):
        np.testing.assert_array_equal(a, b)


def test_forward_drops_the_previous_cache():
    layer = make("lstm", 3, 4)
    x, s0, dy, dsn = inputs(layer, 5, 2)
    layer.forward(x, s0)
    with pytest.raises(RnnkitError):
        layer.forward(np.zeros((5, 2, 7)))  # wrong input size
    with pytest.raises(RnnkitError, match="before forward"):
        layer.backward(dy)


# -- (b) consuming and retaining backward passes agree bit for bit ------------------------------
@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_retained_and_consumed_gradients_identical(kind, dtype, fast, fast_path):
    fast_path(fast)
    T, B = 7, 3
    for ids in (False, True):
        layer = make(kind, 5, 6, dtype=dtype)
        x, s0, dy, dsn = inputs(layer, T, B, seed=4, ids=ids)
        for lengths in (None, np.array([7, 4, 1])):
            for k in (None, 0, 2, T - 1, T):
                out, grads = [], []
                for retain in (True, False):
                    layer.forward(x, s0, lengths=lengths)
                    out.append(flat(layer.backward(dy, dsn, bptt_truncate=k, retain_cache=retain)))
                    grads.append({n: g.copy() for n, g in layer.grads.items()})
                for u, v in zip(*out):
                    if u is None:
                        assert v is None and ids
                    else:
                        np.testing.assert_array_equal(u, v)
                for n in grads[0]:
                    np.testing.assert_array_equal(grads[0][n], grads[1][n], err_msg=n)


@pytest.mark.parametrize("kind", KINDS)
def test_without_bias_and_without_dy(kind):
    layer = make(kind, 3, 4, bias=False)
    x, s0, dy, dsn = inputs(layer, 5, 2)
    res = []
    for retain in (True, False):
        layer.forward(x, s0)
        res.append(
            flat(layer.backward(None, dsn, retain_cache=retain)) + list(layer.grads.values())
        )
        layer.forward(x, s0)
        res[-1] += flat(layer.backward(np.zeros_like(dy), dsn, retain_cache=retain))
    assert len(res[0]) == len(res[1])
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


# -- (c) the peak of a training step ---------------------------------------------------------------
def cached_bytes(cache, params) -> int:
    """nbytes of the cache's own arrays (S and buf), skipping any that alias a parameter."""
    arrays = list(cache.S) + [v for v in cache.buf.values() if isinstance(v, np.ndarray)]
    return sum(
        a.nbytes
        for a in {id(a): a for a in arrays}.values()
        if not any(np.shares_memory(a, p) for p in params.values())
    )


def training_step(layer, x, tgt, Wo, bo):
    """forward, output layer, summed cross-entropy, backward; only outputs kept (like a careful
    training loop, and ``benchmarks/bench_step.py --memory``)."""
    T, B, I = x.shape
    y, _, cache = recurrent_forward(
        layer.cell, layer.weights(), x, None, hidden_size=layer.hidden_size, dtype=layer.dtype
    )
    logits = linear_forward(y, Wo, bo)
    _, _, dlogits = softmax_cross_entropy(logits, tgt, inplace=True)
    del logits
    dy, dWo, dbo = linear_backward(y, Wo, dlogits)
    del y, dlogits
    dx, _, grads = recurrent_backward(layer.cell, layer.weights(), cache, dy)
    return dx, grads, dWo, dbo


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_training_step_peak_within_1_6x_cached(kind, fast, fast_path):
    fast_path(fast)
    T, B, I, H, O = 50, 32, 64, 128, 64
    layer = make(kind, I, H, dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    tgt = rng.integers(0, O, (T, B))
    Wo = rng.uniform(-0.1, 0.1, (O, H)).astype(np.float32)
    bo = np.zeros(O, np.float32)
    training_step(layer, x, tgt, Wo, bo)  # warm: JIT, first-call allocations
    y, _, cache = recurrent_forward(
        layer.cell, layer.weights(), x, None, hidden_size=H, dtype=np.float32
    )
    need = cached_bytes(cache, layer.weights()) + linear_forward(y, Wo, bo).nbytes
    del y, cache
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = training_step(layer, x, tgt, Wo, bo)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del out
    assert peak < 1.6 * need, (peak / need, peak, need)
