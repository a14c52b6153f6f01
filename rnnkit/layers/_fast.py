"""Optional numba kernels for the per-step elementwise work of the LSTM and GRU cells (the numba
import, the on/off switch and the scatter-add of ``functional.scatter_add_rows`` are in the core
module ``rnnkit/kernels.py``).

The gated cells spend, at small and medium sizes, most of their time in the ~10 small NumPy calls
per step that apply the gate nonlinearities and combine the gates (about a microsecond each, plus
a pass over memory each). Each kernel here does one step's elementwise block in one pass; the
matrix products stay in NumPy (BLAS). The pure-NumPy code in ``lstm.py`` / ``gru.py`` is the
reference: every kernel evaluates the same formulas in the same order, so in float64 the two paths
agree to the last bit or nearly, and in float32 they differ only by the tanh implementation:

* float64: ``math.tanh`` (the C library's, as NumPy's float64 tanh);
* float32: a rational minimax approximation tanh(x) ~ x P(x^2) / Q(x^2) (degrees 13/6, fitted
  for this module on [0, 10], relative error 2e-8 < 1/3 ulp), evaluated in float64 and rounded
  once to float32, so it is within 1 ulp of the correctly rounded tanh -- the same accuracy as
  NumPy's float32 tanh -- and the loop vectorises (no library call per element), 2-3x faster than
  ``np.tanh`` and 20x faster than calling ``tanhf`` per element.

Use: ``kernels()`` returns this module when the fast path is on (numba imports, ``ENABLED`` is
true), else None. ``ENABLED`` is ``rnnkit.kernels.ENABLED`` (read and set through this module as
well): it starts true unless the environment variable ``RNNKIT_NO_NUMBA=1``; tests and
benchmarks flip it (``set_enabled``). A cell checks the switch once per forward pass
and runs that pass's backward on the same path. numba is imported only when this module is, and
the layers import it only at their first forward pass.

Kernel conventions: ``R`` rows of state gradients may be a multiple of the batch ``B`` (the slots
of truncated BPTT, reshaped to (n*B, H)); cache row of gradient row r is r % B.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import types as _pytypes

import numpy as np

from .. import kernels as _core
from ..kernels import AVAILABLE, set_enabled

if AVAILABLE:
    from numba import njit, types
    from numba.extending import overload


class _Switch(_pytypes.ModuleType):
    """This module, with ``ENABLED`` read and set on the one switch in ``rnnkit.kernels``."""

    @property
    def ENABLED(self) -> bool:
        return _core.ENABLED

    @ENABLED.setter
    def ENABLED(self, on: bool) -> None:
        _core.ENABLED = bool(on)


sys.modules[__name__].__class__ = _Switch
ENABLED: bool  # the switch: a property of this module (_Switch), stored in rnnkit.kernels

# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 10 (|x| > 10: tanh rounds to +-1 in float32)
_P = (
    0.9999999802665189,
    0.13039259994488503,
    0.0030541935903433417,
    1.0641688975452006e-05,
    -1.820540141261416e-08,
    4.3452688333371e-11,
    -6.213374288359389e-14,
)
_Q = (1.0, 0.4637257604444256, 0.02429636759999403, 0.0002474111393121134)
P0, P1, P2, P3, P4, P5, P6 = _P
Q1, Q2, Q3 = _Q[1:]
CLAMP = 10.0


_ANNOUNCED = False


def _compiled_before() -> bool:
    """Whether numba's on-disk cache already holds these kernels for this Python."""
    import glob

    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.join(here, "__pycache__")]
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs.append(os.environ["NUMBA_CACHE_DIR"])
    return any(glob.glob(os.path.join(d, "**", f"_fast.*{tag}*.nbi"), recursive=True) for d in dirs)


def kernels():
    """This module when the fast path is to be used, else None. The first time a process asks
    and numba has no cached build yet, one line at INFO on the ``rnnkit`` logger says why the
    next seconds pause (the command line prints the logger's INFO lines on stderr)."""

    global _ANNOUNCED
    if not _core.ENABLED:
        return None
    if not _ANNOUNCED:
        _ANNOUNCED = True
        if not _compiled_before():  # logged, not printed: the command line shows it on stderr
            logging.getLogger(__name__).info(
                "rnnkit: compiling the LSTM/GRU kernels with numba (first use only, about "
                "10 s; cached afterwards)"
            )
    return sys.modules[__name__]


def tanh32_reference(x: np.ndarray) -> np.ndarray:
    """The float32 kernels' tanh in NumPy (for tests): float64 rational, rounded to float32."""
    v = np.clip(np.asarray(x, np.float64), -CLAMP, CLAMP)
    s = v * v
    p = (((((P6 * s + P5) * s + P4) * s + P3) * s + P2) * s + P1) * s + P0
    q = ((Q3 * s + Q2) * s + Q1) * s + 1.0
    return (v * p / q).astype(np.float32)


__all__ = ["AVAILABLE", "set_enabled", "kernels", "tanh32_reference"]

if AVAILABLE:
    _JIT = _core.JIT

    def _tanh(x):  # typed by the overload below
        raise NotImplementedError

    def _const(v, like):  # the float v in the type of `like`
        raise NotImplementedError

    @overload(_tanh)
    def _tanh_ol(x):
        if x == types.float32:

            def tanh32(x):
                v = min(max(np.float64(x), -CLAMP), CLAMP)  # NaN stays NaN
                s = v * v
                p = (((((P6 * s + P5) * s + P4) * s + P3) * s + P2) * s + P1) * s + P0
                q = ((Q3 * s + Q2) * s + Q1) * s + 1.0
                return np.float32(v * p / q)

            return tanh32
        if x == types.float64:

            def tanh64(x):
                return math.tanh(x)

            return tanh64
        return None

    @overload(_const)
    def _const_ol(v, like):
        if like == types.float32:
            return lambda v, like: np.float32(v)
        if like == types.float64:
            return lambda v, like: np.float64(v)
        return None

    # Loops are written over row views, one short loop per gate block and each over few arrays:
    # that is what LLVM vectorises (not range(a, b) loops, nor one array read and written at two
    # offsets in one loop), and a vectorised float32 tanh is 2-3x cheaper than NumPy's.

    # -- LSTM: gates [i, f, g, o] (PyTorch's order), a (B, 4H) --------------------------------
    @njit(**_JIT)
    def lstm_forward_step(a, g, b_hh, c, c_new, h_new, tc):
        """a: in the x-projection x W_ih^T, out the gate activations [i, f, g, o];
        g: h(t-1) W_hh^T; b_hh (4H,): the bias, b_ih + b_hh (zeros without bias); c: c(t-1).
        Writes c(t), h(t) and tc = tanh(c(t)). All (B, .) arrays of one float dtype."""
        B, H = c.shape
        half = _const(0.5, c[0, 0])
        bif, bg, bo = b_hh[: 2 * H], b_hh[2 * H : 3 * H], b_hh[3 * H :]
        for b in range(B):
            ab, gb = a[b], g[b]
            aif, gif = ab[: 2 * H], gb[: 2 * H]
            ag, gg, ao, go = ab[2 * H : 3 * H], gb[2 * H : 3 * H], ab[3 * H :], gb[3 * H :]
            for j in range(2 * H):  # i, f: sigmoid(u) = 1/2 + tanh(u / 2) / 2      (10.42, 10.41)
                aif[j] = half + half * _tanh(half * ((aif[j] + gif[j]) + bif[j]))
            for j in range(H):  # g                                                 (10.40)
                ag[j] = _tanh((ag[j] + gg[j]) + bg[j])
            for j in range(H):  # o                                                 (10.44)
                ao[j] = half + half * _tanh(half * ((ao[j] + go[j]) + bo[j]))
            i, f = ab[:H], ab[H : 2 * H]
            cb, cnb, hnb, tcb = c[b], c_new[b], h_new[b], tc[b]
            for j in range(H):
                cnb[j] = f[j] * cb[j] + i[j] * ag[j]  # c = f c + i g               (10.40)
            for j in range(H):
                tcb[j] = _tanh(cnb[j])
            for j in range(H):
                hnb[j] = ao[j] * tcb[j]  # h = o tanh(c)                            (10.43)

    @njit(**_JIT)
    def lstm_backward_step(dh, dc, a, c, tc, dg, dc_out, row):
        """dh, dc: (R, H) dL/dh(t), dL/dc(t); a, c, tc: the step's gates (B, 4H), c(t-1) and
        tanh(c(t)). Writes dg (R, 4H) = dL/d(pre-activations) and dc_out (R, H) = dL/dc(t-1).
        dg may be ``a`` itself (R = B, the gradient written over the gates): each row of gates is
        first copied to ``row`` (4H,), and only that copy is read."""
        R, H = dh.shape
        B = a.shape[0]
        one = _const(1.0, dh[0, 0])
        for r in range(R):
            b = r % B
            row[:] = a[b]
            cb, tb, dhr, dcr, dgr, dor = c[b], tc[b], dh[r], dc[r], dg[r], dc_out[r]
            i, f, g, o = row[:H], row[H : 2 * H], row[2 * H : 3 * H], row[3 * H :]
            di, df, dgg, do = dgr[:H], dgr[H : 2 * H], dgr[2 * H : 3 * H], dgr[3 * H :]
            for j in range(H):  # dL/dc(t) in full, kept in dc_out for now
                dor[j] = dhr[j] * (o[j] * (one - tb[j] * tb[j])) + dcr[j]
            for j in range(H):
                do[j] = dhr[j] * (tb[j] * (o[j] * (one - o[j])))
            for j in range(H):
                di[j] = dor[j] * (g[j] * (i[j] * (one - i[j])))
            for j in range(H):
                df[j] = dor[j] * (cb[j] * (f[j] * (one - f[j])))
            for j in range(H):
                dgg[j] = dor[j] * (i[j] * (one - g[j] * g[j]))
            for j in range(H):
                dor[j] = dor[j] * f[j]  # dL/dc(t-1)

    # -- GRU: gates [r, z, n], a (B, 3H); gh (B, 3H) = h(t-1) W_hh^T; hn = gh_n + b_hn ---------
    @njit(**_JIT)
    def gru_forward_step(a, gh, b_hn, h, hn, h_new):
        """a: in the x-projection x W_ih^T + b_ih (+ b_hh on the r, z rows), out the activations
        [r, z, n]; gh: h(t-1) W_hh^T; h: h(t-1). Writes hn = W_hn h(t-1) + b_hn (kept for BPTT)
        and h(t)."""
        B, H = h.shape
        half = _const(0.5, h[0, 0])
        for b in range(B):
            ab, gb, hb, hnb, hwb = a[b], gh[b], h[b], hn[b], h_new[b]
            arz, grz = ab[: 2 * H], gb[: 2 * H]
            r, z, n, gn = ab[:H], ab[H : 2 * H], ab[2 * H :], gb[2 * H :]
            for j in range(2 * H):  # r, z                                          (10.47, 10.46)
                arz[j] = half + half * _tanh((arz[j] + grz[j]) * half)
            for j in range(H):
                hnb[j] = gn[j] + b_hn[j]
            for j in range(H):  # n = tanh(x W_in + b_in + r (W_hn h + b_hn))   (in 10.45)
                n[j] = _tanh(n[j] + r[j] * hnb[j])
            for j in range(H):  # h = (1 - z) n + z h                                (10.45)
                hwb[j] = (hb[j] - n[j]) * z[j] + n[j]

    @njit(**_JIT)
    def gru_backward_step(dh, a, hn, h, dgi, gh, dgn, dh_direct, row):
        """dh: (R, H) dL/dh(t); a, hn, h: the step's [r, z, n], W_hn h(t-1) + b_hn, h(t-1).
        Writes dgi (R, 3H) = dL/d(input pre-activations) [dr, dz, dn], gh (R, 3H) = dL/d(recurrent
        pre-activations) [dr, dz, r dn], dgn (R, H) = r dn (its n block alone), and dh_direct
        (R, H) = z dL/dh(t), the part of dL/dh(t-1) that bypasses W_hh. dgi may be ``a`` itself
        and dgn ``hn`` (R = B, gradients written over the cache): each row of [r, z, n] and of hn
        is first copied to ``row`` (4H,), and only that copy is read."""
        R, H = dh.shape
        B = a.shape[0]
        one = _const(1.0, dh[0, 0])
        for r_ in range(R):
            b = r_ % B
            row[: 3 * H] = a[b]
            row[3 * H :] = hn[b]
            r, z, n, hnb = row[:H], row[H : 2 * H], row[2 * H : 3 * H], row[3 * H :]
            hb, dhr, ddr, dgr = h[b], dh[r_], dh_direct[r_], dgn[r_]
            dir_, diz, din = dgi[r_, :H], dgi[r_, H : 2 * H], dgi[r_, 2 * H :]
            dhr_, dhz, dhn = gh[r_, :H], gh[r_, H : 2 * H], gh[r_, 2 * H :]
            for j in range(H):
                din[j] = dhr[j] * ((one - z[j]) * (one - n[j] * n[j]))
            for j in range(H):
                dhn[j] = din[j] * r[j]
            for j in range(H):
                dgr[j] = dhn[j]
            for j in range(H):
                dir_[j] = din[j] * (hnb[j] * (r[j] * (one - r[j])))
            for j in range(H):
                diz[j] = dhr[j] * ((hb[j] - n[j]) * (z[j] * (one - z[j])))
            for j in range(H):
                dhr_[j] = dir_[j]
                dhz[j] = diz[j]
            for j in range(H):
                ddr[j] = dhr[j] * z[j]
