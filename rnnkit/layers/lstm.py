"""The LSTM layer (Deep Learning book 10.40-10.44), PyTorch ``nn.LSTM`` compatible.

PyTorch's formulation, gate rows in the order i, f, g, o of ``weight_ih_l0`` (4H, I),
``weight_hh_l0`` (4H, H), ``bias_ih_l0`` and ``bias_hh_l0`` (4H,); with a_k(t) = W_ik x(t) + b_ik +
W_hk h(t-1) + b_hk:

    i(t) = sigmoid(a_i(t))     input gate      (10.42, the book's "external input gate" g)
    f(t) = sigmoid(a_f(t))     forget gate     (10.41)
    g(t) = tanh(a_g(t))        candidate       (the sigmoid term of 10.40; tanh in PyTorch)
    o(t) = sigmoid(a_o(t))     output gate     (10.44, the book's q)
    c(t) = f(t) c(t-1) + i(t) g(t)             (10.40, the book's cell state s)
    h(t) = o(t) tanh(c(t))                     (10.43)

BPTT of one step (the shared loop in ``recurrent.py`` adds dL/dy(t) to dL/dh(t) first, and forms
every weight gradient as one product over the stacked steps):

    dc   = dL/dc(t) + dL/dh(t) o (1 - tanh(c)^2)
    da_i = dc g i (1 - i),   da_f = dc c(t-1) f (1 - f),   da_g = dc i (1 - g^2),
    da_o = dL/dh(t) tanh(c) o (1 - o)
    dL/dc(t-1) = dc f,       dL/dh(t-1) = da W_hh   (da = [da_i, da_f, da_g, da_o], (B, 4H))

Speed (NumPy calls per step; the shared loop adds one per backward step for dL/dy(t)):

* forward, pure NumPy: 12 (11 without bias) -- the GEMM h(t-1) W_hh^T into a (B, 4H) scratch
  array, two adds (it and b_hh onto the step's x-projection, which becomes the gate block in
  place), ONE tanh for all four gates (sigmoid(u) = 1/2 + tanh(u/2)/2: the block is scaled by
  s = [1/2, 1/2, 1, 1/2] per row before the tanh, and by s plus [1/2, 1/2, 0, 1/2] after it),
  and five calls for c(t), tanh(c(t)) and h(t), all with ``out=`` into arrays made once per pass;
* backward, pure NumPy: 6 -- every factor that does not depend on the recursion
  (o (1 - tanh(c)^2) and each gate's derivative times its partner) is computed for all steps at
  once before the reverse loop, into the array that then receives the step gradients da(t), so a
  step is two calls for dc, two for the four gate blocks (broadcast over a (B, 4, H) view), one
  for dL/dc(t-1) and the GEMM;
* with numba (``_fast``, used when it imports): forward 2 (GEMM + one kernel), backward 2
  (kernel + GEMM); the kernels evaluate the same formulas in the same order.

Memory: a backward that consumes the cache (the default, see ``recurrent_backward``) needs no
(T, B, .) array beyond it: the factors above go over the cache (P over the gates, o (1 - tanh(c)^2)
over tanh(c), f over c(t-1)) and the step gradients da(t) over P; with numba the kernel writes
da(t) over the gates of step t, which it has read first.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import RnnkitError
from .base import RecurrentLayer
from .cell import Cell


def fast_kernels():
    """The numba kernels module when the fast path is on, else None (imports numba lazily)."""
    try:
        from . import _fast
    except ImportError:  # pragma: no cover - _fast itself never fails to import
        return None
    return _fast.kernels()


def as_2d(a: np.ndarray, width: int) -> np.ndarray:
    """(..., width) -> (N, width), C-contiguous (a view when ``a`` already is)."""
    return np.ascontiguousarray(a).reshape(-1, width)


class LSTMCell(Cell):
    """One LSTM step on x-projections xp(t) = W_ih x(t) + b_ih computed for all steps.

    b_hh is added inside the step (``bias_hh_in_xp = None``): in the fused kernel that is free,
    while folding it into xp would cost a pass over the whole (T, B, 4H) projection. The step
    overwrites xp(t) with the gate activations [i, f, g, o] (``keeps_xp``: ``buf["xp"]`` is then
    the (T, B, 4H) array of all of them), ``TC`` (T, B, H) keeps tanh(c(t)); the states h, c live
    in the shared loop's S arrays; h(t-1) W_hh^T goes to a (B, 4H) scratch array.
    """

    gates = 4
    n_states = 2
    bias_hh_in_xp = None
    keeps_xp = True

    def derive(self, w, H, dtype):
        W, dtype = w["w_hh"], np.dtype(dtype)
        has_bias = "b_hh" in w
        d = {
            "W": W,
            "WT": np.ascontiguousarray(W.T),
            "fast": fast_kernels(),
            "has_bias": has_bias,
            "b_hh": w["b_hh"] if has_bias else np.zeros(4 * H, dtype),
        }
        if d["fast"] is None:
            sc = np.full(4 * H, 0.5, dtype)
            sc[2 * H : 3 * H] = 1.0
            d["sc"], d["off"] = sc, (sc != 1.0).astype(dtype) * dtype.type(0.5)
        return d

    def prepare(self, d, T, B, H, dtype):
        buf = {**d, "g": np.empty((B, 4 * H), dtype), "TC": np.empty((T, B, H), dtype)}
        if buf["fast"] is None:
            buf["tmp"] = np.empty((B, H), dtype)
        return buf

    def run_step(self, buf, t, xp_t, prev, new):
        h, c = prev
        h_new, c_new = new
        a, g, tc = xp_t, buf["g"], buf["TC"][t]  # a: the gates, in place of the x-projection
        np.matmul(h, buf["WT"], out=g)  # W_hh h(t-1)
        k = buf["fast"]
        if k is not None:
            k.lstm_forward_step(a, g, buf["b_hh"], c, c_new, h_new, tc)
            return
        H = c.shape[-1]
        sc = buf["sc"]
        a += g
        if buf["has_bias"]:
            a += buf["b_hh"]  # a(t) = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh
        a *= sc  # sigmoid rows halved: one tanh gives tanh(a/2) there, tanh(a_g) for g
        np.tanh(a, out=a)
        a *= sc
        a += buf["off"]  # [i, f, g, o]                                (10.42, 10.41, 10.44)
        np.multiply(a[:, H : 2 * H], c, out=c_new)  # f c(t-1)
        tmp = buf["tmp"]
        np.multiply(a[:, :H], a[:, 2 * H : 3 * H], out=tmp)  # i g
        c_new += tmp  # c(t)                                            (10.40)
        np.tanh(c_new, out=tc)
        np.multiply(a[:, 3 * H :], tc, out=h_new)  # h(t) = o tanh(c(t))    (10.43)

    def begin_backward(self, buf, S, lead, retain):
        A, TC = buf["xp"], buf["TC"]
        T, B, H4 = A.shape
        H = H4 // 4
        dtype = A.dtype
        # ping-pong outputs: step t writes one while the next step (t-1) reads the other
        dh, dc = np.empty((2,) + lead + (B, H), dtype), np.empty((2,) + lead + (B, H), dtype)
        wb = {
            "fast": buf["fast"],
            "out": [(dh[0], dc[0]), (dh[1], dc[1])],
            "out2": [
                (dh[0].reshape(-1, H), dc[0].reshape(-1, H)),
                (dh[1].reshape(-1, H), dc[1].reshape(-1, H)),
            ],
        }
        if wb["fast"] is not None:
            wb["row"] = np.empty(4 * H, dtype)  # the kernel's copy of one row of gates
            if not retain:  # the kernel reads step t's gates, then writes da(t) over them
                wb["dgi_all"] = A
            return wb
        i, f, g, o = (A[..., k * H : (k + 1) * H] for k in range(4))
        Cp = S[1][:-1]  # c(t-1) of every step
        # everything that does not depend on the recursion, for all steps at once:
        # K(t) (dL/dc(t) gets dL/dh(t) K(t)), P(t) (da = [dc, dc, dc, dh] * P) and f(t)
        if retain:  # into arrays of their own
            wb["K"] = o * (1.0 - TC * TC)
            P = np.empty((T, B, 4, H), dtype)
            np.multiply(g, i * (1.0 - i), out=P[:, :, 0])
            np.multiply(Cp, f * (1.0 - f), out=P[:, :, 1])
            np.multiply(i, 1.0 - g * g, out=P[:, :, 2])
            np.multiply(TC, o * (1.0 - o), out=P[:, :, 3])
            wb["F"] = f
        else:  # over the cache: P over the gates A, K over tanh(c) TC, f over c(t-1) S[1][:-1]
            # (the same products, each in the same order, one (T, B, H) temporary at a time)
            P = A.reshape(T, B, 4, H)
            u = np.subtract(1.0, f)
            u *= f
            u *= Cp  # c(t-1) f (1 - f)
            np.copyto(Cp, f)
            np.copyto(P[:, :, 1], u)
            np.subtract(1.0, i, out=u)
            u *= i
            u *= g  # g i (1 - i)
            np.multiply(g, g, out=P[:, :, 2])
            np.subtract(1.0, P[:, :, 2], out=P[:, :, 2])
            P[:, :, 2] *= i  # i (1 - g^2)
            np.copyto(P[:, :, 0], u)
            np.subtract(1.0, o, out=u)
            u *= o
            u *= TC  # tanh(c) o (1 - o)
            np.multiply(TC, TC, out=TC)
            np.subtract(1.0, TC, out=TC)
            TC *= o  # K = o (1 - tanh(c)^2)
            np.copyto(P[:, :, 3], u)
            del u
            wb["K"], wb["F"] = TC, Cp
        wb["P"] = P
        wb["dgi_all"] = P.reshape(T, B, 4 * H)  # step t turns P(t) into da(t) in place
        wb["dct"] = np.empty(lead + (B, H), dtype)
        return wb

    def run_step_back(self, buf, wb, t, S, dS, dgi, dgh):
        dh, dc = dS
        k = wb["fast"]
        if k is not None:
            dh_out, dc_out = wb["out2"][t & 1]
            if dgi.ndim == 2:  # full BPTT: (B, .) arrays
                dg2 = dgi
            else:  # truncated: slots stacked, (n, B, .) -> (n*B, .)
                H = dh.shape[-1]
                dg2, dh, dc = dgi.reshape(-1, 4 * H), as_2d(dh, H), as_2d(dc, H)
            k.lstm_backward_step(
                dh, dc, buf["xp"][t], S[1][t], buf["TC"][t], dg2, dc_out, wb["row"]
            )
            np.matmul(dg2, buf["W"], out=dh_out)  # dL/dh(t-1) = da W_hh
            return wb["out"][t & 1]
        H = dh.shape[-1]
        dh_out, dc_out = wb["out"][t & 1]
        P = wb["P"][t]  # in full BPTT the same memory as dgi: each product is in place
        dct = wb["dct"]
        np.multiply(dh, wb["K"][t], out=dct)
        dct += dc  # dL/dc(t) in full
        dg4 = dgi.reshape(dgi.shape[:-1] + (4, H))
        np.multiply(dct[..., None, :], P[:, :3], out=dg4[..., :3, :])  # da_i, da_f, da_g
        np.multiply(dh, P[:, 3], out=dg4[..., 3, :])  # da_o
        np.multiply(dct, wb["F"][t], out=dc_out)  # dL/dc(t-1) = dc f
        np.matmul(dgi.reshape(-1, 4 * H), buf["W"], out=wb["out2"][t & 1][0])
        return dh_out, dc_out


class LSTM(RecurrentLayer):
    """LSTM layer with PyTorch ``nn.LSTM``'s parameters and semantics.

    Parameters per layer k (and ``_reverse``): ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}``
    (4H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), gate rows i, f, g, o, initialised
    U(-1/sqrt(H), 1/sqrt(H)) like PyTorch; ``forget_bias`` is then added to the forget-gate rows
    of every ``bias_ih`` (1.0 is a common choice: the cell starts out remembering).

    >>> lstm = LSTM(3, 5, seed=0)
    >>> y, (h_n, c_n) = lstm.forward(np.zeros((7, 2, 3), np.float32))   # y (7, 2, 5)
    >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(y))                  # fills lstm.grads
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge: str = "concat",
        seed: int | None = None,
        dtype: str = "float32",
        bptt_truncate: int | None = None,
        forget_bias: float = 0.0,
    ):
        if (
            isinstance(forget_bias, bool)
            or not isinstance(forget_bias, (int, float, np.number))
            or not math.isfinite(forget_bias)
        ):
            raise RnnkitError(f"forget_bias must be a finite number, got {forget_bias!r}")
        super().__init__(
            LSTMCell(),
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            dropout=dropout,
            bidirectional=bidirectional,
            merge=merge,
            seed=seed,
            dtype=dtype,
            bptt_truncate=bptt_truncate,
        )
        self.forget_bias = float(forget_bias)
        if self.forget_bias != 0.0:
            if not bias:
                raise RnnkitError("forget_bias needs bias=True (it is added to bias_ih)")
            H = self.hidden_size
            for n, p in self._params.items():
                if n.startswith("bias_ih_"):
                    p[H : 2 * H] += self.forget_bias
