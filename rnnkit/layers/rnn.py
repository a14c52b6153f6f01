"""The Elman recurrent layer (Deep Learning book 10.8-10.9), PyTorch ``nn.RNN`` compatible::

    a(t) = b + W h(t-1) + U x(t)    (10.8)   b = bias_ih + bias_hh, W = weight_hh, U = weight_ih
    h(t) = tanh(a(t))  (or relu)    (10.9)

BPTT for the layer alone (the output layer and softmax live in the model, 10.10-10.11)::

    dL/dh(t) = dL/dy(t) + W^T diag(1 - h(t+1)^2) dL/dh(t+1)     (10.20-10.21)
    dL/da(t) = diag(1 - h(t)^2) dL/dh(t)                       (tanh' = 1 - tanh^2)
    dL/dW = sum_t dL/da(t) h(t-1)^T,  dL/dU = sum_t dL/da(t) x(t)^T,  dL/db = sum_t dL/da(t)
                                                               (10.22, 10.26-10.28)

The time loop and the stacked-step weight gradients are shared with the LSTM and GRU in
``recurrent.py``; this file holds only what is Elman-specific: ``ElmanCell.step`` and
``ElmanCell.step_back`` compute the equations above on the cell protocol, and ``ElmanSteps`` runs
the same steps fused -- three NumPy calls per step forward (one GEMM, one add, one tanh) and two
backward (multiply, GEMM; the shared loop adds one per backward step for dL/dy(t), as for every
cell: see ``docs/performance.md``).
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from .base import RecurrentLayer
from .cell import Cell
from .steps import Steps


class ElmanCell(Cell):
    """h(t) = act(a(t)), a(t) = U x(t) + b_ih + W h(t-1) + b_hh  (10.8, 10.9).

    ``step`` / ``step_back`` are the reference; :class:`ElmanSteps` runs the same steps fused."""

    gates = 1
    n_states = 1

    def __init__(self, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise RnnkitError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def step(self, w, xp, state, rec):
        a = xp + rec(state[0])  # a(t) = b + W h(t-1) + U x(t)                   (10.8)
        h = np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0.0)  # (10.9)
        return (h,), h

    def step_back(self, w, dstate, saved, rec, dw):
        h = saved
        da = dstate[0] * (1.0 - h * h if self.nonlinearity == "tanh" else h > 0)  # diag(act')
        return da, (rec.back(da),)  # dL/dh(t-1) = W^T dL/da(t)                  (10.21)

    def __repr__(self) -> str:
        return f"ElmanCell({self.nonlinearity!r})"


class ElmanSteps(Steps):
    """The Elman steps fused: the projection goes into the state array itself (step t turns
    xp(t) into h(t) in place), b = b_ih + b_hh is added once for all steps, and act'(a(t)) is
    formed for all steps before the reverse loop, in the array that receives dL/da(t)."""

    xp_in_state = True
    bias_hh_rows = slice(None)
    hh_rows = None  # dL/d(recurrent product) = dL/da: one array

    def __init__(self, cell, w, rw, S):
        super().__init__(cell, w, rw, S)
        self.hw = np.empty((self.B, self.H), self.dtype)  # W h(t-1) of one step
        self.tanh = cell.nonlinearity == "tanh"
        self.dact = np.empty(0, self.dtype)

    def forward(self, t, xp_t, prev, new):
        h = new[0]
        np.matmul(prev[0], self.rw.WT, out=self.hw)  # W h(t-1)
        np.add(xp_t, self.hw, out=h)  # + U x(t) + b          (10.8)  (xp_t may be h itself)
        if self.tanh:
            np.tanh(h, out=h)  # (10.9)
        else:
            np.maximum(h, 0.0, out=h)

    def begin_backward(self, lead, retain):
        Hs = self.S[0][1:]
        d = self.dact = np.empty_like(Hs)
        if self.tanh:
            np.multiply(Hs, Hs, out=d)
            np.subtract(1.0, d, out=d)  # 1 - h^2
        else:
            np.greater(Hs, 0, out=d)
        return d, d

    def backward(self, t, dnew, dgi, dgh):
        np.multiply(dnew[0], self.dact[t], out=dgi)  # dL/da(t) = diag(act'(a(t))) dL/dh(t)
        return (dgi @ self.rw.W,)  # dL/dh(t-1) through W (10.21)

    def groups(self):
        return [(slice(None), self.S[0][:-1], None)]


ElmanCell.steps_class = ElmanSteps


class RNN(RecurrentLayer):
    """Elman RNN layer with PyTorch ``nn.RNN``'s parameters and semantics.

    Parameters per layer k (and ``_reverse`` for the backward direction): ``weight_ih_l{k}``
    (H, I_k), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}`` (H,), ``bias_hh_l{k}`` (H,), initialised
    U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

    >>> rnn = RNN(3, 5, seed=0)
    >>> y, h_n = rnn.forward(np.zeros((7, 2, 3), np.float32))  # y (7, 2, 5), h_n (1, 2, 5)
    >>> dx, dh0 = rnn.backward(np.ones_like(y))                 # fills rnn.grads
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge: str = "concat",
        seed: int | None = None,
        dtype: str = "float32",
        bptt_truncate: int | None = None,
    ):
        super().__init__(
            ElmanCell(nonlinearity),
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
        self.nonlinearity = nonlinearity
