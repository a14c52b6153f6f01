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
recurrent pre-activation differs from the input one on the n rows only (``hh_grad_rows``):

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

import numpy as np

from .base import RecurrentLayer
from .cell import Cell
from .lstm import as_2d, fast_kernels


class GRUCell(Cell):
    """One GRU step on x-projections xp(t) = W_ih x(t) + b_ih + [b_hr, b_hz, 0].

    The step overwrites xp(t) with the activations [r, z, n] (``keeps_xp``: ``buf["xp"]`` is then
    the (T, B, 3H) array of all of them); ``HN`` (T, B, H) keeps W_hn h(t-1) + b_hn, the one part
    of the recurrent product that BPTT needs (the product itself goes to a (B, 3H) scratch array).
    """

    gates = 3
    n_states = 1
    keeps_xp = True

    def __init__(self, hidden_size: int):
        H = int(hidden_size)
        self.bias_hh_in_xp = slice(0, 2 * H)  # b_hn stays inside r * (W_hn h + b_hn)
        # only the n rows' recurrent gradient differs from the input one (r dn vs dn): the loop
        # keeps a (T, B, H) array for them and takes the r, z rows of dW_hh from [dr, dz]
        self.hh_grad_rows = slice(2 * H, 3 * H)

    def derive(self, w, H, dtype):
        W, dtype = w["w_hh"], np.dtype(dtype)
        b_hn = np.ascontiguousarray(w["b_hh"][2 * H :]) if "b_hh" in w else np.zeros(H, dtype)
        return {"W": W, "WT": np.ascontiguousarray(W.T), "b_hn": b_hn, "fast": fast_kernels()}

    def prepare(self, d, T, B, H, dtype):
        return {
            **d,
            "HN": np.empty((T, B, H), dtype),
            "gh": np.empty((B, 3 * H), dtype),
            "tmp": np.empty((B, H), dtype),
        }

    def run_step(self, buf, t, xp_t, prev, new):
        h, h_new = prev[0], new[0]
        a, gh, hn = xp_t, buf["gh"], buf["HN"][t]  # a: the gates, in place of the x-projection
        np.matmul(h, buf["WT"], out=gh)  # W_hh h(t-1)
        k = buf["fast"]
        if k is not None:
            k.gru_forward_step(a, gh, buf["b_hn"], h, hn, h_new)
            return
        H = h.shape[-1]
        np.add(gh[:, 2 * H :], buf["b_hn"], out=hn)  # W_hn h(t-1) + b_hn
        rz = a[:, : 2 * H]
        rz += gh[:, : 2 * H]
        rz *= 0.5  # sigmoid(u) = 1/2 + tanh(u/2)/2, both gates in one tanh
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5  # [r, z]                                                 (10.47, 10.46)
        n, tmp = a[:, 2 * H :], buf["tmp"]
        np.multiply(a[:, :H], hn, out=tmp)  # r (W_hn h + b_hn)
        n += tmp
        np.tanh(n, out=n)  # candidate n
        np.subtract(h, n, out=h_new)
        h_new *= a[:, H : 2 * H]
        h_new += n  # h(t) = n + z (h(t-1) - n) = (1 - z) n + z h(t-1)        (10.45)

    def begin_backward(self, buf, S, lead, retain):
        A, HN = buf["xp"], buf["HN"]
        T, B, H3 = A.shape
        H, dtype = H3 // 3, A.dtype
        dh = np.empty((2,) + lead + (B, H), dtype)  # ping-pong dL/dh(t-1) outputs
        wb = {
            "fast": buf["fast"],
            "out": [dh[0], dh[1]],
            "out2": [dh[0].reshape(-1, H), dh[1].reshape(-1, H)],
            "gh": np.empty(lead + (B, 3 * H), dtype),
        }  # [dr, dz, r dn] of one step, for W_hh
        if not retain:  # step t's r dn (dgh) goes over W_hn h(t-1) + b_hn, dead after step t
            wb["dgh_all"] = HN
        if wb["fast"] is not None:
            wb["row"] = np.empty(4 * H, dtype)  # the kernel's copy of one row of [r, z, n], hn
            if not retain:  # the kernel reads step t's gates, then writes [dr, dz, dn] over them
                wb["dgi_all"] = A
            return wb
        r, z, n = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
        Hp = S[0][:-1]  # h(t-1) of every step
        # every factor that does not depend on the recursion, for all steps at once, laid out
        # like the input-side gradient [dr, dz, dn] that step t writes over it in place:
        # P = [Pr, Pz, Pn] with dr = dn Pr, dz = dh Pz, dn = dh Pn; and r, z for the step
        if retain:  # into an array of its own
            P = np.empty((T, B, 3 * H), dtype)
            np.multiply(HN, r * (1.0 - r), out=P[..., :H])
            np.multiply(Hp - n, z * (1.0 - z), out=P[..., H : 2 * H])
            np.multiply(1.0 - z, 1.0 - n * n, out=P[..., 2 * H :])
            wb["R"], wb["Z"] = r, z
        else:  # over the cache: P over the gates A, r over HN, z into a (T, B, H) array
            # (the same products, each in the same order; the temporaries: one (T, B, H) before Z
            # exists, then one of T/8 steps)
            P = A
            u = np.subtract(1.0, r)
            u *= r
            u *= HN  # W_hn h(t-1) + b_hn times r (1 - r)
            np.copyto(HN, r)
            np.copyto(P[..., :H], u)
            del u
            Z = z.copy()
            c = -(-T // 8)
            tmp = np.empty((c, B, H), dtype)
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
            del tmp, u
            wb["R"], wb["Z"] = HN, Z
        wb["P"] = wb["dgi_all"] = P
        return wb

    def run_step_back(self, buf, wb, t, S, dS, dgi, dgh):
        dh = dS[0]
        k = wb["fast"]
        d2 = wb["out2"][t & 1]
        H = dh.shape[-1]
        gh = wb["gh"]
        if k is not None:
            if dgi.ndim == 2:  # full BPTT: (B, .) arrays
                dgi2, dgn2 = dgi, dgh
            else:  # truncated: slots stacked, (n, B, .) -> (n*B, .)
                dgi2, dgn2, dh = dgi.reshape(-1, 3 * H), dgh.reshape(-1, H), as_2d(dh, H)
                gh = gh.reshape(-1, 3 * H)
            k.gru_backward_step(
                dh, buf["xp"][t], buf["HN"][t], S[0][t], dgi2, gh, dgn2, d2, wb["row"]
            )
            d2 += gh @ buf["W"]  # dL/dh(t-1) = z dh + [dr, dz, r dn] W_hh
            return (wb["out"][t & 1],)
        P = wb["P"][t]  # in full BPTT the same memory as dgi: each product is in place
        dn = dgi[..., 2 * H :]
        np.multiply(dh, P[:, 2 * H :], out=dn)
        np.multiply(dn, wb["R"][t], out=gh[..., 2 * H :])  # recurrent side: r dn
        np.copyto(dgh, gh[..., 2 * H :])  # (dgh may be where R(t) was: read first)
        np.multiply(dn, P[:, :H], out=dgi[..., :H])  # dr
        np.multiply(dh, P[:, H : 2 * H], out=dgi[..., H : 2 * H])  # dz
        np.copyto(gh[..., : 2 * H], dgi[..., : 2 * H])
        np.matmul(gh.reshape(-1, 3 * H), buf["W"], out=d2)
        dh_out = wb["out"][t & 1]
        dh_out += dh * wb["Z"][t]
        return (dh_out,)


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
            GRUCell(hidden_size if isinstance(hidden_size, (int, np.integer)) else 1),
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
