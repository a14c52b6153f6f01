"""Optional numba: the one switch for every compiled kernel, and the core kernels themselves.

``AVAILABLE``: numba imports. ``ENABLED``: the compiled paths are used; it starts true unless the
environment variable ``RNNKIT_NO_NUMBA=1``, and ``set_enabled`` flips it (tests and benchmarks
do; ``rnnkit.layers._fast.ENABLED`` is this same switch). ``JIT`` holds the options of every
kernel (cached on disk, no fastmath, NumPy's error model, no GIL).

Kernels here (used by ``rnnkit.functional``): ``scatter_add_rows_into``, the gradient of a row
gather. The LSTM and GRU step kernels live with the layers (``rnnkit/layers/_fast.py``).
This module is imported only where a kernel may run, so ``import rnnkit`` does not import numba.
"""

from __future__ import annotations

import os
from typing import Any

try:
    import numba
    from numba import njit
except ImportError:  # the fast path is optional
    numba = None  # type: ignore[assignment]  # the module, or None when numba is missing

AVAILABLE = numba is not None
ENABLED = AVAILABLE and os.environ.get("RNNKIT_NO_NUMBA", "") != "1"
JIT: dict[str, Any] = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def set_enabled(on: bool) -> None:
    """Turn the compiled paths on or off (on needs numba)."""
    global ENABLED
    ENABLED = bool(on) and AVAILABLE


def scatter_kernel():
    """``scatter_add_rows_into`` when the compiled paths are on, else None."""
    return scatter_add_rows_into if ENABLED else None


if AVAILABLE:

    @njit(**JIT)
    def scatter_add_rows_into(ids, rows, out):
        """out (n, F) += the rows (N, F) of ids (N,), each added to row ids[j]: one pass over
        rows, in the order of j (so the sums are those of a sequential loop)."""
        for j in range(ids.shape[0]):
            o, r = out[ids[j]], rows[j]
            for k in range(r.shape[0]):
                o[k] += r[k]
