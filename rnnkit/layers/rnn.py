"""The Elman recurrent layer (Deep Learning book 10.8-10.9), PyTorch ``nn.RNN`` compatible.

    a(t) = b + W h(t-1) + U x(t)         (10.8)   b = bias_ih + bias_hh, W = weight_hh, U = weight_ih
    h(t) = tanh(a(t))  (or relu)         (10.9)

BPTT for the layer alone (the output layer and softmax live in the model, 10.10-10.11):

    dL/dh(t) = dL/dy(t) + W^T diag(1 - h(t+1)^2) dL/dh(t+1)     (10.20-10.21)
    dL/da(t) = diag(1 - h(t)^2) dL/dh(t)                       (tanh' = 1 - tanh^2)
    dL/dW = sum_t dL/da(t) h(t-1)^T,  dL/dU = sum_t dL/da(t) x(t)^T,  dL/db = sum_t dL/da(t)
                                                               (10.22, 10.26-10.28)

The time loop and the stacked-step weight gradients are shared with the LSTM and GRU in
``recurrent.py``; this file holds only what is Elman-specific: three NumPy calls per step forward
(one GEMM, one add, one tanh) and three backward (add, multiply, GEMM).
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from .base import RecurrentLayer
from .recurrent import Cell


class ElmanCell(Cell):
    """h(t) = act(xp(t) + h(t-1) W^T) with xp(t) = U x(t) + b precomputed for all steps."""

    gates = 1
    n_states = 1

    def __init__(self, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise RnnkitError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def prepare(self, params, T, B, H, dtype):
        W = params["weight_hh_l0"]
        return {"W": W, "WT": np.ascontiguousarray(W.T)}

    def step(self, buf, t, xp_t, prev, new):
        h = new[0]
        np.matmul(prev[0], buf["WT"], out=h)  # W h(t-1)
        h += xp_t  # + U x(t) + b           (10.8)
        if self.nonlinearity == "tanh":
            np.tanh(h, out=h)  # (10.9)
        else:
            np.maximum(h, 0.0, out=h)

    def begin_backward(self, buf, S, lead):
        Hs = S[0][1:]
        if self.nonlinearity == "tanh":  # act'(a(t)) for all steps at once
            d = 1.0 - Hs * Hs
        else:
            d = (Hs > 0).astype(Hs.dtype)
        return {"dact": d}

    def step_back(self, buf, wb, t, S, dS, dgi, dgh):
        np.multiply(dS[0], wb["dact"][t], out=dgi)  # dL/da(t) = diag(act'(a(t))) dL/dh(t)
        return (dgi @ buf["W"],)  # dL/dh(t-1) through W (10.21)


class RNN(RecurrentLayer):
    """Elman RNN layer with PyTorch ``nn.RNN``'s parameters (one layer, one direction).

    Parameters: ``weight_ih_l0`` (H, I), ``weight_hh_l0`` (H, H), ``bias_ih_l0`` (H,),
    ``bias_hh_l0`` (H,), initialised U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

    >>> rnn = RNN(3, 5, seed=0)
    >>> y, h_n = rnn.forward(np.zeros((7, 2, 3), np.float32))  # y (7, 2, 5), h_n (1, 2, 5)
    >>> dx, dh0 = rnn.backward(np.ones_like(y))                 # fills rnn.grads
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh",
                 bias: bool = True, seed: int | None = None, dtype: str = "float32",
                 bptt_truncate: int | None = None):
        super().__init__(ElmanCell(nonlinearity), input_size, hidden_size, bias=bias, seed=seed,
                         dtype=dtype, bptt_truncate=bptt_truncate)
        self.nonlinearity = nonlinearity
