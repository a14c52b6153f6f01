"""The GRU layer (Deep Learning book 10.45-10.47), PyTorch ``nn.GRU`` compatible.

PyTorch's formulation, gate rows in the order r, z, n of ``weight_ih_l0`` (3H, I),
``weight_hh_l0`` (3H, H), ``bias_ih_l0`` and ``bias_hh_l0`` (3H,):

    r(t) = sigmoid(W_ir x(t) + b_ir + W_hr h(t-1) + b_hr)           reset gate    (10.47)
    z(t) = sigmoid(W_iz x(t) + b_iz + W_hz h(t-1) + b_hz)           update gate   (10.46, u)
    n(t) = tanh(W_in x(t) + b_in + r(t) (W_hn h(t-1) + b_hn))        candidate
    h(t) = (1 - z(t)) n(t) + z(t) h(t-1)                                           (10.45)

The book's 10.45 applies the reset gate before the product, W (r h); PyTorch (and so rnnkit)
after it, r (W_hn h + b_hn) -- which is why only the r and z rows of b_hh can be folded into the
input projection of all steps (``bias_hh_in_xp = slice(0, 2H)``), and why the gradient of the
recurrent pre-activation differs from the input one on the n rows (``separate_hh_grad``):

    dn   = dL/dh(t) (1 - z) (1 - n^2)             = dL/d(input n pre-activation)
    dL/d(recurrent n pre-activation) = r dn
    dr   = dn (W_hn h(t-1) + b_hn) r (1 - r),     dz = dL/dh(t) (h(t-1) - n) z (1 - z)
    dL/dh(t-1) = [dr, dz, r dn] W_hh + z dL/dh(t)

Speed per step: forward 13 NumPy calls (one GEMM; one tanh for both sigmoid gates via
sigmoid(u) = 1/2 + tanh(u/2)/2; one for n), backward 8 (+1 in the shared loop) with every factor
that does not depend on the recursion computed for all steps before the reverse loop; with numba
(``_fast``): forward 2 (GEMM + kernel), backward 3 (kernel, GEMM, add).
"""

from __future__ import annotations

import numpy as np

from .base import RecurrentLayer
from .lstm import as_2d, fast_kernels
from .recurrent import Cell


class GRUCell(Cell):
    """One GRU step on x-projections xp(t) = W_ih x(t) + b_ih + [b_hr, b_hz, 0].

    The step overwrites xp(t) with the activations [r, z, n] (``keeps_xp``: ``buf["xp"]`` is then
    the (T, B, 3H) array of all of them); ``HN`` (T, B, H) keeps W_hn h(t-1) + b_hn, the one part
    of the recurrent product that BPTT needs (the product itself goes to a (B, 3H) scratch array).
    """

    gates = 3
    n_states = 1
    separate_hh_grad = True
    keeps_xp = True

    def __init__(self, hidden_size: int):
        H = int(hidden_size)
        self.bias_hh_in_xp = slice(0, 2 * H)  # b_hn stays inside r * (W_hn h + b_hn)

    def prepare(self, params, T, B, H, dtype):
        W, dtype = params["weight_hh_l0"], np.dtype(dtype)
        b_hn = (np.ascontiguousarray(params["bias_hh_l0"][2 * H:]) if "bias_hh_l0" in params
                else np.zeros(H, dtype))
        return {"W": W, "WT": np.ascontiguousarray(W.T), "b_hn": b_hn,
                "HN": np.empty((T, B, H), dtype), "gh": np.empty((B, 3 * H), dtype),
                "tmp": np.empty((B, H), dtype), "fast": fast_kernels()}

    def step(self, buf, t, xp_t, prev, new):
        h, h_new = prev[0], new[0]
        a, gh, hn = xp_t, buf["gh"], buf["HN"][t]  # a: the gates, in place of the x-projection
        np.matmul(h, buf["WT"], out=gh)  # W_hh h(t-1)
        k = buf["fast"]
        if k is not None:
            k.gru_forward_step(a, gh, buf["b_hn"], h, hn, h_new)
            return
        H = h.shape[-1]
        np.add(gh[:, 2 * H:], buf["b_hn"], out=hn)  # W_hn h(t-1) + b_hn
        rz = a[:, : 2 * H]
        rz += gh[:, : 2 * H]
        rz *= 0.5  # sigmoid(u) = 1/2 + tanh(u/2)/2, both gates in one tanh
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5  # [r, z]                                                 (10.47, 10.46)
        n, tmp = a[:, 2 * H:], buf["tmp"]
        np.multiply(a[:, :H], hn, out=tmp)  # r (W_hn h + b_hn)
        n += tmp
        np.tanh(n, out=n)  # candidate n
        np.subtract(h, n, out=h_new)
        h_new *= a[:, H: 2 * H]
        h_new += n  # h(t) = n + z (h(t-1) - n) = (1 - z) n + z h(t-1)        (10.45)

    def begin_backward(self, buf, S, lead):
        A, HN = buf["xp"], buf["HN"]
        T, B, H3 = A.shape
        H = H3 // 3
        dh = np.empty((2,) + lead + (B, H), A.dtype)  # ping-pong dL/dh(t-1) outputs
        wb = {"fast": buf["fast"], "out": [dh[0], dh[1]],
              "out2": [dh[0].reshape(-1, H), dh[1].reshape(-1, H)]}
        if wb["fast"] is not None:
            return wb
        r, z, n = A[..., :H], A[..., H: 2 * H], A[..., 2 * H:]
        Hp = S[0][:-1]  # h(t-1) of every step
        # every factor that does not depend on the recursion, for all steps at once, laid out
        # like the input-side gradient [dr, dz, dn] that step t writes over it in place
        P = np.empty((T, B, 3 * H), A.dtype)
        np.multiply(HN, r * (1.0 - r), out=P[..., :H])  # dr = dn Pr
        np.multiply(Hp - n, z * (1.0 - z), out=P[..., H: 2 * H])  # dz = dh Pz
        np.multiply(1.0 - z, 1.0 - n * n, out=P[..., 2 * H:])  # dn = dh Pn
        wb["P"] = wb["dgi_all"] = P
        return wb

    def step_back(self, buf, wb, t, S, dS, dgi, dgh):
        dh = dS[0]
        k = wb["fast"]
        a = buf["xp"][t]
        d2 = wb["out2"][t & 1]
        if k is not None:
            if dgi.ndim == 2:  # full BPTT: (B, .) arrays
                dgi2, dgh2 = dgi, dgh
            else:  # truncated: slots stacked, (n, B, .) -> (n*B, .)
                H = dh.shape[-1]
                dgi2, dgh2, dh = dgi.reshape(-1, 3 * H), dgh.reshape(-1, 3 * H), as_2d(dh, H)
            k.gru_backward_step(dh, a, buf["HN"][t], S[0][t], dgi2, dgh2, d2)
            d2 += dgh2 @ buf["W"]  # dL/dh(t-1) = z dh + [dr, dz, r dn] W_hh
            return (wb["out"][t & 1],)
        H = dh.shape[-1]
        P = wb["P"][t]  # in full BPTT the same memory as dgi: each product is in place
        dn = dgi[..., 2 * H:]
        np.multiply(dh, P[:, 2 * H:], out=dn)
        np.multiply(dn, a[:, :H], out=dgh[..., 2 * H:])  # recurrent side: r dn
        np.multiply(dn, P[:, :H], out=dgi[..., :H])  # dr
        np.multiply(dh, P[:, H: 2 * H], out=dgi[..., H: 2 * H])  # dz
        np.copyto(dgh[..., : 2 * H], dgi[..., : 2 * H])
        np.matmul(dgh.reshape(-1, 3 * H), buf["W"], out=d2)
        dh_out = wb["out"][t & 1]
        dh_out += dh * a[:, H: 2 * H]
        return (dh_out,)


class GRU(RecurrentLayer):
    """GRU layer with PyTorch ``nn.GRU``'s parameters (one layer, one direction).

    Parameters: ``weight_ih_l0`` (3H, I), ``weight_hh_l0`` (3H, H), ``bias_ih_l0`` (3H,),
    ``bias_hh_l0`` (3H,), gate rows r, z, n, initialised U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

    >>> gru = GRU(3, 5, seed=0)
    >>> y, h_n = gru.forward(np.zeros((7, 2, 3), np.float32))   # y (7, 2, 5), h_n (1, 2, 5)
    >>> dx, dh0 = gru.backward(np.ones_like(y))                 # fills gru.grads
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 seed: int | None = None, dtype: str = "float32",
                 bptt_truncate: int | None = None):
        super().__init__(GRUCell(hidden_size if isinstance(hidden_size, (int, np.integer)) else 1),
                         input_size, hidden_size, bias=bias, seed=seed, dtype=dtype,
                         bptt_truncate=bptt_truncate)
