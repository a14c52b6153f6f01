"""Turning encoded text into time-major ``(T, B)`` id batches.

Two forms:

* sentence batches (:func:`sentence_batches`): each sentence is its own sequence, padded, with
  ``lengths`` telling the caller which steps are real;
* stream batches (:func:`stream_batches`): one long token stream cut into ``B`` parallel
  columns and read ``bptt`` steps at a time for truncated backpropagation through time; the
  caller carries the hidden state from one chunk to the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TypeVar, overload

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = [
    "pad_batch",
    "sentence_batches",
    "stream_batches",
    "num_stream_batches",
    "train_valid_split",
]

T = TypeVar("T")


def _check_pos_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RnnkitError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _as_id_array(seq: object, what: str) -> np.ndarray:
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise RnnkitError(f"{what} must be a 1-D id array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise RnnkitError(f"{what} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack 1-D id sequences into a padded time-major batch.

    ``seqs`` holds ``B`` integer arrays, sequence ``b`` of shape ``(L_b,)`` with ``L_b >= 1``.
    Returns ``ids`` of shape ``(T, B)`` int64 with ``T = max(L_b)``, where
    ``ids[:L_b, b] == seqs[b]`` and the rest of column ``b`` is ``pad_id``, and ``lengths`` of
    shape ``(B,)`` int64.
    """
    if len(seqs) == 0:
        raise RnnkitError("pad_batch needs at least one sequence")
    arrays = [_as_id_array(s, f"sequence {b}") for b, s in enumerate(seqs)]
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    if lengths.min() == 0:
        bad = int(np.argmin(lengths))
        raise RnnkitError(f"sequence {bad} is empty; pad_batch needs length >= 1")
    ids = np.full((int(lengths.max()), len(arrays)), pad_id, dtype=np.int64)
    for b, a in enumerate(arrays):
        ids[: a.shape[0], b] = a
    return ids, lengths


def sentence_batches(
    encoded: list[np.ndarray],
    batch_size: int,
    rng: np.random.Generator | None,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    bucket: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(inputs, targets, lengths)`` batches of sentences for next-token prediction.

    Sentence ``s`` (1-D ids, shape ``(L,)``, possibly empty) becomes ``inputs = [BOS] + s`` and
    ``targets = s + [EOS]``, both of length ``L + 1``. Each batch has ``inputs`` and ``targets``
    of shape ``(T, B)`` int64 padded with ``pad_id`` (``T`` = longest ``L + 1`` in the batch)
    and ``lengths`` of shape ``(B,)`` int64; ``B = batch_size`` except possibly for the last
    batch, which is kept. Every sentence appears exactly once per pass.

    With ``rng`` the order is shuffled, otherwise the input order is kept. With ``bucket=True``
    (and ``rng``) sentences of similar length are grouped together to cut padding: the shuffled
    list is cut into pools of ``50 * batch_size``, each pool is sorted by length and cut into
    batches, and the batch order is shuffled.
    """
    batch_size = _check_pos_int("batch_size", batch_size)
    if len(encoded) == 0:
        raise RnnkitError("sentence_batches needs at least one sentence")
    sents = [_as_id_array(s, f"sentence {i}") for i, s in enumerate(encoded)]
    n = len(sents)
    order = np.arange(n) if rng is None else rng.permutation(n)
    if bucket and rng is not None:
        pool = 50 * batch_size
        batches_idx: list[np.ndarray] = []
        lens = np.array([s.shape[0] for s in sents])
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lens[chunk], kind="stable")]
            batches_idx.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        batches_idx = [batches_idx[i] for i in rng.permutation(len(batches_idx))]
    else:
        batches_idx = [order[i : i + batch_size] for i in range(0, n, batch_size)]

    bos = np.array([bos_id], dtype=np.int64)
    eos = np.array([eos_id], dtype=np.int64)
    for idx in batches_idx:
        inputs, lengths = pad_batch([np.concatenate([bos, sents[i]]) for i in idx], pad_id)
        targets, _ = pad_batch([np.concatenate([sents[i], eos]) for i in idx], pad_id)
        yield inputs, targets, lengths


def _stream_columns(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut a 1-D stream of ``N`` ids into ``(N // B, B)``: column ``b`` is a contiguous slice."""
    arr = _as_id_array(ids, "token stream")
    n_rows = arr.shape[0] // batch_size
    if n_rows < 2:
        raise RnnkitError(
            f"token stream of {arr.shape[0]} tokens is too short for batch_size={batch_size}: "
            f"need at least {2 * batch_size} tokens (2 per batch column)"
        )
    return arr[: n_rows * batch_size].reshape(batch_size, n_rows).T


def num_stream_batches(n_tokens: int, batch_size: int, bptt: int) -> int:
    """Number of chunks :func:`stream_batches` yields for a stream of ``n_tokens`` ids."""
    batch_size = _check_pos_int("batch_size", batch_size)
    bptt = _check_pos_int("bptt", bptt)
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 0:
        raise RnnkitError(f"n_tokens must be an int >= 0, got {n_tokens!r}")
    n_rows = int(n_tokens) // batch_size
    if n_rows < 2:
        raise RnnkitError(
            f"token stream of {n_tokens} tokens is too short for batch_size={batch_size}: "
            f"need at least {2 * batch_size} tokens (2 per batch column)"
        )
    return math.ceil((n_rows - 1) / bptt)


def stream_batches(
    ids: np.ndarray, batch_size: int, bptt: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(inputs, targets)`` chunks of a contiguous stream for truncated BPTT.

    The 1-D stream ``ids`` of shape ``(N,)`` is cut into ``B = batch_size`` columns of
    ``R = N // B`` consecutive tokens (column ``b`` is ``ids[b*R:(b+1)*R]``; the last
    ``N - B*R`` tokens are dropped). Chunks are then read top to bottom: ``inputs`` and
    ``targets`` have shape ``(k, B)`` int64 with ``k = bptt`` except for a shorter last chunk
    (``k >= 1``), and ``targets`` is ``inputs`` shifted one step down the column. The chunks
    together cover rows ``0 .. R-2`` as inputs, so ``num_stream_batches(N, B, bptt)`` chunks.
    The caller carries the hidden state of each column from one chunk to the next.
    """
    batch_size = _check_pos_int("batch_size", batch_size)
    bptt = _check_pos_int("bptt", bptt)
    data = _stream_columns(ids, batch_size)  # (R, B)
    n_rows = data.shape[0]
    for start in range(0, n_rows - 1, bptt):
        k = min(bptt, n_rows - 1 - start)
        yield (
            np.ascontiguousarray(data[start : start + k]),
            np.ascontiguousarray(data[start + 1 : start + 1 + k]),
        )


@overload
def train_valid_split(
    items: np.ndarray, valid_fraction: float, rng_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def train_valid_split(
    items: Sequence[T], valid_fraction: float, rng_seed: int = 0
) -> tuple[list[T], list[T]]: ...


def train_valid_split(
    items: Sequence[T] | np.ndarray, valid_fraction: float, rng_seed: int = 0
) -> tuple[list[T], list[T]] | tuple[np.ndarray, np.ndarray]:
    """Split data into a training and a validation part, deterministically.

    * A 1-D array of shape ``(N,)`` (a token stream) is split contiguously: the first
      ``N - n_valid`` ids train, the last ``n_valid`` validate (``rng_seed`` is unused).
    * Any other sequence (e.g. a list of sentences) is split at random with
      ``np.random.default_rng(rng_seed)``; both parts keep the items' original order.

    ``n_valid = round(N * valid_fraction)`` clipped to ``[1, N - 1]``; ``valid_fraction`` must
    lie strictly between 0 and 1 and ``N >= 2``. Returns ``(train, valid)`` of the input's kind
    (arrays for an array, lists otherwise).
    """
    if isinstance(valid_fraction, bool) or not isinstance(
        valid_fraction, (int, float, np.integer, np.floating)
    ):
        raise RnnkitError(f"valid_fraction must be a number, got {valid_fraction!r}")
    if not 0.0 < float(valid_fraction) < 1.0:
        raise RnnkitError(
            f"valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction}"
        )
    n = len(items)
    if n < 2:
        raise RnnkitError(f"need at least 2 items to make a train/valid split, got {n}")
    n_valid = min(max(round(n * float(valid_fraction)), 1), n - 1)
    if isinstance(items, np.ndarray):
        if items.ndim != 1:
            raise RnnkitError(f"train_valid_split expects a 1-D array, got shape {items.shape}")
        return items[: n - n_valid], items[n - n_valid :]
    rng = np.random.default_rng(rng_seed)
    is_valid = np.zeros(n, dtype=bool)
    is_valid[rng.permutation(n)[:n_valid]] = True
    train = [items[i] for i in range(n) if not is_valid[i]]
    valid = [items[i] for i in range(n) if is_valid[i]]
    return train, valid
