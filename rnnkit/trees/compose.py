"""Compositions: how a node's vector is computed from its two children (or, at a leaf, from the
word's embedding), forward and backward, for n nodes at once.

Every composition works on rows: a node's *state* S is one row of ``n_state * d`` numbers (the
hidden vector h, and for the Tree-LSTM also the memory cell c: S = [h; c]). With x = [h_l; h_r]
the (n, 2d) concatenation of the children's hidden vectors:

* ``RNNComposition`` (Socher et al. 2011):   h = tanh(W x + b)                       W (d, 2d)
* ``RNTNComposition`` (Socher et al. 2013):  h_k = tanh(x^T V[k] x + (W x + b)_k)    V (d, 2d, 2d)
* ``TreeLSTMComposition`` (Tai et al. 2015, binary N-ary Tree-LSTM):
      [i, f_l, f_r, o, u] = [sig, sig, sig, sig, tanh](U x + b)                   U (5d, 2d)
      c = i*u + f_l*c_l + f_r*c_r,   h = o*tanh(c)
  and at a leaf, from the word embedding e (D,):
      [i, o, u] = [sig, sig, tanh](W e + b_leaf),  c = i*u,  h = o*tanh(c)        W (3d, D)

For the plain net and the RNTN a leaf's vector is its embedding (h = e, D = d), as in the papers.

The interface, used by the level-batched engine (:mod:`rnnkit.trees.levels`) and by the
node-at-a-time reference (:mod:`rnnkit.trees.reference`) alike::

    prepare()                                once per batch, before its forward pass
    S, cache = leaf_forward(e)               e (n, D) -> S (n, n_state*d)
    de, grads = leaf_backward(cache, dS)     dS (n, n_state*d) -> de (n, D), {param: grad}
    S, cache = forward(Sl, Sr)               children's states (n, n_state*d) each -> S
    dSl, dSr, rows = backward(cache, dS)     rows: a tuple of (n, .) arrays, row-aligned
    grads = param_grads(*rows)               weight gradients from rows STACKED over any nodes

so the weight gradients of a whole batch are one product over all internal nodes at once:
dW = dA^T X with dA the gradient of the pre-activation A = W x + b (DL book 6.5.6, the same
pattern as 10.22-10.28). Shapes: n rows, d = ``dim``, D = ``embed_dim``.
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from ..functional import sigmoid
from ..module import Module

__all__ = [
    "Composition",
    "RNNComposition",
    "RNTNComposition",
    "TreeLSTMComposition",
    "COMPOSITIONS",
    "make_composition",
]


class Composition(Module):
    """Base class: parameters of the composition and the five functions above."""

    n_state = 1  # d-wide blocks in a node's state
    name = ""

    def __init__(self, dim: int, embed_dim: int, rng: np.random.Generator, dtype) -> None:
        super().__init__()
        if dim < 1 or embed_dim < 1:
            raise RnnkitError(f"dim and embed_dim must be >= 1, got {dim} and {embed_dim}")
        self.dim, self.embed_dim, self.dtype = dim, embed_dim, np.dtype(dtype)

    @property
    def state_size(self) -> int:
        return self.n_state * self.dim

    def _uniform(self, rng, r: float, shape) -> np.ndarray:
        return rng.uniform(-r, r, shape).astype(self.dtype)

    def prepare(self) -> None:
        """Called before each forward pass over a batch (the weights are fixed until its
        backward)."""

    # plain net and RNTN: the leaf's state is its embedding
    def leaf_forward(self, e: np.ndarray):
        return e, None

    def leaf_backward(self, cache, dS: np.ndarray):
        return dS, {}

    def _concat(self, Sl: np.ndarray, Sr: np.ndarray) -> np.ndarray:
        d = self.dim
        return np.concatenate((Sl[:, :d], Sr[:, :d]), axis=1)  # x = [h_l; h_r]  (n, 2d)

    def _split(self, dx: np.ndarray):
        d = self.dim
        return dx[:, :d], dx[:, d:]


class RNNComposition(Composition):
    """h = tanh(W [h_l; h_r] + b): W (d, 2d), b (d,)."""

    name = "rnn"

    def __init__(self, dim, embed_dim, rng, dtype, identity_init: bool = False) -> None:
        super().__init__(dim, embed_dim, rng, dtype)
        if embed_dim != dim:
            raise RnnkitError(
                f"the {self.name} composition needs embed_dim == dim (leaves are the "
                f"embeddings), got {embed_dim} and {dim}"
            )
        W = self._uniform(rng, 1.0 / np.sqrt(2 * dim), (dim, 2 * dim))
        if identity_init:  # start as the average of the children: W = [I I] / 2 + noise
            W += np.hstack([np.eye(dim), np.eye(dim)]).astype(self.dtype) / 2
        self.add_param("W", W)
        self.add_param("b", np.zeros(dim, self.dtype))

    def _pre(self, x: np.ndarray) -> np.ndarray:
        a = x @ self.W.T
        a += self.b
        return a

    def forward(self, Sl, Sr):
        x = self._concat(Sl, Sr)
        h = np.tanh(self._pre(x))
        return h, (x, h)

    def backward(self, cache, dh):
        x, h = cache
        da = dh * (1.0 - h * h)  # tanh' = 1 - h^2
        dl, dr = self._split(self._dx(x, da))
        return dl, dr, (x, da)

    def _dx(self, x, da):
        return da @ self.W

    def param_grads(self, x, da):
        return {"W": da.T @ x, "b": da.sum(axis=0)}


class RNTNComposition(RNNComposition):
    """h_k = tanh(x^T V[k] x + (W x + b)_k), x = [h_l; h_r]: V (d, 2d, 2d), W (d, 2d), b (d,).

    The bilinear term for n rows is one product: T = x V_flat^T with V_flat (d*2d, 2d), then
    z[n, k] = sum_i x[n, i] T[n, k, i]. Backward, with dA the gradient of the pre-activation and
    P[n, (k, i)] = dA[n, k] x[n, i] (n, d*2d):  dx = dA W + P (V + V^T)_flat  and  dV = P^T x,
    one product each (``param_grads`` takes the rows in blocks of 4096 to bound P's memory).
    """

    name = "rntn"

    def __init__(self, dim, embed_dim, rng, dtype, identity_init: bool = False) -> None:
        super().__init__(dim, embed_dim, rng, dtype, identity_init)
        self.add_param("V", self._uniform(rng, 1.0 / (2 * dim), (dim, 2 * dim, 2 * dim)))

    def _pre(self, x):
        d = self.dim
        t = (x @ self.V.reshape(d * 2 * d, 2 * d).T).reshape(-1, d, 2 * d)  # T[n,k,i] = (V[k] x)_i
        a = np.einsum("nki,ni->nk", t, x)
        a += x @ self.W.T
        a += self.b
        return a

    def _outer(self, da, x):
        return (da[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)  # P (n, d*2d)

    def prepare(self) -> None:
        d = self.dim
        self._vsym = (self.V + self.V.transpose(0, 2, 1)).reshape(d * 2 * d, 2 * d)

    def _dx(self, x, da):
        return da @ self.W + self._outer(da, x) @ self._vsym

    def param_grads(self, x, da):
        g = super().param_grads(x, da)
        d = self.dim
        dV = np.zeros((d * 2 * d, 2 * d), self.dtype)
        for s in range(0, x.shape[0], 4096):
            xs, das = x[s : s + 4096], da[s : s + 4096]
            dV += self._outer(das, xs).T @ xs
        g["V"] = dV.reshape(d, 2 * d, 2 * d)
        return g


class TreeLSTMComposition(Composition):
    """Binary Tree-LSTM (Tai et al. 2015, N-ary with N = 2); state S = [h; c] (n, 2d).

    Parameters: ``U`` (5d, 2d) = [U_l U_r] for the gates i, f_l, f_r, o, u of an internal node,
    ``b`` (5d,); ``W`` (3d, D) and ``b_leaf`` (3d,) for the gates i, o, u of a leaf from its
    embedding. ``forget_bias`` is added to the initial b of both forget gates.
    """

    name = "treelstm"
    n_state = 2

    def __init__(self, dim, embed_dim, rng, dtype, forget_bias: float = 1.0) -> None:
        super().__init__(dim, embed_dim, rng, dtype)
        d, r = dim, 1.0 / np.sqrt(dim)
        self.add_param("U", self._uniform(rng, r, (5 * d, 2 * d)))
        b = np.zeros(5 * d, self.dtype)
        b[d : 3 * d] = forget_bias
        self.add_param("b", b)
        self.add_param("W", self._uniform(rng, r, (3 * d, embed_dim)))
        self.add_param("b_leaf", np.zeros(3 * d, self.dtype))

    # leaves: [i, o, u] = [sig, sig, tanh](W e + b_leaf), c = i*u, h = o*tanh(c)
    def leaf_forward(self, e):
        d = self.dim
        g = e @ self.W.T
        g += self.b_leaf
        sigmoid(g[:, : 2 * d], out=g[:, : 2 * d])
        np.tanh(g[:, 2 * d :], out=g[:, 2 * d :])
        S = np.empty((e.shape[0], 2 * d), g.dtype)
        c = np.multiply(g[:, :d], g[:, 2 * d :], out=S[:, d:])  # c = i*u
        tc = np.tanh(c)
        np.multiply(g[:, d : 2 * d], tc, out=S[:, :d])  # h = o*tanh(c)
        return S, (e, g, tc)

    def leaf_backward(self, cache, dS):
        e, g, tc = cache
        d = self.dim
        i, o, u = g[:, :d], g[:, d : 2 * d], g[:, 2 * d :]
        dh = dS[:, :d]
        dc = self._dc(dS, o, tc)
        da = np.empty_like(g)
        np.multiply(dc, u, out=da[:, :d])  # dL/di
        np.multiply(dh, tc, out=da[:, d : 2 * d])  # dL/do
        self._gate_grads(da, g, 2 * d, dc, i)
        return da @ self.W, {"W": da.T @ e, "b_leaf": da.sum(axis=0)}

    @staticmethod
    def _dc(dS, o, tc):
        """dL/dc = dS_c + dS_h * o * (1 - tanh(c)^2): the cell's own gradient plus h's."""
        d = o.shape[1]
        dc = np.multiply(tc, tc)
        np.subtract(1.0, dc, out=dc)
        dc *= o
        dc *= dS[:, :d]
        dc += dS[:, d:]
        return dc

    @staticmethod
    def _gate_grads(da, g, k, dc, i):
        """Turn da[:, :k] (gradients of the sigmoid gates' outputs) into pre-activation gradients
        (times sigma' = s (1 - s)) and write u's, dc * i * (1 - u^2), into da[:, k:]."""
        sg = np.subtract(1.0, g[:, :k])
        sg *= g[:, :k]
        da[:, :k] *= sg
        du = da[:, k:]
        np.multiply(g[:, k:], g[:, k:], out=du)
        np.subtract(1.0, du, out=du)
        du *= i
        du *= dc

    # internal nodes
    def forward(self, Sl, Sr):
        d = self.dim
        x = self._concat(Sl, Sr)
        g = x @ self.U.T
        g += self.b
        sigmoid(g[:, : 4 * d], out=g[:, : 4 * d])
        np.tanh(g[:, 4 * d :], out=g[:, 4 * d :])
        i, fl, fr, o, u = (g[:, k * d : (k + 1) * d] for k in range(5))
        cl, cr = Sl[:, d:], Sr[:, d:]
        S = np.empty((x.shape[0], 2 * d), g.dtype)
        c = np.multiply(i, u, out=S[:, d:])
        tmp = fl * cl
        c += tmp
        c += np.multiply(fr, cr, out=tmp)  # c = i*u + f_l*c_l + f_r*c_r
        tc = np.tanh(c)
        np.multiply(o, tc, out=S[:, :d])  # h = o*tanh(c)
        return S, (x, g, cl, cr, tc)

    def backward(self, cache, dS):
        x, g, cl, cr, tc = cache
        d = self.dim
        i, fl, fr, o = (g[:, k * d : (k + 1) * d] for k in range(4))
        dc = self._dc(dS, o, tc)
        da = np.empty_like(g)
        np.multiply(dc, g[:, 4 * d :], out=da[:, :d])  # dL/di = dc * u
        np.multiply(dc, cl, out=da[:, d : 2 * d])  # dL/df_l = dc * c_l
        np.multiply(dc, cr, out=da[:, 2 * d : 3 * d])  # dL/df_r = dc * c_r
        np.multiply(dS[:, :d], tc, out=da[:, 3 * d : 4 * d])  # dL/do = dh * tanh(c)
        self._gate_grads(da, g, 4 * d, dc, i)
        dx = da @ self.U
        dSl = np.empty_like(dS)
        dSr = np.empty_like(dS)
        dSl[:, :d], dSr[:, :d] = dx[:, :d], dx[:, d:]
        np.multiply(dc, fl, out=dSl[:, d:])  # dL/dc_l = dc * f_l
        np.multiply(dc, fr, out=dSr[:, d:])
        return dSl, dSr, (x, da)

    def param_grads(self, x, da):
        return {"U": da.T @ x, "b": da.sum(axis=0)}


COMPOSITIONS = {"rnn": RNNComposition, "rntn": RNTNComposition, "treelstm": TreeLSTMComposition}


def make_composition(
    cell: str, dim: int, embed_dim: int, rng: np.random.Generator, dtype, **kw
) -> Composition:
    cls = COMPOSITIONS.get(cell)
    if cls is None:
        raise RnnkitError(f"unknown tree cell {cell!r}; choose one of {', '.join(COMPOSITIONS)}")
    return cls(dim, embed_dim, rng, dtype, **kw)
