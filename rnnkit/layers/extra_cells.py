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

import numpy as np

from ..errors import RnnkitError
from .cell import Cell, sum_rows
from .registry import register_cell


class LeakyCell(Cell):
    """Leaky units (10.9.2) with learned per-unit time constants tau = 1 + exp(rho)."""

    gates, n_states = 1, 1
    saved = {"u": 1}  # u(t) = tanh(a(t))

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

    def step(self, w, xp, hh, prev, new, ctx):
        a = self._alpha(w["rho"])
        u = ctx["u"]
        np.add(xp, hh, out=u)
        np.tanh(u, out=u)
        # h(t) = h(t-1) + (u - h(t-1)) / tau
        h = new[0]
        np.subtract(u, prev[0], out=h)
        h *= a
        h += prev[0]

    def step_back(self, w, dnew, ctx, prev, new, dxp, dhh, dw):
        a = self._alpha(w["rho"])
        dh, u = dnew[0], ctx["u"]
        np.multiply(dh, a * (1.0 - u * u), out=dxp)  # dL/da = dh / tau * (1 - u^2)
        # dL/dalpha = dh (u - h(t-1)); dalpha/drho = -alpha (1 - alpha)
        dw["rho"] -= sum_rows(dh * (u - prev[0])) * a * (1.0 - a)
        return (dh * (1.0 - a),)


class DeepTransitionCell(Cell):
    """A ``depth``-layer tanh MLP as the transition h(t-1) -> h(t), optionally with a shortcut."""

    gates, n_states = 1, 1

    def __init__(self, depth: int = 2, shortcut: bool = True):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise RnnkitError(f"depth must be an integer >= 1, got {depth!r}")
        self.depth, self.shortcut = depth, bool(shortcut)
        self.saved = {f"z{j}": 1 for j in range(1, depth)}  # z_1 .. z_{d-1}; z_d is h(t)

    def own_params(self, input_size, hidden_size):
        H = hidden_size
        shapes = {}
        for j in range(2, self.depth + 1):
            shapes[f"transition_weight_{j}"] = (H, H)
            shapes[f"transition_bias_{j}"] = (H,)
        return shapes

    def step(self, w, xp, hh, prev, new, ctx):
        a = xp + hh
        z = np.tanh(a)
        for j in range(2, self.depth + 1):
            ctx[f"z{j - 1}"][...] = z
            pre = z @ w[f"transition_weight_{j}"].T + w[f"transition_bias_{j}"]
            if self.shortcut and j == self.depth:
                pre += a
            z = np.tanh(pre)
        new[0][...] = z

    def step_back(self, w, dnew, ctx, prev, new, dxp, dhh, dw):
        z, dz = new[0], dnew[0]
        da_short = None
        for j in range(self.depth, 1, -1):
            da = dz * (1.0 - z * z)
            if self.shortcut and j == self.depth:
                da_short = da
            zp = ctx[f"z{j - 1}"]
            d2 = da.reshape(-1, da.shape[-2], da.shape[-1]).sum(axis=0)  # over truncation slots
            dw[f"transition_weight_{j}"] += d2.T @ zp
            dw[f"transition_bias_{j}"] += d2.sum(axis=0)
            dz = da @ w[f"transition_weight_{j}"]
            z = zp
        np.multiply(dz, 1.0 - z * z, out=dxp)
        if da_short is not None:
            dxp += da_short
        return (None,)


register_cell("leaky", lambda h, tau_min=1.0, tau_max=100.0, **kw: LeakyCell(tau_min, tau_max))
register_cell("deep", lambda h, depth=2, shortcut=True, **kw: DeepTransitionCell(depth, shortcut))
