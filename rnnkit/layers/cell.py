"""The cell protocol: what a recurrent cell says, and nothing else.

A cell describes ONE time step, forward and back. The shared time loop (``recurrent.py``) owns
everything around it: the input projection of all steps in one product, the recurrent product
h(t-1) W_hh^T of each step, masks for ragged batches, truncated BPTT, output buffers, every weight
gradient as one product over the stacked steps, and the parameter names. Writing a cell means:

    class MinimalRNNCell(Cell):
        gates = 1                      # G: the engine projects to G*H pre-activation rows
        n_states = 1                   # (h,) -- 2 for (h, c)
        saved = {}                     # per-step arrays to keep for BPTT: name -> width in H's

        def step(self, w, xp, hh, prev, new, ctx):
            # xp = W_ih x(t) + b_ih (B, G*H); hh = W_hh h(t-1) + b_hh (B, G*H); write new states
            np.tanh(xp + hh, out=new[0])

        def step_back(self, w, dnew, ctx, prev, new, dxp, dhh, dw):
            # dnew: gradients of the new states (.., B, H); write dL/dxp into dxp (.., B, G*H);
            # dhh is dxp unless separate_hh_grad; return the gradients of prev that do NOT pass
            # through hh (the engine adds dhh W_hh to the first one itself)
            np.multiply(dnew[0], 1.0 - new[0] ** 2, out=dxp)
            return (None,)               # None: no direct path from h(t-1) to h(t)

``docs/adding-a-cell.md`` walks through a complete example. The leading ``..`` of the gradient
arrays is empty in full BPTT and ``(k+1,)`` in truncated BPTT (the gradients "in flight" stacked
as slots), so write ``step_back`` with broadcasting elementwise operations and it serves both.

Optional, per cell:

* ``own_params(input_size, hidden_size) -> {name: shape}``: parameters of the cell's own (a learned
  time constant, a deep-transition MLP); they arrive in ``w`` under those names, and ``step_back``
  ADDS their gradients into ``dw[name]`` (sum over the leading axes, e.g. ``sum_rows``).
  ``init_own(name, shape, rng, dtype)`` initialises them (default: U(-1/sqrt(H), 1/sqrt(H))).
* ``separate_hh_grad = True`` when the recurrent pre-activation's gradient differs from the input
  one's (e.g. a reset gate multiplying hh): then ``dhh`` is an array of its own to fill.
* ``uses_recurrent_weight = False`` for a cell with no W_hh at all.

The engine-level hooks below (``derive``, ``prepare``, ``run_step``, ``begin_backward``,
``run_step_back``, ``end_backward``) have generic implementations in terms of ``step`` and
``step_back``. The built-in cells (Elman, LSTM, GRU) override them for speed and memory -- fusing
the recurrent product into the cell, overwriting the cache with gradients -- and may set the
engine's flags (``keeps_xp``, ``xp_in_state``, ``bias_hh_in_xp``, ``hh_grad_rows``); a new cell
needs none of that.
"""

from __future__ import annotations

import numpy as np


def sum_rows(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but the last: (.., B, H) -> (H,), for a per-unit parameter's gradient."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


class Cell:
    """Base class of every recurrent cell; see the module docstring for what to define."""

    gates: int = 1
    n_states: int = 1
    saved: dict = {}
    separate_hh_grad: bool = False
    uses_recurrent_weight: bool = True

    # engine flags: speed/memory hooks of the built-in cells (off for a new cell)
    bias_hh_in_xp: slice | None = None  # rows of b_hh folded into the input projection
    hh_grad_rows: slice | None = None  # rows with a recurrent-side gradient of their own
    keeps_xp = False  # the input projection stays in buf["xp"], and step t may overwrite it
    xp_in_state = False  # G = 1: the projection is computed into the states themselves

    # -- what a cell author writes -------------------------------------------------------------
    def step(
        self, w: dict, xp: np.ndarray, hh: np.ndarray, prev: tuple, new: tuple, ctx: dict
    ) -> None:
        """Write the states of step t into ``new`` (each (B, H)) from xp = W_ih x(t) + b_ih and
        hh = W_hh h(t-1) + b_hh (each (B, G*H)) and ``prev`` (each (B, H)); ``ctx`` holds the
        (B, width*H) slice t of each ``saved`` array, to fill with what the backward needs."""
        raise NotImplementedError

    def step_back(
        self,
        w: dict,
        dnew: tuple,
        ctx: dict,
        prev: tuple,
        new: tuple,
        dxp: np.ndarray,
        dhh: np.ndarray,
        dw: dict,
    ) -> tuple:
        """Given dnew = dL/d(new states) (each (.., B, H)), write dL/dxp into ``dxp``
        (.., B, G*H) (and dL/dhh into ``dhh`` when ``separate_hh_grad``; otherwise it is dxp),
        add own-parameter gradients into ``dw``, and return dL/d(prev states) along the paths
        that do not go through hh (None for none)."""
        raise NotImplementedError

    def own_params(self, input_size: int, hidden_size: int) -> dict:
        """{name: shape} of parameters of the cell's own (none by default)."""
        return {}

    def init_own(self, name: str, shape: tuple, rng: np.random.Generator, dtype) -> np.ndarray:
        """Initial value of an own parameter: U(-1/sqrt(H), 1/sqrt(H)) like the weights."""
        k = 1.0 / np.sqrt(shape[-1] if shape else 1)
        return rng.uniform(-k, k, shape).astype(dtype)

    def hh_rows(self, H: int) -> slice | None:
        """The rows with a recurrent-side gradient of their own (None: dhh is dxp)."""
        if self.separate_hh_grad:
            return slice(0, self.gates * H)
        return self.hh_grad_rows

    # -- engine hooks (generic versions; built-in cells override them) ---------------------------
    def derive(self, w: dict, H: int, dtype) -> dict:
        """Weights derived once per sequence (transposes, constants): the start of ``buf``."""
        d: dict = {"w": w}
        if self.uses_recurrent_weight:
            d["W"] = w["w_hh"]
            d["WT"] = np.ascontiguousarray(w["w_hh"].T)
        d["b_hh"] = w.get("b_hh")
        return d

    def prepare(self, d: dict, T: int, B: int, H: int, dtype) -> dict:
        """Buffers of one forward pass over T steps (``buf``): scratch and the saved arrays."""
        buf = dict(d)
        buf["hh"] = np.zeros((B, self.gates * H), dtype)
        buf["ctx"] = {n: np.empty((T, B, int(k) * H), dtype) for n, k in self.saved.items()}
        return buf

    def _ctx(self, buf: dict, t: int) -> dict:
        return {n: a[t] for n, a in buf["ctx"].items()}

    def run_step(self, buf: dict, t: int, xp_t: np.ndarray, prev: tuple, new: tuple) -> None:
        hh = buf["hh"]
        if self.uses_recurrent_weight:
            np.matmul(prev[0], buf["WT"], out=hh)
            if buf["b_hh"] is not None:
                hh += buf["b_hh"]
        self.step(buf["w"], xp_t, hh, prev, new, self._ctx(buf, t))

    def begin_backward(self, buf: dict, S: tuple, lead: tuple, retain: bool) -> dict:
        """Work before the reverse sweep; returns ``wb``, passed to every backward step."""
        own = [n for n in buf["w"] if n not in ("w_ih", "w_hh", "b_ih", "b_hh")]
        return {"dw": {n: np.zeros_like(buf["w"][n]) for n in own}}

    def run_step_back(
        self, buf: dict, wb: dict, t: int, S: tuple, dS: tuple, dgi: np.ndarray, dgh: np.ndarray
    ) -> tuple:
        prev = tuple(s[t] for s in S)
        new = tuple(s[t + 1] for s in S)
        back = self.step_back(buf["w"], dS, self._ctx(buf, t), prev, new, dgi, dgh, wb["dw"])
        out = []
        for k, d in enumerate(back):
            shape = dS[k].shape
            if d is None:
                d = np.zeros(shape, dS[k].dtype)
            elif d.shape != shape or d is dS[k]:
                d = np.array(np.broadcast_to(d, shape))
            out.append(d)
        if self.uses_recurrent_weight:  # dL/dh(t-1) += dhh W_hh   (10.21)
            out[0] += (dgh.reshape(-1, dgh.shape[-1]) @ buf["W"]).reshape(out[0].shape)
        return tuple(out)

    def end_backward(self, buf: dict, wb: dict) -> dict:
        """Gradients of the cell's own parameters after the sweep, keyed like ``own_params``."""
        return wb.get("dw", {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
