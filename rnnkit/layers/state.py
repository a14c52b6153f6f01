"""The recurrent state: ONE type inside rnnkit and one converter at the edges.

Inside, a state is always a tuple of arrays, one per state of the cell: (h,) for Elman and GRU,
(h, c) for the LSTM, (h(t), ..., h(t-D+1)) for the skip cell. Outside, the public layers keep
PyTorch's shapes: a bare array for a one-state cell (``RNN``/``GRU`` return h_n), a tuple for more
(``LSTM`` returns (h_n, c_n)). Every place that takes a state (or a state gradient) from a user or
a model calls :func:`check_parts`; every place that hands one back calls :func:`as_public`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import RnnkitError


def _form(n: int, shape: Sequence[int | None] | None) -> str:
    dims = (
        ""
        if shape is None
        else " of shape (" + ", ".join("B" if d is None else str(d) for d in shape) + ")"
    )
    if n == 1:
        return f"one array{dims}"
    return f"a tuple of {n} arrays, each{dims}"  # (h, c) for the LSTM; skip, clockwork: others


def _describe(state) -> str:
    parts = state if isinstance(state, tuple) else (state,)
    got = [getattr(p, "shape", type(p).__name__) for p in parts]
    return f"{len(parts)} array(s) {', '.join(map(str, got))}"


def check_parts(
    state,
    n: int,
    shape: Sequence[int | None] | None = None,
    what: str = "state",
    *,
    allow_none: bool = False,
    dtype=None,
    lead1: bool = False,
) -> tuple:
    """A state as given (one array for a one-state cell, else a tuple of ``n``; a tuple of one is
    accepted too) -> a tuple of ``n`` arrays, each checked against ``shape`` (None: any size
    there) and cast to ``dtype`` (if given). ``allow_none``: entries may be None (no gradient);
    ``lead1``: a 2-D array stands for shape (1, ...). One message for every mistake."""
    parts = state if isinstance(state, tuple) else (state,)
    out: list = []
    ok = len(parts) == n
    for p in parts if ok else ():
        if p is None and allow_none:
            out.append(None)
            continue
        a = np.asarray(p) if dtype is None else np.asarray(p, dtype=dtype)
        if lead1 and shape is not None and a.ndim == len(shape) - 1:
            a = a[None]
        if shape is not None and (
            a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, a.shape))
        ):
            ok = False
            break
        out.append(a)
    if not ok:
        raise RnnkitError(f"{what} must be {_form(n, shape)}, got {_describe(state)}")
    return tuple(out)


def as_public(parts: tuple):
    """The tuple of states as the public API gives it: the array itself for one state."""
    return parts[0] if len(parts) == 1 else tuple(parts)
