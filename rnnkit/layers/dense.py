"""The non-recurrent pieces every model needs, applied to all time steps at once.

* Embedding: e(t) = E[x(t)], a row gather of the (V, D) table (the product of a one-hot x(t)
  with E, without building the one-hot matrix); its gradient is a scatter-add of rows.
* Linear: o(t) = c + V h(t) (10.10) for all T*B rows in ONE matrix product; its weight gradient
  dV = sum_t dL/do(t) h(t)^T (10.24-10.25) is one product over the stacked steps as well.
"""

from __future__ import annotations

import numpy as np

from ..functional import scatter_add_rows
from ..module import Module


def embedding_forward(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """table (V, D), ids (T, B) int -> (T, B, D)."""
    return table[ids]


def embedding_backward(table_shape: tuple, ids: np.ndarray, de: np.ndarray) -> np.ndarray:
    """dL/dE (V, D) from de = dL/de (T, B, D): rows of de added at their ids."""
    return scatter_add_rows(table_shape[0], ids, de)


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x (..., F), weight (O, F), bias (O,) -> x W^T + b of shape (..., O), one GEMM."""
    lead, F = x.shape[:-1], x.shape[-1]
    out = x.reshape(-1, F) @ weight.T
    if bias is not None:
        out += bias
    return out.reshape(*lead, weight.shape[0])


def linear_backward(
    x: np.ndarray, weight: np.ndarray, dout: np.ndarray, bias: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Given x (..., F) and dout (..., O): returns (dx (..., F), dW (O, F), db (O,) or None)."""
    F, O = x.shape[-1], weight.shape[0]
    d2, x2 = dout.reshape(-1, O), x.reshape(-1, F)
    dW = d2.T @ x2
    db = d2.sum(axis=0) if bias else None
    return (d2 @ weight).reshape(x.shape), dW, db


class Embedding(Module):
    """e(t) = E[x(t)]: ``weight`` (V, D). Initialised N(0, init_std^2) (PyTorch: N(0, 1))."""

    def __init__(self, num: int, dim: int, rng: np.random.Generator, dtype, init_std: float = 1.0):
        super().__init__()
        self.add_param("weight", rng.normal(0.0, init_std, (num, dim)).astype(dtype))

    def forward(self, ids: np.ndarray) -> np.ndarray:
        return embedding_forward(self.weight, ids)

    def backward(self, ids: np.ndarray, de: np.ndarray) -> None:
        self.grads["weight"] = embedding_backward(self.weight.shape, ids, de)


class Linear(Module):
    """o = x W^T + b (10.10): ``weight`` (O, F), ``bias`` (O,), U(-1/sqrt(F), 1/sqrt(F))."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rng: np.random.Generator,
        dtype,
        bias: bool = True,
        zero_bias: bool = True,
    ):
        super().__init__()
        k = 1.0 / np.sqrt(n_in)
        self.add_param("weight", rng.uniform(-k, k, (n_out, n_in)).astype(dtype))
        if bias:
            b = np.zeros(n_out, dtype) if zero_bias else rng.uniform(-k, k, n_out).astype(dtype)
            self.add_param("bias", b)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return linear_forward(x, self.weight, self._params.get("bias"))

    def backward(self, x: np.ndarray, dout: np.ndarray) -> np.ndarray:
        dx, dW, db = linear_backward(x, self.weight, dout, "bias" in self._params)
        self.grads["weight"] = dW
        if db is not None:
            self.grads["bias"] = db
        return dx
