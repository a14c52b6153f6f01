"""Cells for several time scales (Deep Learning book 10.9) on the plain cell protocol (cell.py).

* ``leaky-fixed`` -- leaky units (10.9.2) with FIXED time constants, no parameter of their own::

      h(t) = (1 - 1/tau_i) h(t-1) + (1/tau_i) tanh(a(t))
      a(t) = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh

  tau_i = tau_min (tau_max / tau_min)^(i / (H - 1)), i = 0..H-1: log-uniformly spaced over
  [tau_min, tau_max] (``np.geomspace``), a function of H alone, so nothing is stored or trained.
  (``leaky`` in ``extra_cells.py`` learns tau = 1 + exp(rho) instead.)
* ``skip`` -- skip connections through time (10.9.1): h(t) reads h(t-d) for every delay d in
  ``delays`` (default 1, 2, 4, 8)::

      h(t) = tanh(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh + sum_{d > 1} W_d h(t-d))

  W_hh is the engine's; each W_d (H, H) is a parameter of the cell's own, ``weight_hh_skip{d}``.
  The states are a delay line, n_states = max delay D: (h(t), h(t-1), ..., h(t-D+1)); the
  layer's output is h(t) (state 0). A gradient reaches h(t-d) in one step instead of d.
* ``clockwork`` -- removing connections (10.9.3) as in the clockwork RNN (Koutnik et al. 2014):
  the units are split into groups (``np.array_split`` order) with periods P_g (default 1, 2, 4,
  8, 16, 32); a unit of period P updates only at steps t with t mod P = 0 and keeps its value
  otherwise::

      u(t) = tanh(a(t)),   h_i(t) = u_i(t) if n(t-1) mod P_i = 0 else h_i(t-1)

  so a unit of period P has no connection from step t-1 at the other steps: its state spans P
  steps in one. The step count n is the second state (the same value in every unit, counting
  0, 1, 2, ... from the zero initial state and wrapping at lcm(P)); it has no gradient. All
  groups read all groups (Koutnik et al.'s block-triangular W_hh, slow groups not reading fast
  ones, is not imposed).

Padded steps of a ragged batch copy every state through, the delay line and the counter
included, so a padded sequence gives what it gives alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import RnnkitError
from .cell import Cell


def _int_list(name: str, values) -> tuple[int, ...]:
    """(1, 2, 4) from a sequence of integers or a string "1,2,4"; sorted, without repeats."""
    if isinstance(values, str):
        values = [v for v in values.replace(" ", "").split(",") if v]
    try:
        out = sorted({int(v) for v in values if not isinstance(v, (bool, float))})
        ok = len(out) == len(set(map(str, values))) and out[0] >= 1
    except (TypeError, ValueError, IndexError):
        ok = False
    if not ok:
        raise RnnkitError(f"{name} must be one or more integers >= 1 (e.g. 1,2,4), got {values!r}")
    return tuple(out)


class LeakySaved(NamedTuple):
    """What one leaky step keeps (each (B, H))."""

    u: np.ndarray  # tanh(a(t))
    h_prev: np.ndarray


class FixedLeakyCell(Cell):
    """Leaky units (10.9.2), fixed time constants log-uniformly spaced over [tau_min, tau_max]."""

    gates, n_states = 1, 1

    def __init__(self, hidden_size: int, tau_min: float = 1.0, tau_max: float = 100.0):
        if not (math.isfinite(tau_min) and math.isfinite(tau_max) and 1.0 <= tau_min <= tau_max):
            raise RnnkitError(
                f"time constants need 1 <= tau_min <= tau_max, got {tau_min}, {tau_max}"
            )
        self.tau = np.geomspace(tau_min, tau_max, hidden_size)  # (H,)
        self._alpha: dict[np.dtype, np.ndarray] = {}  # dtype -> 1 / tau in that dtype

    def alpha(self, dtype) -> np.ndarray:
        """1 / tau (H,) in ``dtype``."""
        a = self._alpha.get(np.dtype(dtype))
        if a is None:
            a = self._alpha[np.dtype(dtype)] = (1.0 / self.tau).astype(dtype)
        return a

    def step(self, w, xp, state, rec):
        h = state[0]
        a, u = self.alpha(h.dtype), np.tanh(xp + rec(h))
        return (h + (u - h) * a,), LeakySaved(u, h)  # h(t) = h(t-1) + (u - h(t-1)) / tau

    def step_back(self, w, dstate, saved, rec, dw):
        dh, u = dstate[0], saved.u
        a = self.alpha(dh.dtype)
        da = dh * (a * (1.0 - u * u))  # dL/da = dh / tau * (1 - u^2)
        return da, (dh * (1.0 - a) + rec.back(da),)

    def __repr__(self) -> str:
        return f"FixedLeakyCell(tau {self.tau[0]:g}..{self.tau[-1]:g})"


class SkipSaved(NamedTuple):
    """What one skip step keeps: h(t) (B, H) and the delay line it read."""

    h: np.ndarray
    prev: tuple


class SkipCell(Cell):
    """Elman units that also read h(t-d) for each delay d (10.9.1); states = the delay line."""

    gates = 1

    def __init__(self, delays=(1, 2, 4, 8)):
        self.delays = _int_list("delays", delays)
        self.skips = tuple(d for d in self.delays if d > 1)  # d = 1 is the engine's W_hh
        self.n_states = max(self.delays)

    def own_params(self, input_size, hidden_size):
        return {f"weight_hh_skip{d}": (hidden_size, hidden_size) for d in self.skips}

    def step(self, w, xp, state, rec):
        a = xp + rec(state[0])
        for d in self.skips:  # + W_d h(t-d); state[j] = h(t-1-j)
            a += state[d - 1] @ w[f"weight_hh_skip{d}"].T
        h = np.tanh(a)
        return (h,) + tuple(state[:-1]), SkipSaved(h, state)  # the delay line shifts

    def step_back(self, w, dstate, saved, rec, dw):
        h, prev = saved
        da = dstate[0] * (1.0 - h * h)  # dL/da(t)
        back = [*dstate[1:], None]  # the shift: new[j] = prev[j-1]

        def add(k, g):
            back[k] = g if back[k] is None else back[k] + g

        add(0, rec.back(da))
        if self.skips:
            da2 = da.reshape(-1, *da.shape[-2:]).sum(axis=0)  # over truncation slots
        for d in self.skips:
            add(d - 1, da @ w[f"weight_hh_skip{d}"])  # dL/dh(t-d) through W_d
            dw[f"weight_hh_skip{d}"] += da2.T @ prev[d - 1]
        return da, tuple(back)

    def __repr__(self) -> str:
        return f"SkipCell(delays={self.delays})"


class ClockSaved(NamedTuple):
    """What one clockwork step keeps (each (B, H))."""

    u: np.ndarray  # tanh(a(t))
    m: np.ndarray  # 1 for the units that update at this step, else 0


class ClockworkCell(Cell):
    """Groups of units that update every P-th step (Koutnik et al. 2014); states (h, counter)."""

    gates, n_states = 1, 2

    def __init__(self, hidden_size: int, periods=(1, 2, 4, 8, 16, 32)):
        self.periods = _int_list("periods", periods)
        groups = np.array_split(np.arange(hidden_size), len(self.periods))
        self.period = np.concatenate([np.full(len(g), p) for g, p in zip(groups, self.periods)])
        self.cycle = int(np.lcm.reduce(np.array(self.periods, dtype=np.int64)))

    def step(self, w, xp, state, rec):
        h, n = state
        n = np.rint(n)
        m = (np.mod(n, self.period) == 0).astype(h.dtype)  # n(t-1) mod P == 0
        u = np.tanh(xp + rec(h))
        # h(t) = h(t-1) + m (u - h(t-1)); the counter wraps at lcm(periods)
        return (h + m * (u - h), np.mod(n + 1.0, self.cycle)), ClockSaved(u, m)

    def step_back(self, w, dstate, saved, rec, dw):
        dh, (u, m) = dstate[0], saved
        dm = dh * m
        da = dm * (1.0 - u * u)
        return da, (dh - dm + rec.back(da), None)  # the counter has no gradient

    def __repr__(self) -> str:
        return f"ClockworkCell(periods={self.periods})"
