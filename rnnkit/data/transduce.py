"""Generated sequence-to-sequence tasks of equal length (one output per input step); seeded.

Inputs are digits x(t) in [0, base); outputs y(t) in [0, base).

* ``running-sum``: y(t) = (y(t-1) + x(t)) mod base, y(-1) = 0. The previous OUTPUT carries all
  the state needed, so a model whose only recurrence is output-to-hidden (10.2.1) can learn it:
  y(t) is a function of x(t) and y(t-1) alone.
* ``delay2``: y(t) = x(t-2) (x(-1) = x(-2) = 0). The output sequence loses the information: y(t-1)
  = x(t-3) says nothing of x(t-2), so an output-recurrent model can do no better than chance
  (1/base) after the first two steps, while a hidden-to-hidden RNN only has to remember two
  digits.

:func:`make_sequences` draws ``n`` pairs of lengths uniform in [min_len, max_len];
:func:`padded_batches` turns them into ``(inputs (T, B), targets (T, B), lengths (B,))``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import RnnkitError
from .batching import pad_batch


def running_sum(x: np.ndarray, base: int = 10) -> np.ndarray:
    """y(t) = (x(0) + ... + x(t)) mod base. x: (L,) ints -> (L,)."""
    return np.cumsum(x) % base


def delay(x: np.ndarray, k: int = 2) -> np.ndarray:
    """y(t) = x(t-k), 0 before the start. x: (L,) -> (L,)."""
    y = np.zeros_like(x)
    y[k:] = x[:-k] if k else x
    return y


PROBLEMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "running-sum": running_sum,
    "delay2": lambda x, base: delay(x, 2),
}


def make_sequences(
    problem: str,
    n: int,
    min_len: int,
    max_len: int,
    seed: int | np.random.Generator,
    base: int = 10,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` (x, y) pairs of int64 arrays of the same length in [min_len, max_len]."""
    if problem not in PROBLEMS:
        raise RnnkitError(f"unknown problem {problem!r}; choose one of {', '.join(PROBLEMS)}")
    for name, v in (("n", n), ("min_len", min_len), ("max_len", max_len), ("base", base)):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, np.integer))
            or v < (2 if name == "base" else 1)
        ):
            raise RnnkitError(
                f"{name} must be an integer >= {2 if name == 'base' else 1}, got {v!r}"
            )
    if min_len > max_len:
        raise RnnkitError(f"min_len {min_len} exceeds max_len {max_len}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    f = PROBLEMS[problem]
    lens = rng.integers(min_len, max_len + 1, n)
    xs = [rng.integers(0, base, int(L)).astype(np.int64) for L in lens]
    return xs, [f(x, base).astype(np.int64) for x in xs]


def padded_batches(
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> list[tuple]:
    """[(inputs (T, B), targets (T, B), lengths (B,))]: shuffled with ``rng`` (None: in order),
    padded with 0 at the end of the shorter sequences."""
    order = np.arange(len(xs)) if rng is None else rng.permutation(len(xs))
    out = []
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        x, lengths = pad_batch([xs[j] for j in idx])
        y, _ = pad_batch([ys[j] for j in idx])
        out.append((x, y, None if lengths.min() == x.shape[0] else lengths))
    return out


def parse_digits(text: str, base: int = 10) -> np.ndarray:
    """'3 1 4' or '314' -> array([3, 1, 4]); a one-line error for anything else."""
    s = "".join(text.split())
    if not s or not all(ch.isdigit() and int(ch) < base for ch in s):
        raise RnnkitError(f"input {text!r} must be a sequence of digits 0-{base - 1}")
    return np.array([int(ch) for ch in s], np.int64)
