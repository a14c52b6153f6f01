"""Run a recurrent cell one step at a time (sampling, greedy decoding), doing no work twice.

Everything that does not change between steps is computed once when the stepper is made: the
cell's derived weights (``cell.prepare``), its buffers, and -- for token inputs -- the table of
input projections of every token, P = E W_ih^T + b (V, G*H), so one step is a row gather, the
cell's step (one GEMM plus elementwise work) and nothing else.
"""

from __future__ import annotations

import numpy as np

from .base import RecurrentLayer


class Stepper:
    """Incremental forward of ``layer`` for B parallel sequences.

    stepper = Stepper(layer, B, embedding=E)   # E (V, I): inputs are token ids
    h = stepper.step(ids)                      # ids (B,) -> h(t) (B, H); state kept inside
    """

    def __init__(self, layer: RecurrentLayer, batch: int, embedding: np.ndarray | None = None,
                 state0: tuple | None = None):
        p, cell, H = layer.params, layer.cell, layer.hidden_size
        self.cell, self.H = cell, H
        W_ih = p["weight_ih_l0"]
        bias = np.zeros(W_ih.shape[0], layer.dtype)
        if "bias_ih_l0" in p:
            bias += p["bias_ih_l0"]
            if cell.bias_hh_in_xp is not None:
                bias[cell.bias_hh_in_xp] += p["bias_hh_l0"][cell.bias_hh_in_xp]
        self.bias, self.W_ihT = bias, np.ascontiguousarray(W_ih.T)
        # token inputs: the projection of every token at once, a (V, G*H) table
        self.table = None if embedding is None else embedding @ self.W_ihT + bias
        self.buf = cell.prepare(p, 1, batch, H, layer.dtype)
        # ping-pong state buffers (2, B, H) per state: step t reads one and writes the other
        self.S = tuple(np.zeros((2, batch, H), layer.dtype) for _ in range(cell.n_states))
        if state0 is not None:
            for s, s0 in zip(self.S, state0):
                s[0] = s0
        self.cur = 0

    @property
    def state(self) -> tuple:
        return tuple(s[self.cur] for s in self.S)

    def step(self, x: np.ndarray) -> np.ndarray:
        """x: (B,) token ids (with an embedding) or (B, I) features. Returns h(t) (B, H)."""
        xp = self.table[x] if self.table is not None else x @ self.W_ihT + self.bias
        a, b = self.cur, 1 - self.cur
        self.cell.step(self.buf, 0, xp, tuple(s[a] for s in self.S), tuple(s[b] for s in self.S))
        self.cur = b
        return self.S[0][b]
