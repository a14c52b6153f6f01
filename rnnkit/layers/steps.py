"""Running a cell over one pass of T steps: what the time loop (``recurrent.py``) calls.

:class:`Steps` runs any cell through its ``step`` / ``step_back`` (``cell.py``) and owns the
recurrent product: the ``rec`` it hands the cell computes v W_hh^T + b_hh, keeps every input v
that is not h(t-1) (a gated ``f * h(t-1)``) and every gradient dz, so that dW_hh and db_hh are
products over the stacked steps (:func:`rnnkit.layers.recurrent.weight_grads`).

A cell may name a faster subclass in ``Cell.steps_class`` (the built-in Elman, LSTM and GRU cells
do). It runs the same steps with the same inputs and outputs; it only decides where the arrays
live (buffers made once per pass, the gate activations written over the input projection, step
gradients written over the cache when the backward consumes it) and may use numba kernels.
The methods, in the order the loop calls them:

* ``projection()``: the (T, B, G*H) array that receives W_ih x(t) + b_ih (+ the ``bias_hh_rows``
  of b_hh, folded in once for all steps; without b_ih when the runner ``adds_bias_ih`` in its
  fused step, which saves a pass over the whole projection);
* ``forward(t, xp_t, prev, new)``: step t, writing the new states into ``new`` (each (B, H));
* ``begin_backward(lead, retain)`` -> (dgi_all, dgh_all): the arrays that receive each step's
  dL/dxp (T, B, G*H) and dL/d(recurrent product) on the rows ``hh_rows`` (or dgi_all itself when
  the two are equal); ``lead`` is () in full BPTT and (k+1,) in truncated BPTT;
* ``backward(t, dnew, dgi, dgh)`` -> dL/d(previous state) in full, writing dgi and dgh of step t;
* ``groups()`` -> [(rows, V, dZ)]: the inputs V (T, B, H) that each block of W_hh's rows
  multiplied and their gradients dZ (None: those of the input side); ``own_grads()``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import RnnkitError
from .cell import Cell, State

Group = tuple  # (rows: slice, V: (T, B, H) inputs of those rows, dZ: (T, B, rows) or None)


@dataclass
class RecurrentWeights:
    """W_hh (G*H, H), its transpose and b_hh: made once per pass (or once per StepFunction)."""

    W: np.ndarray | None
    WT: np.ndarray | None
    b: np.ndarray | None

    @classmethod
    def of(cls, w: dict) -> RecurrentWeights:
        W = w.get("w_hh")
        return cls(W, None if W is None else np.ascontiguousarray(W.T), w.get("b_hh"))


class _Rec:
    """``rec`` of the generic runner: the recurrent product of the current step, both ways.

    It holds its runner by a weak reference: a strong one would make a cycle (runner -> rec ->
    runner) that keeps each pass's cache alive until the garbage collector runs, so that every
    forward pass would write into fresh memory (page faults: the LSTM at (50, 32, 256, 512) ran
    its input projection 2x slower)."""

    def __init__(self, steps: Steps):
        self.s = weakref.proxy(steps)

    def _rows(self, block: int | None) -> slice:
        if self.s.rw.W is None:
            raise RnnkitError(f"{self.s.cell!r} has no recurrent weight (uses_recurrent_weight)")
        if block is None:
            return slice(None)
        if not 0 <= block < self.s.cell.gates:
            raise RnnkitError(f"gate block {block} out of range [0, {self.s.cell.gates})")
        H = self.s.H
        return slice(block * H, (block + 1) * H)

    def __call__(self, v: np.ndarray, block: int | None = None) -> np.ndarray:
        s, rows = self.s, self._rows(block)
        if v is not s.h_prev:  # a gated input: kept for dW_hh of these rows
            if block not in s.inputs:
                s.inputs[block] = np.zeros((s.T, s.B, s.H), s.dtype)
            s.inputs[block][s.t] = v
        WT = s.rw.WT
        assert WT is not None  # (checked by _rows)
        if block is None:  # all rows: no slicing
            out = v @ WT
            if s.rw.b is not None:
                out += s.rw.b
            return out
        out = v @ WT[:, rows]
        if s.rw.b is not None:
            out += s.rw.b[rows]
        return out

    def back(self, dz: np.ndarray, block: int | None = None) -> np.ndarray:
        rows, W = self._rows(block), self.s.rw.W
        assert W is not None  # (checked by _rows)
        self.s.dgh[..., rows] = dz
        return dz @ W[rows]


class Steps:
    """The generic runner: a cell's ``step`` / ``step_back`` over one pass (see the module)."""

    xp_in_state = False  # G = 1 only: the projection is written into S[0][1:] itself
    bias_hh_rows: slice | None = None  # rows of b_hh folded into the projection
    adds_bias_ih = False  # the runner adds b_ih inside its step: the loop does not
    hh_rows: slice | None = slice(None)  # rows of dgh_all (None: dgh_all is dgi_all)

    def __init__(self, cell: Cell, w: dict, rw: RecurrentWeights, S: tuple):
        self.cell, self.w, self.rw, self.S = cell, w, rw, S
        self.T, self.B, self.H = S[0].shape[0] - 1, S[0].shape[1], S[0].shape[2]
        self.dtype, self.GH = S[0].dtype, cell.gates * self.H
        self.saved: list = [None] * self.T
        self.inputs: dict = {}  # block -> (T, B, H) gated inputs of those rows
        self.rec, self.t = _Rec(self), 0
        self.h_prev: np.ndarray | None = None
        self.dgh = self.dgh_all = np.empty(0, self.dtype)  # set by the backward
        self.dw: dict = {}

    def projection(self) -> np.ndarray:
        if self.xp_in_state:
            return self.S[0][1:]
        return np.empty((self.T, self.B, self.GH), self.dtype)

    def forward(self, t: int, xp_t: np.ndarray, prev: State, new: State) -> None:
        self.t, self.h_prev = t, prev[0]
        state, saved = self.cell.step(self.w, xp_t, prev, self.rec)
        if len(state) != len(new):
            raise RnnkitError(f"{self.cell!r}.step returned {len(state)} states, not {len(new)}")
        for n, s in zip(new, state):
            if s is not n:
                np.copyto(n, s)
        self.saved[t] = saved

    def begin_backward(self, lead: tuple, retain: bool) -> tuple:
        shape = (self.T, self.B, self.GH)
        self.dgh_all = np.empty(shape, self.dtype)
        own = [n for n in self.w if n not in ("w_ih", "w_hh", "b_ih", "b_hh")]
        self.dw = {n: np.zeros_like(self.w[n]) for n in own}
        return np.empty(shape, self.dtype), self.dgh_all

    def backward(self, t: int, dnew: State, dgi: np.ndarray, dgh: np.ndarray) -> State:
        self.t, self.dgh = t, dgh
        dgh[...] = 0.0  # rows the cell's rec.back does not reach have no gradient
        dxp, dprev = self.cell.step_back(self.w, dnew, self.saved[t], self.rec, self.dw)
        np.copyto(dgi, dxp)
        if len(dprev) != len(dnew):
            raise RnnkitError(f"{self.cell!r}.step_back returned {len(dprev)} state gradients")
        out = []
        for d, dn in zip(dprev, dnew):
            if d is None:
                d = np.zeros(dn.shape, dn.dtype)
            elif d.shape != dn.shape or np.may_share_memory(d, dn):
                d = np.array(np.broadcast_to(d, dn.shape))  # the loop updates it in place
            out.append(d)
        return tuple(out)

    def groups(self) -> list:
        """Blocks of W_hh's rows by the inputs they multiplied: h(t-1) or a gated input."""
        if self.rw.W is None:
            return []
        h_prev, H = self.S[0][:-1], self.H
        out: list = []
        for j in range(self.cell.gates):
            V = self.inputs.get(j, self.inputs.get(None, h_prev))
            if out and out[-1][1] is V:
                out[-1] = (slice(out[-1][0].start, (j + 1) * H), V)
            else:
                out.append((slice(j * H, (j + 1) * H), V))
        return [(rows, V, self.dgh_all[..., rows]) for rows, V in out]

    def own_grads(self) -> dict:
        return self.dw
