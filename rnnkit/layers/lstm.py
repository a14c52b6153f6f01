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
from typing import NamedTuple

import numpy as np

from ..errors import RnnkitError
from ..functional import sigmoid
from .base import RecurrentLayer
from .cell import Cell
from .steps import Steps


def fast_kernels():
    """The numba kernels module when the fast path is on, else None (imports numba lazily)."""
    from . import _fast

    return _fast.kernels()


def as_2d(a: np.ndarray, width: int) -> np.ndarray:
    """(..., width) -> (N, width), C-contiguous (a view when ``a`` already is)."""
    return np.ascontiguousarray(a).reshape(-1, width)


class LSTMSaved(NamedTuple):
    """What one LSTM step keeps for its backward (each (B, H))."""

    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c_prev: np.ndarray
    tanh_c: np.ndarray


class LSTMCell(Cell):
    """One LSTM step (10.40-10.44), gates i, f, g, o in PyTorch's order.

    ``step`` / ``step_back`` are the reference; :class:`LSTMSteps` runs the same steps fused."""

    gates = 4
    n_states = 2

    def step(self, w, xp, state, rec):
        h, c = state
        H = h.shape[-1]
        a = xp + rec(h)  # a(t) = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 3 * H :])
        g = np.tanh(a[:, 2 * H : 3 * H])  # (10.42, 10.41, 10.44; the candidate of 10.40)
        c_new = f * c + i * g  # (10.40)
        tc = np.tanh(c_new)
        return (o * tc, c_new), LSTMSaved(i, f, g, o, c, tc)  # h(t) = o tanh(c(t))  (10.43)

    def step_back(self, w, dstate, saved, rec, dw):
        dh, dc = dstate
        i, f, g, o, c_prev, tc = saved
        dct = dc + dh * o * (1.0 - tc * tc)  # dL/dc(t) in full
        da = np.concatenate(
            [dct * g * i * (1.0 - i), dct * c_prev * f * (1.0 - f), dct * i * (1.0 - g * g)]
            + [dh * tc * o * (1.0 - o)],
            axis=-1,
        )
        return da, (rec.back(da), dct * f)  # dL/dh(t-1) = da W_hh, dL/dc(t-1) = dc f


class LSTMSteps(Steps):
    """The LSTM steps fused. The step overwrites xp(t) with the gate activations [i, f, g, o]
    (``A`` is then the (T, B, 4H) array of all of them) and keeps tanh(c(t)) in ``TC``; h(t-1)
    W_hh^T goes to a (B, 4H) scratch array. b_hh is added inside the step (``bias_hh_rows``
    None): in the fused kernel that is free, while folding it into xp would cost a pass over the
    whole (T, B, 4H) projection; with the kernel, b_ih is added there too (``adds_bias_ih``)."""

    hh_rows = None  # dL/d(recurrent product) = dL/da: one array

    def __init__(self, cell, w, rw, S):
        super().__init__(cell, w, rw, S)
        T, B, H, dt = self.T, self.B, self.H, self.dtype
        self.fast = fast_kernels()
        self.has_bias = rw.b is not None
        self.b_hh = rw.b if rw.b is not None else np.zeros(4 * H, dt)
        if self.fast is not None and "b_ih" in w:  # the kernel adds b_ih + b_hh in its pass
            self.adds_bias_ih = True
            self.b_hh = w["b_ih"] + self.b_hh
        self.g = np.empty((B, 4 * H), dt)
        self.TC = np.empty((T, B, H), dt)
        # set by the backward: ping-pong outputs, the kernel's row copy; the NumPy path's factors
        self.A = self.K = self.F = self.P = self.dct = self.row = np.empty(0, dt)
        self.out: list = []
        self.out2: list = []
        if self.fast is None:
            self.sc = np.full(4 * H, 0.5, dt)
            self.sc[2 * H : 3 * H] = 1.0
            self.off = (self.sc != 1.0).astype(dt) * dt.type(0.5)
            self.tmp = np.empty((B, H), dt)

    def projection(self):
        self.A = super().projection()
        return self.A

    def forward(self, t, xp_t, prev, new):
        h, c = prev
        h_new, c_new = new
        a, g, tc = xp_t, self.g, self.TC[t]  # a: the gates, in place of the x-projection
        np.matmul(h, self.rw.WT, out=g)  # W_hh h(t-1)
        if self.fast is not None:
            self.fast.lstm_forward_step(a, g, self.b_hh, c, c_new, h_new, tc)
            return
        H, sc = c.shape[-1], self.sc
        a += g
        if self.has_bias:
            a += self.b_hh  # a(t) = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh
        a *= sc  # sigmoid rows halved: one tanh gives tanh(a/2) there, tanh(a_g) for g
        np.tanh(a, out=a)
        a *= sc
        a += self.off  # [i, f, g, o]                                (10.42, 10.41, 10.44)
        np.multiply(a[:, H : 2 * H], c, out=c_new)  # f c(t-1)
        np.multiply(a[:, :H], a[:, 2 * H : 3 * H], out=self.tmp)  # i g
        c_new += self.tmp  # c(t)                                       (10.40)
        np.tanh(c_new, out=tc)
        np.multiply(a[:, 3 * H :], tc, out=h_new)  # h(t) = o tanh(c(t))    (10.43)

    def begin_backward(self, lead, retain):
        T, B, H, dt = self.T, self.B, self.H, self.dtype
        # ping-pong outputs: step t writes one while the next step (t-1) reads the other
        dh, dc = np.empty((2,) + lead + (B, H), dt), np.empty((2,) + lead + (B, H), dt)
        self.out = [(dh[0], dc[0]), (dh[1], dc[1])]
        self.out2 = [(a.reshape(-1, H), b.reshape(-1, H)) for a, b in self.out]
        if self.fast is not None:
            self.row = np.empty(4 * H, dt)  # the kernel's copy of one row of gates
            # consuming: the kernel reads step t's gates, then writes da(t) over them
            dgi = np.empty((T, B, 4 * H), dt) if retain else self.A
            return dgi, dgi
        self.P = _lstm_factors(self, retain)
        self.dct = np.empty(lead + (B, H), dt)
        dgi = self.P.reshape(T, B, 4 * H)  # step t turns P(t) into da(t) in place
        return dgi, dgi

    def backward(self, t, dnew, dgi, dgh):
        dh, dc = dnew
        H = dh.shape[-1]
        if self.fast is not None:
            dh_out, dc_out = self.out2[t & 1]
            if dgi.ndim == 2:  # full BPTT: (B, .) arrays
                dg2 = dgi
            else:  # truncated: slots stacked, (n, B, .) -> (n*B, .)
                dg2, dh, dc = dgi.reshape(-1, 4 * H), as_2d(dh, H), as_2d(dc, H)
            self.fast.lstm_backward_step(
                dh, dc, self.A[t], self.S[1][t], self.TC[t], dg2, dc_out, self.row
            )
            np.matmul(dg2, self.rw.W, out=dh_out)  # dL/dh(t-1) = da W_hh
            return self.out[t & 1]
        dh_out, dc_out = self.out[t & 1]
        P, dct = self.P[t], self.dct  # in full BPTT P is the memory of dgi: each product in place
        np.multiply(dh, self.K[t], out=dct)
        dct += dc  # dL/dc(t) in full
        dg4 = dgi.reshape(dgi.shape[:-1] + (4, H))
        np.multiply(dct[..., None, :], P[:, :3], out=dg4[..., :3, :])  # da_i, da_f, da_g
        np.multiply(dh, P[:, 3], out=dg4[..., 3, :])  # da_o
        np.multiply(dct, self.F[t], out=dc_out)  # dL/dc(t-1) = dc f
        np.matmul(dgi.reshape(-1, 4 * H), self.rw.W, out=self.out2[t & 1][0])
        return dh_out, dc_out

    def groups(self):
        return [(slice(None), self.S[0][:-1], None)]


def _lstm_factors(st: LSTMSteps, retain: bool) -> np.ndarray:
    """Everything of the NumPy backward that does not depend on the recursion, for all steps at
    once: K(t) (dL/dc(t) gets dL/dh(t) K(t)), P(t) (da = [dc, dc, dc, dh] * P) and f(t), set on
    ``st`` as K, F; returns P (T, B, 4, H). Consuming (not ``retain``): over the cache -- P over
    the gates A, K over tanh(c) TC, f over c(t-1) S[1][:-1] (the same products, each in the same
    order, one (T, B, H) temporary at a time)."""
    A, TC, Cp = st.A, st.TC, st.S[1][:-1]  # Cp: c(t-1) of every step
    T, B, H = st.T, st.B, st.H
    i, f, g, o = (A[..., k * H : (k + 1) * H] for k in range(4))
    if retain:  # into arrays of their own
        st.K = o * (1.0 - TC * TC)
        P = np.empty((T, B, 4, H), st.dtype)
        np.multiply(g, i * (1.0 - i), out=P[:, :, 0])
        np.multiply(Cp, f * (1.0 - f), out=P[:, :, 1])
        np.multiply(i, 1.0 - g * g, out=P[:, :, 2])
        np.multiply(TC, o * (1.0 - o), out=P[:, :, 3])
        st.F = f
        return P
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
    st.K, st.F = TC, Cp
    return P


LSTMCell.steps_class = LSTMSteps


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
