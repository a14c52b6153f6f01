"""Stateless building blocks: activations, softmax, cross-entropy, masks and input checks.

Every function works on time-major arrays, (T, B, F) for features and (T, B) for token ids, and
keeps the dtype of its input. Deep Learning book equations are cited as (10.n).
"""

from __future__ import annotations

import numpy as np

from .errors import RnnkitError

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(dtype: str | type | np.dtype) -> np.dtype:
    """Turn "float32" / "float64" (or the NumPy types) into a dtype; anything else is an error."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise RnnkitError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'") from exc
    if dt not in (np.float32, np.float64):
        raise RnnkitError(f"dtype must be float32 or float64, got {dt}")
    return dt


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(x) = 1 / (1 + exp(-x)), computed as 0.5 + 0.5 tanh(x / 2): no overflow, and exact to
    round-off in absolute terms (far in the negative tail, e.g. x < -37, it returns 0, not
    1e-17)."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: z - max - log(sum(exp(z - max)))."""
    m = z.max(axis=-1, keepdims=True)
    s = z - m
    s -= np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return s


def softmax(z: np.ndarray) -> np.ndarray:
    """yhat = softmax(o) over the last axis (10.11)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    inplace: bool = False,
) -> tuple[float, int, np.ndarray]:
    """Summed negative log-likelihood L = -sum_t log yhat(t)[y(t)] (10.12-10.14) and its gradient.

    logits: (..., V) unnormalised scores o(t); targets: (...) int ids y(t); mask: (...) bool, True
    where a target counts (padding False). Returns (loss_sum, n_counted, dlogits) where dlogits has
    the shape of logits and holds dL/do(t) = yhat(t) - onehot(y(t)) on counted positions, 0
    elsewhere (10.18). The softmax is computed in place in the returned gradient buffer: one exp
    for all steps.
    inplace=True overwrites ``logits`` with that gradient instead of allocating a second (N, V)
    array (for a large vocabulary the logits are the biggest array of a training step).
    """
    logits, targets = np.asarray(logits), np.asarray(targets)
    if logits.ndim < 1 or logits.dtype.kind != "f" or logits.shape[-1] < 1:
        raise RnnkitError(
            f"logits must be a float array (..., V) with V >= 1, got {logits.dtype} {logits.shape}"
        )
    if targets.dtype.kind not in "iu":
        raise RnnkitError(f"targets must be integer ids, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise RnnkitError(
            f"targets {targets.shape} must have the logits' leading shape {logits.shape[:-1]} "
            f"(time-major: logits (T, B, V), targets (T, B))"
        )
    if mask is not None and np.shape(mask) != targets.shape:
        raise RnnkitError(f"mask {np.shape(mask)} must have the targets' shape {targets.shape}")
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)
    tgt = targets.reshape(-1)
    m = None if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
    counted = tgt if m is None else tgt[m]
    if counted.size and (counted.min() < 0 or counted.max() >= V):
        raise RnnkitError(
            f"target id out of range [0, {V}): found {int(counted.min())}..{int(counted.max())}"
        )
    tgt = np.where(m, tgt, 0) if m is not None else tgt  # padded targets may hold anything
    rows = np.arange(tgt.size)
    mx = flat.max(axis=1, keepdims=True)
    if inplace and flat.flags.c_contiguous and np.shares_memory(flat, logits):
        g = np.subtract(flat, mx, out=flat)
    else:
        g = flat - mx
    z_y = g[rows, tgt]  # o(t)[y(t)] - max
    np.exp(g, out=g)
    z = g.sum(axis=1, keepdims=True)
    nll = np.log(z[:, 0]) - z_y  # -log yhat[y] = log sum exp(o - max) - (o[y] - max), exact
    g /= z
    g[rows, tgt] -= 1.0
    if m is not None:
        nll = nll[m]
        g[~m] = 0.0
        n = int(m.sum())
    else:
        n = tgt.size
    return float(nll.sum(dtype=np.float64)), n, g.reshape(logits.shape)


def lengths_to_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """mask[t, b] = t < lengths[b]: (T, B) bool from (B,) lengths."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def check_lengths(lengths, T: int, B: int) -> np.ndarray | None:
    """Validate (B,) sequence lengths against a (T, B, ...) batch; None means all have length T."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (B,):
        raise RnnkitError(f"lengths must have shape (B,) = ({B},), got {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise RnnkitError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > T:
        raise RnnkitError(f"lengths must lie in [1, T={T}], got {lengths.min()}..{lengths.max()}")
    return lengths.astype(np.int64)


def mask_from(lengths, mask, T: int, B: int) -> np.ndarray | None:
    """One (T, B) bool mask from either lengths (B,) or mask (T, B); None when nothing is padded.

    A mask must be a prefix mask (each column True then False): padded steps come at the end.
    """
    if lengths is not None and mask is not None:
        raise RnnkitError("give lengths or mask, not both")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (T, B):
            raise RnnkitError(f"mask must have shape (T, B) = ({T}, {B}), got {mask.shape}")
        mask = mask.astype(bool)
        lengths = mask.sum(axis=0)
        if not np.array_equal(mask, lengths_to_mask(lengths, T)):
            raise RnnkitError("mask must mark a prefix of each sequence (padding only at the end)")
    lengths = check_lengths(lengths, T, B)
    if lengths is None or lengths.min() == T:
        return None
    return lengths_to_mask(lengths, T)


def check_sequence(x: np.ndarray, size: int, dtype: np.dtype, what: str = "input") -> np.ndarray:
    """Check a time-major (T, B, size) float array of the layer's dtype; return it C-contiguous."""
    if not isinstance(x, np.ndarray):
        raise RnnkitError(
            f"{what} must be a numpy array of shape (T, B, {size}), got {type(x).__name__}"
        )
    if x.ndim != 3:
        raise RnnkitError(f"{what} must have shape (T, B, {size}) (time-major), got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise RnnkitError(f"{what} is empty: shape {x.shape}")
    if x.shape[2] != size:
        raise RnnkitError(f"{what} has {x.shape[2]} features, expected {size}: shape {x.shape}")
    if x.dtype != dtype:
        raise RnnkitError(
            f"{what} dtype {x.dtype} does not match the layer's {dtype}; use x.astype(np.{dtype})"
        )
    return np.ascontiguousarray(x)


def check_ids(ids: np.ndarray, vocab_size: int, what: str = "token ids") -> np.ndarray:
    """Check a (T, B) integer array of ids in [0, vocab_size)."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise RnnkitError(f"{what} must have shape (T, B), got {ids.shape}")
    if ids.size == 0:
        raise RnnkitError(f"{what} are empty: shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise RnnkitError(f"{what} must be integers, got dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise RnnkitError(f"{what} out of range [0, {vocab_size}): found {ids.min()}..{ids.max()}")
    return ids


def scatter_add_rows(n_rows: int, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """out[i] = sum of rows[j] with ids[j] == i: the gradient of a row gather table[ids].

    ids: (N,) int; rows: (N, F). Returns (n_rows, F) in rows' dtype.
    """
    ids, rows = np.asarray(ids), np.asarray(rows)
    if ids.dtype.kind not in "iu":
        raise RnnkitError(f"row ids must be integers, got dtype {ids.dtype}")
    F = rows.shape[-1]
    ids, rows = ids.reshape(-1), rows.reshape(-1, F)
    if rows.shape[0] != ids.shape[0]:
        raise RnnkitError(f"{ids.shape[0]} row ids but {rows.shape[0]} rows: one row per id")
    if ids.size and (ids.min() < 0 or ids.max() >= n_rows):
        raise RnnkitError(f"row ids out of range [0, {n_rows}): found {ids.min()}..{ids.max()}")
    from . import kernels  # numba, when the fast path is on: one pass, 5-10x faster

    fast = kernels.scatter_kernel() if ids.shape[0] >= 64 else None
    if fast is not None and rows.dtype in (np.float32, np.float64):
        out = np.zeros((n_rows, F), dtype=rows.dtype)
        fast(np.ascontiguousarray(ids, dtype=np.intp), np.ascontiguousarray(rows), out)
        return out
    if n_rows * ids.shape[0] <= 1 << 21:  # small: one product with the one-hot matrix
        onehot = np.equal.outer(np.arange(n_rows), ids).astype(rows.dtype)
        return onehot @ rows
    # large: sort the ids, add each run of equal ids at once (3-7x faster than np.add.at)
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    out = np.zeros((n_rows, F), dtype=rows.dtype)
    out[sid[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out
