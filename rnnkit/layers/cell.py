"""The cell protocol: one time step forward and back, and nothing else.

A cell says how ONE step maps the input projection and the previous state to the next state, and
how that step's gradient goes back. The shared time loop (``recurrent.py``) owns everything around
it: the input projection of all steps in one product, the recurrent product with W_hh, masks for
ragged batches, truncated BPTT, every weight gradient as one product over the stacked steps, and
the parameter names. Keras calls the same thing ``call(inputs, states) -> (output, states)``::

    class MinimalRNNCell(Cell):
        gates = 1                                    # G: W_ih, W_hh, b_ih, b_hh have G*H rows

        def step(self, w, xp, state, rec):           # xp = W_ih x(t) + b_ih  (B, G*H)
            h = np.tanh(xp + rec(state[0]))          # rec(v) = v W_hh^T + b_hh
            return (h,), h                           # new state, what the backward needs

        def step_back(self, w, dstate, saved, rec, dw):
            da = dstate[0] * (1.0 - saved * saved)   # dL/d(pre-activation)
            return da, (rec.back(da),)               # dL/dxp, dL/d(previous state)

The five concepts:

* ``gates`` (G) and ``n_states`` (1 for (h,), 2 for (h, c)): the sizes;
* ``step(w, xp, state, rec) -> (new_state, saved)``: ``state`` a tuple of (B, H) arrays;
  ``saved`` is the cell's typed record of this step (a NamedTuple, or one array) handed back to
  ``step_back``;
* ``step_back(w, dstate, saved, rec, dw) -> (dxp, dprev)``: ``dstate`` = dL/d(new state); return
  dL/dxp (.., B, G*H) and dL/d(previous state) (a tuple; None for an entry with no gradient);
* ``rec``, the engine's recurrent product: ``rec(v)`` = v W_hh^T + b_hh on all G*H rows and
  ``rec(v, block=j)`` on gate block j's H rows only, v being whatever that block multiplies --
  ``state[0]`` = h(t-1), or a gated ``f * h(t-1)``. In ``step_back``, ``rec.back(dz)`` /
  ``rec.back(dz, block=j)`` takes dL/d(that product) and returns dL/dv; the engine keeps dz and v
  and forms dW_hh and db_hh from them (one product over all steps), so no row of W_hh is dead.
  Each block is used at most once per step, in the same way at every step;
* ``w``: the layer's weights of this (layer, direction) by neutral name (``w_ih``, ``w_hh``,
  ``b_ih``, ``b_hh``) plus the cell's own parameters.

Optional: ``own_params(input_size, hidden_size) -> {name: shape}`` for parameters of the cell's
own (they arrive in ``w``; ``step_back`` ADDS their gradients into ``dw[name]``, summing over the
leading axes, e.g. with ``sum_rows``), ``init_own`` to initialise them, and
``uses_recurrent_weight = False`` for a cell without W_hh.

The gradients in ``step_back`` (``dstate``, ``dxp``) carry a leading slot axis in truncated BPTT
((k+1, B, H): the gradients in flight, stacked); the saved record does not. Elementwise NumPy with
broadcasting serves both.

Speed, optional: ``steps_class``, a subclass of :class:`rnnkit.layers.steps.Steps` that runs the
same steps with the same inputs and outputs, fused (buffers made once per pass, numba kernels,
gradients written over the cache). The built-in Elman, LSTM and GRU cells have one; their ``step``
and ``step_back`` remain the reference, and the conformance suite checks that both agree.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

State = tuple  # of (B, H) arrays (gradients: (.., B, H)), one per state


class Recurrent(Protocol):
    """The engine's recurrent product of one step (``rec`` in ``step`` / ``step_back``)."""

    def __call__(self, v: np.ndarray, block: int | None = None) -> np.ndarray:
        """v W_hh^T + b_hh on all rows (block None) or on the H rows of gate block ``block``."""
        ...

    def back(self, dz: np.ndarray, block: int | None = None) -> np.ndarray:
        """dL/dv from dz = dL/d(the product): dz W_hh (on the same rows)."""
        ...


def sum_rows(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but the last: (.., B, H) -> (H,), for a per-unit parameter's gradient."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


class Cell:
    """Base class of every recurrent cell; see the module docstring for what to define."""

    gates: int = 1
    n_states: int = 1
    uses_recurrent_weight: bool = True
    steps_class: type | None = None  # optional fused runner (rnnkit.layers.steps.Steps)

    def step(self, w: dict, xp: np.ndarray, state: State, rec: Recurrent) -> tuple[State, Any]:
        """One step forward: (new state, the record ``step_back`` gets)."""
        raise NotImplementedError

    def step_back(
        self, w: dict, dstate: State, saved: Any, rec: Recurrent, dw: dict
    ) -> tuple[np.ndarray, State]:
        """One step back: (dL/dxp, dL/d(previous state)); own-parameter gradients go into dw."""
        raise NotImplementedError

    def own_params(self, input_size: int, hidden_size: int) -> dict:
        """{name: shape} of parameters of the cell's own (none by default)."""
        return {}

    def init_own(self, name: str, shape: tuple, rng: np.random.Generator, dtype) -> np.ndarray:
        """Initial value of an own parameter: U(-1/sqrt(H), 1/sqrt(H)) like the weights."""
        k = 1.0 / np.sqrt(shape[-1] if shape else 1)
        return rng.uniform(-k, k, shape).astype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
