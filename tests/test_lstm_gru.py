"""LSTM and GRU layers: gradient checks (full and truncated BPTT, ragged batches), PyTorch parity,
the numba fast path against the NumPy reference, dtypes and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import have, need

from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.layers import GRU, LSTM, _fast

KINDS = ("lstm", "gru")
PATHS = [
    False,
    pytest.param(True, marks=pytest.mark.needs("numba")),
]


@pytest.fixture
def fast_path():
    """Set the numba switch for one test and restore it afterwards."""
    old = _fast.ENABLED

    def set_(on: bool):
        _fast.set_enabled(on)

    yield set_
    _fast.ENABLED = old


def make(kind, I, H, dtype="float64", seed=0, **kw):
    return (LSTM if kind == "lstm" else GRU)(I, H, seed=seed, dtype=dtype, **kw)


def n_states(kind):
    return 2 if kind == "lstm" else 1


def pack(kind, states):
    """tuple of (1, B, H) arrays -> the layer's state argument."""
    return tuple(states) if kind == "lstm" else states[0]


def unpack(kind, state):
    return tuple(state) if kind == "lstm" else (state,)


class Problem:
    """Random inputs, initial states and loss weights: L = sum R*y + sum_k Rs[k]*state_n[k]."""

    def __init__(self, kind, T, B, I, H, lengths=None, seed=1, dtype="float64"):
        rng = np.random.default_rng(seed)
        self.kind, self.lengths = kind, lengths
        self.x = rng.standard_normal((T, B, I)).astype(dtype)
        self.s0 = [rng.standard_normal((1, B, H)).astype(dtype) for _ in range(n_states(kind))]
        self.R = rng.standard_normal((T, B, H)).astype(dtype)
        self.Rs = [rng.standard_normal((1, B, H)).astype(dtype) for _ in range(n_states(kind))]

    def loss(self, layer):
        y, sn = layer.forward(self.x, pack(self.kind, self.s0), lengths=self.lengths)
        return float(
            (y * self.R).sum() + sum((s * r).sum() for s, r in zip(unpack(self.kind, sn), self.Rs))
        )

    def grads(self, layer, k=None):
        layer.forward(self.x, pack(self.kind, self.s0), lengths=self.lengths)
        dx, ds0 = layer.backward(self.R, pack(self.kind, self.Rs), bptt_truncate=k)
        return dx, unpack(self.kind, ds0), dict(layer.grads)


# ----------------------------------------------------------------------------------------------
# gradient checks (float64, central differences) of full BPTT: x, initial states, all params
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "T,B,lengths", [(1, 1, None), (4, 1, None), (5, 3, [5, 2, 1]), (3, 2, None)]
)
def test_gradcheck_full_bptt(kind, T, B, lengths, fast, fast_path):
    fast_path(fast)
    I, H = 3, 4
    layer = make(kind, I, H)
    p = Problem(kind, T, B, I, H, lengths=None if lengths is None else np.array(lengths))
    dx, ds0, g = p.grads(layer)
    params = {"x": p.x, **{f"s0_{k}": s for k, s in enumerate(p.s0)}, **layer.params}
    grads = {"x": dx, **{f"s0_{k}": s for k, s in enumerate(ds0)}, **g}
    res = gradcheck(lambda: p.loss(layer), params, grads)
    assert res.max_rel_error < 1e-6, str(res)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_no_bias(kind):
    layer = make(kind, 2, 3, bias=False)
    assert set(layer.params) == {"weight_ih_l0", "weight_hh_l0"}
    p = Problem(kind, 3, 2, 2, 3)
    dx, ds0, g = p.grads(layer)
    res = gradcheck(lambda: p.loss(layer), {"x": p.x, **layer.params}, {"x": dx, **g})
    assert res.max_rel_error < 1e-6, str(res)


# ----------------------------------------------------------------------------------------------
# truncated BPTT against a naive reference
# ----------------------------------------------------------------------------------------------
def truncated_reference(kind, layer, p: Problem, k: int):
    """Truncated BPTT the slow way: for every sequence b alone and every output t, replay steps
    s0 = max(0, t - k) .. t from the true state before s0 and backpropagate R[t] (plus the
    final-state weights if t is that sequence's last step) through those <= k+1 steps by full
    BPTT; the gradient reaching the state before s0 counts (for dh0/dc0) only when it is the
    initial state and fewer than k+1 steps were walked (t < k)."""
    T, B, I = p.x.shape
    H = layer.hidden_size
    lengths = np.full(B, T) if p.lengths is None else np.asarray(p.lengths)
    dx = np.zeros_like(p.x)
    ds0 = [np.zeros_like(s) for s in p.s0]
    grads = {n: np.zeros_like(v) for n, v in layer.params.items()}
    for b in range(B):
        L = int(lengths[b])
        xb = p.x[:L, b : b + 1]
        # the true states of this sequence: S[j] = state after step j - 1 (S[0] initial)
        S = [tuple(s[:, b : b + 1] for s in p.s0)]
        for t in range(L):
            _, sn = layer.forward(xb[t : t + 1], pack(kind, S[-1]))
            S.append(unpack(kind, sn))
        for t in range(L):
            s0 = max(0, t - k)
            layer.forward(xb[s0 : t + 1], pack(kind, S[s0]))
            dy = np.zeros((t + 1 - s0, 1, H))
            dy[-1] = p.R[t, b]
            last = t == L - 1
            dsn = tuple(r[:, b : b + 1] if last else np.zeros((1, 1, H)) for r in p.Rs)
            dxs, dss = layer.backward(dy, pack(kind, dsn), bptt_truncate=None)
            dx[s0 : t + 1, b : b + 1] += dxs
            for n in grads:
                grads[n] += layer.grads[n]
            if s0 == 0 and t < k:
                for acc, d in zip(ds0, unpack(kind, dss)):
                    acc[:, b : b + 1] += d
    return dx, ds0, grads


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [0, 1, 2, 4, 7])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1]])
def test_truncated_bptt_matches_reference(kind, k, lengths, fast, fast_path):
    fast_path(fast)
    T, B, I, H = 6, 3, 3, 4
    layer = make(kind, I, H, seed=2)
    p = Problem(kind, T, B, I, H, lengths=None if lengths is None else np.array(lengths), seed=3)
    dx, ds0, g = p.grads(layer, k=k)
    rdx, rds0, rg = truncated_reference(kind, layer, p, k)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    for a, r in zip(ds0, rds0):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)
    for n in g:
        np.testing.assert_allclose(g[n], rg[n], rtol=1e-10, atol=1e-12, err_msg=n)
    if k >= T:  # truncation at or beyond T is full BPTT, exactly
        fdx, fds0, fg = p.grads(layer, k=None)
        np.testing.assert_array_equal(dx, fdx)
        for n in g:
            np.testing.assert_array_equal(g[n], fg[n])


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_gradcheck_window_one_step(kind):
    """k = 0 with T = 1 is the whole gradient: check it numerically too."""
    layer = make(kind, 2, 3, bptt_truncate=0)
    p = Problem(kind, 1, 2, 2, 3)
    dx, ds0, g = p.grads(layer, k=0)
    res = gradcheck(lambda: p.loss(layer), {"x": p.x, **layer.params}, {"x": dx, **g})
    assert res.max_rel_error < 1e-6, str(res)


# ----------------------------------------------------------------------------------------------
# PyTorch parity (float64)
# ----------------------------------------------------------------------------------------------
def torch_run(torch, tm, kind, x, s0, R, Rs):
    """Forward + backward of torch module tm on one batch; returns outputs and all gradients."""
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in s0]
    for prm in tm.parameters():
        prm.grad = None
    y, sn = tm(xt, tuple(st) if kind == "lstm" else st[0])
    sn = tuple(sn) if kind == "lstm" else (sn,)
    loss = (y * torch.tensor(R)).sum() + sum((s * torch.tensor(r)).sum() for s, r in zip(sn, Rs))
    loss.backward()
    return (
        y.detach().numpy(),
        [s.detach().numpy() for s in sn],
        xt.grad.numpy(),
        [s.grad.numpy() for s in st],
        {n: prm.grad.numpy().copy() for n, prm in tm.named_parameters()},
    )


def torch_module(torch, kind, I, H, bias=True):
    torch.manual_seed(0)
    return (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, H, bias=bias).double()


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_torch_parity(kind, bias, fast, fast_path):
    torch = need("torch")
    fast_path(fast)
    T, B, I, H = 7, 4, 5, 6
    tm = torch_module(torch, kind, I, H, bias)
    layer = make(kind, I, H, bias=bias)
    layer.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    p = Problem(kind, T, B, I, H, seed=4)
    ty, tsn, tdx, tds0, tg = torch_run(torch, tm, kind, p.x, p.s0, p.R, p.Rs)
    y, sn = layer.forward(p.x, pack(kind, p.s0))
    dx, ds0 = layer.backward(p.R, pack(kind, p.Rs))
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, ty, **tol)
    for a, b in zip(unpack(kind, sn), tsn):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(dx, tdx, **tol)
    for a, b in zip(unpack(kind, ds0), tds0):
        np.testing.assert_allclose(a, b, **tol)
    assert set(layer.grads) == set(tg)
    for n in tg:
        np.testing.assert_allclose(layer.grads[n], tg[n], err_msg=n, **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_parity_zero_state_and_no_state_grads(kind):
    torch = need("torch")
    T, B, I, H = 5, 2, 3, 4
    tm = torch_module(torch, kind, I, H)
    layer = make(kind, I, H)
    layer.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    p = Problem(kind, T, B, I, H, seed=5)
    zeros = [np.zeros_like(s) for s in p.s0]
    no_rs = [np.zeros_like(r) for r in p.Rs]
    ty, _, tdx, _, tg = torch_run(torch, tm, kind, p.x, zeros, p.R, no_rs)
    y, _ = layer.forward(p.x)  # h0 (and c0) default to zeros
    dx, _ = layer.backward(p.R)  # no final-state gradient
    np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tdx, rtol=1e-10, atol=1e-12)
    for n in tg:
        np.testing.assert_allclose(layer.grads[n], tg[n], rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_parity_ragged(kind, fast, fast_path):
    """Each sequence of a padded batch gives what torch gives on that sequence alone."""
    torch = need("torch")
    fast_path(fast)
    T, B, I, H = 6, 3, 3, 5
    lengths = np.array([6, 2, 4])
    tm = torch_module(torch, kind, I, H)
    layer = make(kind, I, H)
    layer.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    p = Problem(kind, T, B, I, H, lengths=lengths, seed=6)
    y, sn = layer.forward(p.x, pack(kind, p.s0), lengths=lengths)
    dx, ds0 = layer.backward(p.R, pack(kind, p.Rs))
    tol = dict(rtol=1e-10, atol=1e-12)
    gsum = {n: 0.0 for n in layer.grads}
    for b, L in enumerate(lengths):
        ty, tsn, tdx, tds0, tg = torch_run(
            torch,
            tm,
            kind,
            p.x[:L, b : b + 1],
            [s[:, b : b + 1] for s in p.s0],
            p.R[:L, b : b + 1],
            [r[:, b : b + 1] for r in p.Rs],
        )
        np.testing.assert_allclose(y[:L, b : b + 1], ty, **tol)
        assert np.all(y[L:, b] == 0.0)  # padded outputs are zeros
        for a, t in zip(unpack(kind, sn), tsn):
            np.testing.assert_allclose(a[:, b : b + 1], t, **tol)
        np.testing.assert_allclose(dx[:L, b : b + 1], tdx, **tol)
        assert np.all(dx[L:, b] == 0.0)
        for a, t in zip(unpack(kind, ds0), tds0):
            np.testing.assert_allclose(a[:, b : b + 1], t, **tol)
        for n in gsum:
            gsum[n] = gsum[n] + tg[n]
    for n in gsum:
        np.testing.assert_allclose(layer.grads[n], gsum[n], err_msg=n, **tol)


def test_lstm_forget_bias_init():
    base = LSTM(3, 4, seed=7)
    fb = LSTM(3, 4, seed=7, forget_bias=1.0)
    H = 4
    for n in base.params:
        if n != "bias_ih_l0":
            np.testing.assert_array_equal(base.params[n], fb.params[n])
    d = fb.params["bias_ih_l0"] - base.params["bias_ih_l0"]
    np.testing.assert_allclose(d[H : 2 * H], 1.0, rtol=1e-6)
    assert np.all(d[:H] == 0) and np.all(d[2 * H :] == 0)
    assert fb.forget_bias == 1.0
    with pytest.raises(RnnkitError):
        LSTM(3, 4, bias=False, forget_bias=1.0)
    with pytest.raises(RnnkitError):
        LSTM(3, 4, forget_bias=float("nan"))


def test_shapes_and_names_match_torch_layout():
    lstm, gru = LSTM(3, 5), GRU(3, 5)
    assert {n: p.shape for n, p in lstm.params.items()} == {
        "weight_ih_l0": (20, 3),
        "weight_hh_l0": (20, 5),
        "bias_ih_l0": (20,),
        "bias_hh_l0": (20,),
    }
    assert {n: p.shape for n, p in gru.params.items()} == {
        "weight_ih_l0": (15, 3),
        "weight_hh_l0": (15, 5),
        "bias_ih_l0": (15,),
        "bias_hh_l0": (15,),
    }
    x = np.zeros((2, 1, 3), np.float32)
    gru.forward(x)
    lstm.forward(x)
    g, s = gru.last_cache().steps, lstm.last_cache().steps
    assert g.bias_hh_rows == slice(0, 10) and g.hh_rows == slice(10, 15)
    assert s.hh_rows is None


# ----------------------------------------------------------------------------------------------
# numba fast path against the NumPy reference
# ----------------------------------------------------------------------------------------------
def run_all(kind, layer, p, k=None):
    y, sn = layer.forward(p.x, pack(kind, p.s0), lengths=p.lengths)
    dx, ds0 = layer.backward(p.R, pack(kind, p.Rs), bptt_truncate=k)
    grads = [layer.grads[n] for n in sorted(layer.grads)]
    return [y, *unpack(kind, sn), dx, *unpack(kind, ds0), *grads]


@pytest.mark.needs("numba")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["full", "ragged", "truncated", "ragged-truncated"])
def test_numba_matches_numpy(kind, dtype, case, fast_path):
    T, B, I, H = 9, 4, 6, 16
    lengths = np.array([9, 5, 1, 7]) if "ragged" in case else None
    k = 3 if "truncated" in case else None
    layer = make(kind, I, H, dtype=dtype, seed=8)
    p = Problem(kind, T, B, I, H, lengths=lengths, seed=9, dtype=dtype)
    fast_path(False)
    ref = run_all(kind, layer, p, k)
    fast_path(True)
    got = run_all(kind, layer, p, k)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    for a, r in zip(got, ref):
        assert a.dtype == r.dtype == np.dtype(dtype)
        scale = max(float(np.abs(r).max()), 1e-30)
        assert float(np.abs(a - r).max()) <= rtol * scale


@pytest.mark.needs("numba")
def test_fast_tanh32_within_one_ulp():
    x = np.concatenate(
        [np.linspace(-12, 12, 200001), np.geomspace(1e-30, 1.0, 2001), [0.0, -0.0, np.inf, -np.inf]]
    ).astype(np.float32)
    got = _fast.tanh32_reference(x)
    exact = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = np.abs(got.view(np.int32).astype(np.int64) - exact.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1
    assert np.isnan(_fast.tanh32_reference(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_backward_leaves_the_cache_intact(kind, fast, fast_path):
    """One forward, several backward passes (full, truncated, full) with retain_cache=True but
    the last: the same answers again."""
    fast_path(fast)
    layer = make(kind, 3, 4)
    p = Problem(kind, 6, 2, 3, 4, lengths=np.array([6, 4]), seed=13)
    layer.forward(p.x, pack(kind, p.s0), lengths=p.lengths)
    first = layer.backward(p.R, pack(kind, p.Rs), retain_cache=True)
    g1 = dict(layer.grads)
    layer.backward(p.R, pack(kind, p.Rs), bptt_truncate=1, retain_cache=True)
    again = layer.backward(p.R, pack(kind, p.Rs))
    np.testing.assert_array_equal(first[0], again[0])
    for a, b in zip(unpack(kind, first[1]), unpack(kind, again[1])):
        np.testing.assert_array_equal(a, b)
    for n in g1:
        np.testing.assert_array_equal(g1[n], layer.grads[n])


def test_env_var_turns_the_fast_path_off():
    import os
    import subprocess
    import sys

    code = "from rnnkit.layers import _fast; print(_fast.ENABLED, _fast.kernels() is None)"
    env = dict(os.environ, RNNKIT_NO_NUMBA="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["False", "True"]


def test_switch(fast_path):
    fast_path(False)
    assert _fast.kernels() is None
    layer = LSTM(2, 3)
    layer.forward(np.zeros((2, 1, 2), np.float32))
    assert layer.last_cache().steps.fast is None
    if have("numba"):
        fast_path(True)
        assert _fast.kernels() is _fast
        layer.forward(np.zeros((2, 1, 2), np.float32))
        assert layer.last_cache().steps.fast is _fast


# ----------------------------------------------------------------------------------------------
# dtypes, token inputs, steppers, errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_float32_preserved(kind, fast, fast_path):
    fast_path(fast)
    layer = make(kind, 3, 4, dtype="float32")
    p = Problem(kind, 5, 2, 3, 4, lengths=np.array([5, 3]), dtype="float32")
    out = run_all(kind, layer, p)
    out += run_all(kind, layer, p, k=1)
    assert all(a.dtype == np.float32 for a in out)
    assert all(np.all(np.isfinite(a)) for a in out)


@pytest.mark.parametrize("kind", KINDS)
def test_token_ids_equal_one_hot(kind):
    T, B, V, H = 4, 3, 5, 4
    layer = make(kind, V, H)
    ids = np.random.default_rng(10).integers(0, V, (T, B))
    onehot = np.eye(V)[ids]
    R = np.random.default_rng(11).standard_normal((T, B, H))
    y1, _ = layer.forward(ids)
    dx1, _ = layer.backward(R)
    g1 = dict(layer.grads)
    y2, _ = layer.forward(onehot)
    layer.backward(R)
    assert dx1 is None
    np.testing.assert_allclose(y1, y2, rtol=1e-13, atol=1e-15)
    for n in g1:
        np.testing.assert_allclose(g1[n], layer.grads[n], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_stepper_matches_forward(kind, fast, fast_path):
    from rnnkit.layers.stepper import Stepper

    fast_path(fast)
    T, B, I, H = 5, 2, 3, 4
    layer = make(kind, I, H)
    p = Problem(kind, T, B, I, H, seed=12)
    y, _ = layer.forward(p.x, pack(kind, p.s0))
    st = Stepper(layer, B, state0=tuple(s[0] for s in p.s0))
    for t in range(T):
        np.testing.assert_allclose(st.step(p.x[t]), y[t], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_registry_builds_both(kind):
    from rnnkit.layers.registry import make_recurrent

    layer = make_recurrent(kind, 3, 4, seed=0)
    assert type(layer) is (LSTM if kind == "lstm" else GRU)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_raise(kind):
    layer = make(kind, 3, 4)
    x = np.zeros((5, 2, 3))
    with pytest.raises(RnnkitError):
        layer.forward(np.zeros((5, 2, 4)))  # wrong feature size
    with pytest.raises(RnnkitError):
        layer.forward(x.astype(np.float32))  # wrong dtype
    with pytest.raises(RnnkitError):
        layer.forward(np.zeros((5, 3)))  # float 2-D input
    bad = np.zeros((1, 3, 4))  # batch 3, not 2
    with pytest.raises(RnnkitError):
        layer.forward(x, pack(kind, [bad] * n_states(kind)))
    with pytest.raises(RnnkitError):
        layer.forward(x, pack(kind, [np.zeros((2, 4))] * n_states(kind)))  # not (1, B, H)
    with pytest.raises(RnnkitError):
        layer.backward(np.zeros((5, 2, 4)))  # backward before forward
    layer.forward(x)
    with pytest.raises(RnnkitError):
        layer.backward(np.zeros((5, 2, 5)))  # dy of the wrong shape
    with pytest.raises(RnnkitError):
        layer.forward(x, lengths=np.array([6, 1]))  # length beyond T
    with pytest.raises(RnnkitError):
        make(kind, 3, 0)
    with pytest.raises(RnnkitError):
        make(kind, 3, 4, dtype="int32")


def test_lstm_state_must_be_a_pair():
    layer = LSTM(3, 4, dtype="float64")
    x = np.zeros((2, 1, 3))
    h0 = np.zeros((1, 1, 4))
    with pytest.raises(RnnkitError):
        layer.forward(x, h0)
    with pytest.raises(RnnkitError):
        layer.forward(x, (h0,))
    with pytest.raises(RnnkitError):
        layer.forward(x, [h0, h0])  # a list is not the (h0, c0) pair
    layer.forward(x, (h0, h0))
    with pytest.raises(RnnkitError):
        layer.backward(np.zeros((2, 1, 4)), np.zeros((1, 1, 4)))  # final-state grads: a pair too
