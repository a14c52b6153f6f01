"""Cells written on the plain cell protocol (``cell.py``): each is one step forward and back.

* ``leaky`` -- leaky units with per-unit time constants (Deep Learning book 10.9.2)::

      h(t) = (1 - 1/tau) h(t-1) + (1/tau) tanh(a(t)),   a(t) = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh

  tau = 1 + exp(rho) > 1 is learned through rho (own parameter ``rho``, one per unit), initialised
  so that tau spreads log-uniformly over [tau_min, tau_max]: a spectrum of time scales.
* ``deep`` -- deep transition (10.5, figure 10.13b, c): an MLP of ``depth`` tanh layers between
  h(t-1) and h(t): z_1 = tanh(a(t)), z_j = tanh(M_j z_{j-1} + c_j), h(t) = z_depth; with the
  shortcut (figure 10.13c) the first pre-activation also enters the last one,
  h(t) = tanh(M_d z_{d-1} + c_d + a(t)), so the one-step path from h(t-1) stays one layer long.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import RnnkitError
from .cell import Cell, sum_rows


class LeakySaved(NamedTuple):
    """What one leaky step keeps (each (B, H))."""

    u: np.ndarray  # tanh(a(t))
    h_prev: np.ndarray


class LeakyCell(Cell):
    """Leaky units (10.9.2) with learned per-unit time constants tau = 1 + exp(rho)."""

    gates, n_states = 1, 1

    def __init__(self, tau_min: float = 1.0, tau_max: float = 100.0):
        if not (math.isfinite(tau_min) and math.isfinite(tau_max) and 1.0 <= tau_min <= tau_max):
            raise RnnkitError(
                f"time constants need 1 <= tau_min <= tau_max, got {tau_min}, {tau_max}"
            )
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)

    def own_params(self, input_size, hidden_size):
        return {"rho": (hidden_size,)}

    def init_own(self, name, shape, rng, dtype):
        lo, hi = math.log(max(self.tau_min, 1.0 + 1e-3)), math.log(max(self.tau_max, 1.0 + 2e-3))
        tau = np.exp(rng.uniform(lo, hi, shape))
        return np.log(tau - 1.0).astype(dtype)  # tau = 1 + exp(rho)

    @staticmethod
    def _alpha(rho):
        return 1.0 / (1.0 + np.exp(np.minimum(rho, 50.0)) + np.zeros_like(rho))  # 1/tau

    def step(self, w, xp, state, rec):
        a, h = self._alpha(w["rho"]), state[0]
        u = np.tanh(xp + rec(h))
        return (h + (u - h) * a,), LeakySaved(u, h)  # h(t) = h(t-1) + (u - h(t-1)) / tau

    def step_back(self, w, dstate, saved, rec, dw):
        a, dh, (u, h) = self._alpha(w["rho"]), dstate[0], saved
        da = dh * (a * (1.0 - u * u))  # dL/da = dh / tau * (1 - u^2)
        # dL/dalpha = dh (u - h(t-1)); dalpha/drho = -alpha (1 - alpha)
        dw["rho"] -= sum_rows(dh * (u - h)) * a * (1.0 - a)
        return da, (dh * (1.0 - a) + rec.back(da),)


class DeepTransitionCell(Cell):
    """A ``depth``-layer tanh MLP as the transition h(t-1) -> h(t), optionally with a shortcut.
    A step saves the tuple (z_1, ..., z_depth) of its layers' activations."""

    gates, n_states = 1, 1

    def __init__(self, depth: int = 2, shortcut: bool = True):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise RnnkitError(f"depth must be an integer >= 1, got {depth!r}")
        self.depth, self.shortcut = depth, bool(shortcut)

    def own_params(self, input_size, hidden_size):
        H = hidden_size
        shapes = {}
        for j in range(2, self.depth + 1):
            shapes[f"transition_weight_{j}"] = (H, H)
            shapes[f"transition_bias_{j}"] = (H,)
        return shapes

    def step(self, w, xp, state, rec):
        a = xp + rec(state[0])
        zs = [np.tanh(a)]
        for j in range(2, self.depth + 1):
            pre = zs[-1] @ w[f"transition_weight_{j}"].T + w[f"transition_bias_{j}"]
            if self.shortcut and j == self.depth:
                pre += a
            zs.append(np.tanh(pre))
        return (zs[-1],), tuple(zs)

    def step_back(self, w, dstate, saved, rec, dw):
        dz, da_short = dstate[0], None
        for j in range(self.depth, 1, -1):
            z, zp = saved[j - 1], saved[j - 2]
            da = dz * (1.0 - z * z)
            if self.shortcut and j == self.depth:
                da_short = da
            d2 = da.reshape(-1, da.shape[-2], da.shape[-1]).sum(axis=0)  # over truncation slots
            dw[f"transition_weight_{j}"] += d2.T @ zp
            dw[f"transition_bias_{j}"] += d2.sum(axis=0)
            dz = da @ w[f"transition_weight_{j}"]
        da = dz * (1.0 - saved[0] * saved[0])
        if da_short is not None:
            da = da + da_short
        return da, (rec.back(da),)
