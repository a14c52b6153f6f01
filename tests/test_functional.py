"""Tests for rnnkit.functional: softmax / cross-entropy, log_softmax, sigmoid, scatter-add,
masks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import need

from rnnkit import RnnkitError, gradcheck
from rnnkit.functional import (
    lengths_to_mask,
    log_softmax,
    mask_from,
    scatter_add_rows,
    sigmoid,
    softmax,
    softmax_cross_entropy,
)


def _direct_nll(logits, targets):
    """-log softmax(o)[y] by the textbook formula, in float64: log sum exp(o) - o[y]."""
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]
    return lse - np.take_along_axis(z, targets[..., None], axis=-1)[..., 0]


# ------------------------------------------------------------------- softmax_cross_entropy
def test_cross_entropy_matches_direct_formula():
    rng = np.random.default_rng(0)
    T, B, V = 4, 3, 7
    logits = rng.standard_normal((T, B, V)) * 3
    targets = rng.integers(0, V, (T, B))
    loss, n, g = softmax_cross_entropy(logits, targets)
    assert n == T * B
    assert isinstance(loss, float)
    assert loss == pytest.approx(_direct_nll(logits, targets).sum(), rel=1e-13)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = p - np.eye(V)[targets]
    assert g.shape == logits.shape and g.dtype == logits.dtype
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-14)
    # dL/do sums to zero over the classes
    np.testing.assert_allclose(g.sum(-1), 0.0, atol=1e-14)


def test_cross_entropy_gradient_vs_finite_differences():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 2, 5))
    targets = rng.integers(0, 5, (3, 2))
    mask = np.array([[True, True], [True, False], [False, False]])
    for m in (None, mask):
        _, _, g = softmax_cross_entropy(logits, targets, m)
        res = gradcheck(
            lambda m=m: softmax_cross_entropy(logits, targets, m)[0], {"o": logits}, {"o": g}
        )
        assert res.max_rel_error < 1e-7, str(res)


def test_cross_entropy_mask():
    rng = np.random.default_rng(2)
    T, B, V = 5, 3, 4
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, (T, B))
    lengths = np.array([5, 2, 3])
    mask = lengths_to_mask(lengths, T)
    loss, n, g = softmax_cross_entropy(logits, targets, mask)
    assert n == lengths.sum() == 10
    assert loss == pytest.approx(_direct_nll(logits, targets)[mask].sum(), rel=1e-13)
    assert np.all(g[~mask] == 0.0)
    _, _, g_full = softmax_cross_entropy(logits, targets)
    np.testing.assert_array_equal(g[mask], g_full[mask])
    # changing padded logits changes nothing
    logits2 = logits.copy()
    logits2[~mask] = 1e3
    loss2, n2, g2 = softmax_cross_entropy(logits2, targets, mask)
    assert (loss2, n2) == (loss, n)
    np.testing.assert_array_equal(g2, g)
    # all padded: nothing counted
    loss0, n0, g0 = softmax_cross_entropy(logits, targets, np.zeros((T, B), bool))
    assert loss0 == 0.0 and n0 == 0 and np.all(g0 == 0)


def test_cross_entropy_does_not_modify_logits_and_keeps_float32():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 2, 3)).astype(np.float32)
    before = logits.copy()
    targets = np.array([[0, 1], [2, 0]])
    loss, n, g = softmax_cross_entropy(logits, targets)
    np.testing.assert_array_equal(logits, before)
    assert g.dtype == np.float32
    assert loss == pytest.approx(_direct_nll(logits, targets).sum(), rel=1e-6)


def test_cross_entropy_large_logits_stable():
    logits = np.array([[1e4, 1e4 - 2.0, -1e4]])
    loss, _, g = softmax_cross_entropy(logits, np.array([1]))
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert loss == pytest.approx(2.0 + np.log1p(np.exp(-2.0)), rel=1e-12)


@pytest.mark.parametrize("dtype,gap", [(np.float64, 1000.0), (np.float32, 100.0)])
def test_cross_entropy_exact_for_unlikely_target(dtype, gap):
    logits = np.array([[0.0, gap]], dtype)
    loss, _, _ = softmax_cross_entropy(logits, np.array([0]))
    assert loss == pytest.approx(gap, rel=1e-6)


def test_cross_entropy_target_out_of_range():
    with pytest.raises(RnnkitError, match="out of range"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(RnnkitError, match="out of range"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0]))


# ---------------------------------------------------------------------- softmax / log_softmax
def test_log_softmax_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4 + 1.0, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        ls = log_softmax(z)
    assert np.all(np.isfinite(ls[:, :2]))
    np.testing.assert_allclose(ls[0], [0.0, -1e4, -2e4], atol=1e-12)
    np.testing.assert_allclose(ls[1], np.full(3, -np.log(3.0)), atol=1e-15)
    lse = np.log(2 * np.exp(0.0) + np.exp(1.0))
    np.testing.assert_allclose(ls[2], [-lse, 1.0 - lse, -lse], atol=1e-12)
    np.testing.assert_allclose(np.exp(ls).sum(-1), 1.0, atol=1e-15)


def test_log_softmax_matches_scipy():
    special = need("scipy.special")
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4, 6)) * 50
    z[0, 0] += 1e4
    np.testing.assert_allclose(
        log_softmax(z), special.log_softmax(z, axis=-1), rtol=1e-13, atol=1e-12
    )


def test_log_softmax_keeps_dtype_and_input():
    z = np.random.default_rng(5).standard_normal((2, 5)).astype(np.float32)
    before = z.copy()
    out = log_softmax(z)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(z, before)


def test_softmax_sums_to_one_and_matches_log_softmax():
    z = np.random.default_rng(6).standard_normal((3, 2, 5)) * 100
    p = softmax(z)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(p, np.exp(log_softmax(z)), rtol=1e-12, atol=1e-300)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        assert np.all(np.isfinite(softmax(np.array([1e4, -1e4, 0.0]))))


# ----------------------------------------------------------------------------------- sigmoid
def test_sigmoid_matches_definition():
    x = np.linspace(-40, 40, 4001)
    np.testing.assert_allclose(sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=0, atol=1e-15)
    # symmetric: sigma(-x) = 1 - sigma(x)
    np.testing.assert_allclose(sigmoid(-x), 1.0 - sigmoid(x), rtol=0, atol=1e-15)
    assert sigmoid(np.array([0.0]))[0] == 0.5


def test_sigmoid_no_overflow():
    x = np.array([-1000.0, -710.0, 710.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            s = sigmoid(x)
    np.testing.assert_array_equal(s, [0.0, 0.0, 1.0, 1.0])
    s32 = sigmoid(np.array([-1000.0, 1000.0], np.float32))
    assert s32.dtype == np.float32
    np.testing.assert_array_equal(s32, [0.0, 1.0])


def test_sigmoid_out_and_no_input_change():
    x = np.random.default_rng(7).standard_normal(10)
    before = x.copy()
    out = np.empty_like(x)
    r = sigmoid(x, out=out)
    assert r is out
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), atol=1e-15)


# ------------------------------------------------------------------------- scatter_add_rows
def test_scatter_add_rows_equals_one_hot_product():
    rng = np.random.default_rng(8)
    n_rows, T, B, F = 7, 5, 3, 4
    ids = rng.integers(0, n_rows, (T, B))
    ids[0, 0] = ids[1, 1] = ids[2, 2] = 3  # repeats accumulate
    rows = rng.standard_normal((T * B, F))
    out = scatter_add_rows(n_rows, ids, rows)
    dense = np.eye(n_rows)[ids.reshape(-1)].T @ rows
    assert out.shape == (n_rows, F)
    np.testing.assert_allclose(out, dense, rtol=0, atol=1e-13)
    unused = sorted(set(range(n_rows)) - set(ids.ravel().tolist()))
    assert np.all(out[unused] == 0.0)
    # (T, B, F) rows work too, and the dtype is kept
    out32 = scatter_add_rows(n_rows, ids, rows.reshape(T, B, F).astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "n_rows, N, F", [(7, 100, 5), (100, 1600, 64), (5000, 300, 8), (5000, 1000, 8)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_add_rows_every_path_agrees(n_rows, N, F, dtype):
    """The numba kernel (fast path, N >= 64), the one-hot product and the sorted reduceat (the
    last case without numba: 5000 x 1000 rows > 2^21) give the same sums."""
    from rnnkit.layers import _fast

    rng = np.random.default_rng(N)
    ids = rng.integers(0, n_rows, N)
    rows = rng.standard_normal((N, F)).astype(dtype)
    ref = np.zeros((n_rows, F))
    np.add.at(ref, ids, rows.astype(np.float64))
    was = _fast.ENABLED
    try:
        for on in (True, False):
            if on and not _fast.AVAILABLE:
                continue
            _fast.set_enabled(on)
            out = scatter_add_rows(n_rows, ids, rows)
            assert out.dtype == dtype and out.shape == (n_rows, F)
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    finally:
        _fast.set_enabled(was)
    with pytest.raises(RnnkitError, match=r"row ids out of range \[0, 7\): found -1\.\.3"):
        scatter_add_rows(7, np.array([3, -1]), np.ones((2, 2)))
    with pytest.raises(RnnkitError, match="out of range"):
        scatter_add_rows(7, np.array([7] * 100), np.ones((100, 2)))
    with pytest.raises(RnnkitError, match="200 row ids but 100 rows"):  # never read past the end
        scatter_add_rows(7, np.zeros(200, np.int64), np.ones((100, 2)))
    with pytest.raises(RnnkitError, match="must be integers"):
        scatter_add_rows(7, np.zeros(100), np.ones((100, 2)))


def test_scatter_add_is_adjoint_of_gather():
    rng = np.random.default_rng(9)
    table = rng.standard_normal((6, 3))
    ids = rng.integers(0, 6, 10)
    g = rng.standard_normal((10, 3))
    # <table[ids], g> = <table, scatter_add(ids, g)>
    assert np.sum(table[ids] * g) == pytest.approx(
        np.sum(table * scatter_add_rows(6, ids, g)), rel=1e-12
    )


# ------------------------------------------------------------------------------------ masks
def test_lengths_to_mask():
    m = lengths_to_mask(np.array([3, 1, 0, 4]), 4)
    expected = np.array(
        [
            [1, 1, 0, 1],
            [1, 0, 0, 1],
            [1, 0, 0, 1],
            [0, 0, 0, 1],
        ],
        bool,
    )
    assert m.dtype == bool and m.shape == (4, 4)
    np.testing.assert_array_equal(m, expected)
    np.testing.assert_array_equal(m.sum(0), [3, 1, 0, 4])
    assert lengths_to_mask([2], 3).tolist() == [[True], [True], [False]]


def test_mask_from():
    assert mask_from(None, None, 4, 2) is None
    assert mask_from(np.array([4, 4]), None, 4, 2) is None  # nothing padded
    m = mask_from(np.array([4, 2]), None, 4, 2)
    np.testing.assert_array_equal(m, lengths_to_mask([4, 2], 4))
    np.testing.assert_array_equal(mask_from(None, m.astype(int), 4, 2), m)
    with pytest.raises(RnnkitError, match="prefix"):
        mask_from(None, np.array([[1, 0], [0, 1]]), 2, 2)
    with pytest.raises(RnnkitError, match="not both"):
        mask_from(np.array([1, 1]), np.ones((2, 2), bool), 2, 2)
