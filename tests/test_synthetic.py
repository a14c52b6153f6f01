"""Generated long-memory and chaotic data sets: shapes, determinism, ranges, baselines."""

import math

import numpy as np
import pytest

from rnnkit.data.synthetic import (
    adding_problem,
    copy_baseline,
    copy_memory,
    mackey_glass,
    remember_first,
)
from rnnkit.errors import RnnkitError


def test_mackey_glass_deterministic_and_in_its_range():
    a = mackey_glass(2000)
    assert a.shape == (2000, 1) and a.dtype == np.float64
    np.testing.assert_array_equal(a, mackey_glass(2000))
    assert 0.2 < a.min() < 0.5 and 1.2 < a.max() < 1.4
    assert 0.2 < a.std() < 0.25  # the tau=17 attractor's spread
    # seeded histories: reproducible, different from each other, same attractor
    s1, s2 = mackey_glass(500, seed=1), mackey_glass(500, seed=2)
    np.testing.assert_array_equal(s1, mackey_glass(500, seed=1))
    assert not np.allclose(s1, s2)
    assert 0.2 < s1.min() and s1.max() < 1.4
    # discard drops the first values of the same trajectory
    np.testing.assert_array_equal(mackey_glass(100, discard=0)[50:], mackey_glass(50, discard=50))


def test_mackey_glass_is_a_4th_order_integration():
    """Halving the step cuts the error against a fine reference by about 2^4 (over a short stretch,
    before chaos amplifies it), and the series obeys the equation."""
    ref = mackey_glass(60, dt=1 / 64, subsample=64, discard=0)
    e1 = np.abs(mackey_glass(60, dt=1.0, discard=0) - ref).max()
    e2 = np.abs(mackey_glass(60, dt=0.5, subsample=2, discard=0) - ref).max()
    assert 8 < e1 / e2 < 32
    # dx/dt (central difference of a fine run) = 0.2 x(t-17) / (1 + x(t-17)^10) - 0.1 x(t)
    h = 0.01
    x = mackey_glass(4000, dt=h, discard=0)[:, 0]
    m = int(17 / h)
    t = np.arange(m + 1, 3999)
    lhs = (x[t + 1] - x[t - 1]) / (2 * h)
    rhs = 0.2 * x[t - m] / (1 + x[t - m] ** 10) - 0.1 * x[t]
    np.testing.assert_allclose(lhs, rhs, atol=1e-4)


def test_mackey_glass_rejects_bad_settings():
    with pytest.raises(RnnkitError, match="multiple"):
        mackey_glass(10, tau=17, dt=0.3)
    with pytest.raises(RnnkitError, match="n must"):
        mackey_glass(0)


def test_adding_problem_targets_and_baseline():
    X, y = adding_problem(50_000, 20, np.random.default_rng(0))
    assert X.shape == (20, 50_000, 2) and y.shape == (50_000, 1)
    markers = X[:, :, 1]
    assert np.all(markers.sum(axis=0) == 2)
    assert np.all(markers[:10].sum(axis=0) == 1) and np.all(markers[10:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[:, 0], (X[:, :, 0] * markers).sum(axis=0))
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.004)  # always answering 1
    a1, b1 = adding_problem(3, 8, 5)
    a2, b2 = adding_problem(3, 8, 5)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)


def test_copy_memory_layout_and_baseline():
    T, n = 30, 200
    inputs, targets = copy_memory(n, T, np.random.default_rng(1))
    assert inputs.shape == targets.shape == (T + 20, n)
    assert inputs.dtype == np.int64
    assert np.all((inputs[:10] >= 1) & (inputs[:10] <= 8))
    assert np.all(inputs[10 : T + 9] == 0) and np.all(inputs[T + 9] == 9)
    assert np.all(inputs[T + 10 :] == 0)
    assert np.all(targets[: T + 10] == 0)
    np.testing.assert_array_equal(targets[T + 10 :], inputs[:10])
    assert copy_baseline(T) == pytest.approx(10 * math.log(8) / (T + 20))
    # the memoryless strategy: blank with certainty for T + 10 steps, then uniform over the 8
    # symbols; its cross-entropy on the generated targets is the baseline
    p = np.zeros((T + 20, 10))
    p[: T + 10, 0] = 1.0
    p[T + 10 :, 1:9] = 1 / 8
    ce = -np.mean(np.log(p[np.arange(T + 20)[:, None], targets]))
    assert ce == pytest.approx(copy_baseline(T), rel=1e-12)


def test_remember_first():
    inputs, targets = remember_first(
        500, 12, np.random.default_rng(2), n_classes=3, n_distractors=5
    )
    assert inputs.shape == (12, 500) and targets.shape == (500,)
    np.testing.assert_array_equal(inputs[0], targets)
    assert set(np.unique(targets)) == {0, 1, 2}
    assert np.all((inputs[1:11] >= 3) & (inputs[1:11] < 8))
    assert np.all(inputs[11] == 8)
    # the distractors carry no information about the class
    for c in range(3):
        assert abs(np.mean(inputs[1:11, targets == c]) - 5.0) < 0.3
