"""The GRU layer (Deep Learning book 10.45-10.47), PyTorch ``nn.GRU`` compatible.

PyTorch's formulation, gate rows in the order r, z, n of ``weight_ih_l0`` (3H, I),
``weight_hh_l0`` (3H, H), ``bias_ih_l0`` and ``bias_hh_l0`` (3H,):

    r(t) = sigmoid(W_ir x(t) + b_ir + W_hr h(t-1) + b_hr)           reset gate    (10.47)
    z(t) = sigmoid(W_iz x(t) + b_iz + W_hz h(t-1) + b_hz)           update gate   (10.46, u)
    n(t) = tanh(W_in x(t) + b_in + r(t) (W_hn h(t-1) + b_hn))        candidate
    h(t) = (1 - z(t)) n(t) + z(t) h(t-1)                                           (10.45)

The book's 10.45 applies the reset gate before the product, W (r h); PyTorch (and so rnnkit)
after it, r (W_hn h + b_hn) -- which is why only the r and z rows of b_hh can be folded into the
input projection of all steps (``GRUSteps.bias_hh_rows``), and why the gradient of the
recurrent pre-activation differs from the input one on the n rows only (``GRUSteps.hh_rows``):

    dn   = dL/dh(t) (1 - z) (1 - n^2)             = dL/d(input n pre-activation)
    dL/d(recurrent n pre-activation) = r dn
    dr   = dn (W_hn h(t-1) + b_hn) r (1 - r),     dz = dL/dh(t) (h(t-1) - n) z (1 - z)
    dL/dh(t-1) = [dr, dz, r dn] W_hh + z dL/dh(t)

Speed per step: forward 13 NumPy calls (one GEMM; one tanh for both sigmoid gates via
sigmoid(u) = 1/2 + tanh(u/2)/2; one for n), backward 9 (+1 in the shared loop) with every factor
that does not depend on the recursion computed for all steps before the reverse loop; with numba
(``_fast``): forward 2 (GEMM + kernel), backward 3 (kernel, GEMM, add).

Memory: a backward that consumes the cache (the default, see ``recurrent_backward``) writes the
step gradients [dr, dz, dn] over the activations [r, z, n] and r dn over W_hn h(t-1) + b_hn
(each dead once its step is done): beyond the cache, (T, B, .) arrays are only one (T, B, H) of
z on the NumPy path and none with numba.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..functional import sigmoid
from .base import RecurrentLayer
from .cell import Cell
from .lstm import as_2d, fast_kernels
from .steps import Steps


class GRUSaved(NamedTuple):
    """What one GRU step keeps for its backward (each (B, H))."""

    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    hn: np.ndarray  # W_hn h(t-1) + b_hn
    h_prev: np.ndarray


class GRUCell(Cell):
    """One GRU step (10.45-10.47) in PyTorch's form, gates r, z, n.

    ``step`` / ``step_back`` are the reference; :class:`GRUSteps` runs the same steps fused."""

    gates = 3
    n_states = 1

    def __init__(self, hidden_size: int | None = None):
        pass  # (the hidden size is the layer's; kept for the old signature)

    def step(self, w, xp, state, rec):
        h = state[0]
        H = h.shape[-1]
        hh = rec(h)  # W_hh h(t-1) + b_hh, rows r, z, n
        r = sigmoid(xp[:, :H] + hh[:, :H])  # reset gate                        (10.47)
        z = sigmoid(xp[:, H : 2 * H] + hh[:, H : 2 * H])  # update gate          (10.46)
        hn = hh[:, 2 * H :]
        n = np.tanh(xp[:, 2 * H :] + r * hn)  # candidate
        return (n + z * (h - n),), GRUSaved(r, z, n, hn, h)  # (1 - z) n + z h(t-1)  (10.45)

    def step_back(self, w, dstate, saved, rec, dw):
        dh = dstate[0]
        r, z, n, hn, h = saved
        dn = dh * (1.0 - z) * (1.0 - n * n)
        dr = dn * hn * r * (1.0 - r)
        dz = dh * (h - n) * z * (1.0 - z)
        dxp = np.concatenate([dr, dz, dn], axis=-1)
        dhh = np.concatenate([dr, dz, r * dn], axis=-1)  # the recurrent side: r dn on the n rows
        return dxp, (dh * z + rec.back(dhh),)


class GRUSteps(Steps):
    """The GRU steps fused. The step overwrites xp(t) with the activations [r, z, n] (``A`` is
    then the (T, B, 3H) array of all of them); ``HN`` (T, B, H) keeps W_hn h(t-1) + b_hn, the one
    part of the recurrent product that BPTT needs (the product itself goes to a (B, 3H) scratch
    array). Only the r and z rows of b_hh fold into the projection (``bias_hh_rows``), and only the
    n rows' recurrent gradient differs from the input one (r dn vs dn: ``hh_rows``)."""

    def __init__(self, cell, w, rw, S):
        super().__init__(cell, w, rw, S)
        T, B, H, dt = self.T, self.B, self.H, self.dtype
        self.bias_hh_rows = slice(0, 2 * H)  # b_hn stays inside r * (W_hn h + b_hn)
        self.hh_rows = slice(2 * H, 3 * H)
        self.fast = fast_kernels()
        self.b_hn = np.ascontiguousarray(rw.b[2 * H :]) if rw.b is not None else np.zeros(H, dt)
        self.HN = np.empty((T, B, H), dt)
        self.gh = np.empty((B, 3 * H), dt)
        self.tmp = np.empty((B, H), dt)
        # set by the backward (see begin_backward)
        self.A = self.R = self.Z = self.P = self.dgn = self.ghb = self.row = np.empty(0, dt)
        self.out: list = []
        self.out2: list = []

    def projection(self):
        self.A = super().projection()
        return self.A

    def forward(self, t, xp_t, prev, new):
        h, h_new = prev[0], new[0]
        a, gh, hn = xp_t, self.gh, self.HN[t]  # a: the gates, in place of the x-projection
        np.matmul(h, self.rw.WT, out=gh)  # W_hh h(t-1)
        if self.fast is not None:
            self.fast.gru_forward_step(a, gh, self.b_hn, h, hn, h_new)
            return
        H = h.shape[-1]
        np.add(gh[:, 2 * H :], self.b_hn, out=hn)  # W_hn h(t-1) + b_hn
        rz = a[:, : 2 * H]
        rz += gh[:, : 2 * H]
        rz *= 0.5  # sigmoid(u) = 1/2 + tanh(u/2)/2, both gates in one tanh
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5  # [r, z]                                                 (10.47, 10.46)
        n, tmp = a[:, 2 * H :], self.tmp
        np.multiply(a[:, :H], hn, out=tmp)  # r (W_hn h + b_hn)
        n += tmp
        np.tanh(n, out=n)  # candidate n
        np.subtract(h, n, out=h_new)
        h_new *= a[:, H : 2 * H]
        h_new += n  # h(t) = n + z (h(t-1) - n) = (1 - z) n + z h(t-1)        (10.45)

    def begin_backward(self, lead, retain):
        T, B, H, dt = self.T, self.B, self.H, self.dtype
        dh = np.empty((2,) + lead + (B, H), dt)  # ping-pong dL/dh(t-1) outputs
        self.out = [dh[0], dh[1]]
        self.out2 = [dh[0].reshape(-1, H), dh[1].reshape(-1, H)]
        self.ghb = np.empty(lead + (B, 3 * H), dt)  # [dr, dz, r dn] of one step, for W_hh
        # consuming: step t's r dn (dgh) goes over W_hn h(t-1) + b_hn, dead after step t
        self.dgn = np.empty((T, B, H), dt) if retain else self.HN
        if self.fast is not None:
            self.row = np.empty(4 * H, dt)  # the kernel's copy of one row of [r, z, n], hn
            # consuming: the kernel reads step t's gates, then writes [dr, dz, dn] over them
            return (np.empty((T, B, 3 * H), dt) if retain else self.A), self.dgn
        self.P = _gru_factors(self, retain)
        return self.P, self.dgn

    def backward(self, t, dnew, dgi, dgh):
        dh, H, gh = dnew[0], self.H, self.ghb
        d2 = self.out2[t & 1]
        if self.fast is not None:
            if dgi.ndim == 2:  # full BPTT: (B, .) arrays
                dgi2, dgn2 = dgi, dgh
            else:  # truncated: slots stacked, (n, B, .) -> (n*B, .)
                dgi2, dgn2, dh = dgi.reshape(-1, 3 * H), dgh.reshape(-1, H), as_2d(dh, H)
                gh = gh.reshape(-1, 3 * H)
            self.fast.gru_backward_step(
                dh, self.A[t], self.HN[t], self.S[0][t], dgi2, gh, dgn2, d2, self.row
            )
            d2 += gh @ self.rw.W  # dL/dh(t-1) = z dh + [dr, dz, r dn] W_hh
            return (self.out[t & 1],)
        P = self.P[t]  # in full BPTT the same memory as dgi: each product is in place
        dn = dgi[..., 2 * H :]
        np.multiply(dh, P[:, 2 * H :], out=dn)
        np.multiply(dn, self.R[t], out=gh[..., 2 * H :])  # recurrent side: r dn
        np.copyto(dgh, gh[..., 2 * H :])  # (dgh may be where R(t) was: read first)
        np.multiply(dn, P[:, :H], out=dgi[..., :H])  # dr
        np.multiply(dh, P[:, H : 2 * H], out=dgi[..., H : 2 * H])  # dz
        np.copyto(gh[..., : 2 * H], dgi[..., : 2 * H])
        np.matmul(gh.reshape(-1, 3 * H), self.rw.W, out=d2)
        dh_out = self.out[t & 1]
        dh_out += dh * self.Z[t]
        return (dh_out,)

    def groups(self):
        Hp, H = self.S[0][:-1], self.H
        return [(slice(0, 2 * H), Hp, None), (slice(2 * H, 3 * H), Hp, self.dgn)]


def _gru_factors(st: GRUSteps, retain: bool) -> np.ndarray:
    """Every factor of the NumPy backward that does not depend on the recursion, for all steps at
    once, laid out like the input-side gradient [dr, dz, dn] that step t writes over it in place:
    P = [Pr, Pz, Pn] with dr = dn Pr, dz = dh Pz, dn = dh Pn; r and z set on ``st`` as R, Z.
    Consuming (not ``retain``): P over the gates A, r over HN, z into a (T, B, H) array (the same
    products, each in the same order; the temporaries: one (T, B, H) before Z exists, then one of
    T/8 steps)."""
    A, HN, Hp = st.A, st.HN, st.S[0][:-1]  # Hp: h(t-1) of every step
    T, B, H = st.T, st.B, st.H
    r, z, n = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
    if retain:  # into an array of its own
        P = np.empty((T, B, 3 * H), st.dtype)
        np.multiply(HN, r * (1.0 - r), out=P[..., :H])
        np.multiply(Hp - n, z * (1.0 - z), out=P[..., H : 2 * H])
        np.multiply(1.0 - z, 1.0 - n * n, out=P[..., 2 * H :])
        st.R, st.Z = r, z
        return P
    P = A
    u = np.subtract(1.0, r)
    u *= r
    u *= HN  # W_hn h(t-1) + b_hn times r (1 - r)
    np.copyto(HN, r)
    np.copyto(P[..., :H], u)
    del u
    Z = z.copy()
    c = -(-T // 8)
    tmp = np.empty((c, B, H), st.dtype)
    for t0 in range(0, T, c):
        s = slice(t0, t0 + c)
        u, Zs, ns = tmp[: min(c, T - t0)], Z[s], n[s]
        np.subtract(Hp[s], ns, out=u)
        Pz = P[s, :, H : 2 * H]
        np.subtract(1.0, Zs, out=Pz)
        Pz *= Zs
        Pz *= u  # (h(t-1) - n) z (1 - z)
        Pn = P[s, :, 2 * H :]
        np.multiply(ns, ns, out=Pn)
        np.subtract(1.0, Pn, out=Pn)
        np.subtract(1.0, Zs, out=u)
        Pn *= u  # (1 - z) (1 - n^2)
    st.R, st.Z = HN, Z
    return P


GRUCell.steps_class = GRUSteps


class GRU(RecurrentLayer):
    """GRU layer with PyTorch ``nn.GRU``'s parameters and semantics.

    Parameters per layer k (and ``_reverse``): ``weight_ih_l{k}`` (3H, I_k), ``weight_hh_l{k}``
    (3H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3H,), gate rows r, z, n, initialised
    U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

    >>> gru = GRU(3, 5, seed=0)
    >>> y, h_n = gru.forward(np.zeros((7, 2, 3), np.float32))   # y (7, 2, 5), h_n (1, 2, 5)
    >>> dx, dh0 = gru.backward(np.ones_like(y))                 # fills gru.grads
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
    ):
        super().__init__(
            GRUCell(),
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
