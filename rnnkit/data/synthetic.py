"""Generated sequence tasks for long memory and chaotic prediction; time-major, seeded.

* :func:`mackey_glass`: the chaotic delay differential equation, the classic echo-state benchmark.
* :func:`adding_problem`: sum the two marked numbers of a long sequence (Hochreiter & Schmidhuber
  1997; Le, Jaitly & Hinton 2015). Always answering 1 scores MSE 1/6 ~ 0.167.
* :func:`copy_memory`: recall 10 symbols after T blanks (Arjovsky, Shah & Bengio 2016); a model
  without memory scores :func:`copy_baseline` nats per step.
* :func:`remember_first`: name the class of the first token after many distractors
  ("I grew up in France ... I speak fluent ___"); chance is 1 / n_classes.

Every random function takes ``rng``: a ``numpy.random.Generator`` or an int seed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import RnnkitError

__all__ = ["mackey_glass", "adding_problem", "copy_memory", "copy_baseline", "remember_first"]


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise RnnkitError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def _positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise RnnkitError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def mackey_glass(
    n: int,
    tau: float = 17,
    beta: float = 0.2,
    gamma: float = 0.1,
    n_exp: float = 10,
    dt: float = 1.0,
    x0: float = 1.2,
    discard: int = 100,
    seed: np.random.Generator | int | None = None,
    subsample: int = 1,
) -> np.ndarray:
    """The Mackey-Glass series, shape (n, 1), float64 (time-major, one feature).

    Integrates dx/dt = beta x(t - tau) / (1 + x(t - tau)^n_exp) - gamma x(t) with the classical
    4th-order Runge-Kutta method and step ``dt`` (``tau`` must be a positive multiple of ``dt``,
    so the delayed values at the stages' ends are grid values); the delayed value at the half
    step, x(t - tau + dt/2), is the cubic Hermite interpolant of its two grid neighbours and their
    derivatives, (x_j + x_j+1)/2 + dt/8 (x'_j - x'_j+1), which keeps the method 4th order
    (linear interpolation would make it 2nd order): at dt = 1 the first 60 values are within
    7e-6 of a dt = 1/64 run. One Python iteration per step (about 4 ms for 2,200 steps).

    The history x(t), -tau <= t < 0, is x0 (``seed=None``: deterministic) or, with a seed,
    x0 + 0.2 (u - 0.5), u ~ U(0, 1) per step, as reservoirpy 0.4.2 draws it; x(0) = x0. Every
    ``subsample``-th integration step is kept and the first ``discard`` kept values (the
    transient) are dropped. With tau = 17 the series is chaotic and stays in about [0.42, 1.32].

    reservoirpy 0.4.2's ``datasets.mackey_glass`` uses the same equation, history and defaults but
    a different one-step update (named RK4 there; its stages are not the classical ones and the
    delayed term is not multiplied by h), so the two series agree in range and statistics, not
    point for point. Its odd stages were not copied.
    """
    n = _positive_int("n", n)
    discard = _positive_int("discard", discard, 0)
    subsample = _positive_int("subsample", subsample)
    if not dt > 0 or not tau > 0:
        raise RnnkitError(f"need dt > 0 and tau > 0, got dt={dt}, tau={tau}")
    m = int(round(tau / dt))
    if m < 1 or abs(m * dt - tau) > 1e-9 * tau:
        raise RnnkitError(f"tau={tau} must be a positive multiple of dt={dt}")
    steps = (discard + n - 1) * subsample + 1
    x = np.empty(m + steps)
    if seed is None:
        x[:m] = x0
    else:
        x[:m] = x0 + 0.2 * (_rng(seed).random(m) - 0.5)
    x[m] = x0
    xs = x.tolist()  # Python floats: the scalar loop is ~5x faster on them
    ds = [0.0] * len(xs)  # dx/dt at each grid point (0 over the history)
    half = 0.5 * dt

    def f(v: float, d: float) -> float:
        return beta * d / (1.0 + d**n_exp) - gamma * v

    for i in range(m, m + steps - 1):
        v = xs[i]
        d0, d1 = xs[i - m], xs[i - m + 1]
        k1 = ds[i] = f(v, d0)
        # cubic Hermite midpoint; on a history interval (ending at t=0 at the latest) both
        # derivatives are the history's, 0, not the solution's one-sided one at t=0
        dh = 0.5 * (d0 + d1)
        if i >= 2 * m:
            dh += dt / 8.0 * (ds[i - m] - ds[i - m + 1])
        k2 = f(v + half * k1, dh)
        k3 = f(v + half * k2, dh)
        k4 = f(v + dt * k3, d1)
        xs[i + 1] = v + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    out = np.asarray(xs[m:])[::subsample][discard : discard + n]
    return out.reshape(n, 1)


def adding_problem(
    n: int, T: int, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of the adding problem: X (T, n, 2) float64, y (n, 1) float64.

    X[t, i, 0] ~ U(0, 1) are the values, X[t, i, 1] in {0, 1} the markers: exactly two per
    sequence, one at a uniform step of the first half [0, T//2) and one in the second half
    [T//2, T). y[i] = sum_t X[t, i, 0] X[t, i, 1], the sum of the two marked values. The sum of two
    U(0, 1) has mean 1 and variance 1/6, so always predicting 1 gives MSE 1/6 ~ 0.167.
    """
    n, T = _positive_int("n", n), _positive_int("T", T, 2)
    g = _rng(rng)
    X = np.zeros((T, n, 2))
    X[:, :, 0] = g.random((T, n))
    half = T // 2
    first = g.integers(0, half, n)
    second = g.integers(half, T, n)
    cols = np.arange(n)
    X[first, cols, 1] = 1.0
    X[second, cols, 1] = 1.0
    y = (X[first, cols, 0] + X[second, cols, 0]).reshape(n, 1)
    return X, y


def copy_memory(
    n: int,
    T: int,
    rng: np.random.Generator | int | None = None,
    n_symbols: int = 8,
    length: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of the copy-memory task: inputs and targets, each (T + 2 length, n) int64 ids.

    Ids: 0 blank, 1..n_symbols the symbols, n_symbols + 1 the delimiter (vocabulary
    n_symbols + 2). Inputs: ``length`` symbols drawn uniformly, T - 1 blanks, the delimiter, then
    ``length`` blanks. Targets: T + length blanks, then the ``length`` symbols again. With the
    defaults (8 symbols, length 10) this is Arjovsky et al. (2016)'s task on T + 20 steps; a model
    that only learns when to output blanks and guesses the symbols uniformly scores
    :func:`copy_baseline`.
    """
    n, T = _positive_int("n", n), _positive_int("T", T)
    n_symbols, length = _positive_int("n_symbols", n_symbols), _positive_int("length", length)
    g = _rng(rng)
    total = T + 2 * length
    symbols = g.integers(1, n_symbols + 1, (length, n))
    inputs = np.zeros((total, n), dtype=np.int64)
    targets = np.zeros((total, n), dtype=np.int64)
    inputs[:length] = symbols
    inputs[length + T - 1] = n_symbols + 1
    targets[T + length :] = symbols
    return inputs, targets


def copy_baseline(T: int, n_symbols: int = 8, length: int = 10) -> float:
    """Cross-entropy (nats per step) of the memoryless copy strategy: blanks until the delimiter,
    then a uniform guess among the symbols: length ln(n_symbols) / (T + 2 length); with the
    defaults 10 ln 8 / (T + 20)."""
    T = _positive_int("T", T)
    return length * math.log(n_symbols) / (T + 2 * length)


def remember_first(
    n: int,
    T: int,
    rng: np.random.Generator | int | None = None,
    n_classes: int = 4,
    n_distractors: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of "remember the first token": inputs (T, n) int64 ids, targets (n,) int64.

    Step 0 holds the class token c in [0, n_classes) ("France"), steps 1..T-2 distractor tokens
    drawn uniformly from ids [n_classes, n_classes + n_distractors) ("I grew up in ..."), and step
    T-1 the query token n_classes + n_distractors ("I speak fluent ___"), where the answer, the
    target c, is due. Vocabulary: n_classes + n_distractors + 1 ids. A memoryless model is right
    1 / n_classes of the time (cross-entropy ln n_classes).
    """
    n, T = _positive_int("n", n), _positive_int("T", T, 2)
    n_classes, n_distractors = (
        _positive_int("n_classes", n_classes, 2),
        _positive_int("n_distractors", n_distractors),
    )
    g = _rng(rng)
    targets = g.integers(0, n_classes, n)
    inputs = g.integers(n_classes, n_classes + n_distractors, (T, n))
    inputs[0] = targets
    inputs[T - 1] = n_classes + n_distractors
    return inputs.astype(np.int64), targets.astype(np.int64)
