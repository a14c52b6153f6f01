"""Gradient checking by central differences, for any scalar function of named arrays::

    num(p_i) = (4 D(h/2) - D(h)) / 3,  D(h) = (L(p_i + h) - L(p_i - h)) / (2h)

(central differences with one Richardson step: the h^2 error term cancels, so h can be large enough
that round-off stays near 1e-12 in float64). Each entry is compared with the analytic gradient by::

    rel = |a - n| / max(|a| + |n|, floor)

so entries whose true gradient is zero (padded steps, unused rows) are compared in absolute terms
against ``floor`` instead of dividing noise by noise. A NaN or inf on either side is an error of
inf, never a silent pass.

    res = gradcheck(lambda: model_loss(), params, grads)      # params mutated in place, restored
    assert res.max_rel_error < 1e-6, res
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import RnnkitError


@dataclass
class GradcheckResult:
    """Worst relative error per array and overall, with the entry where it occurred."""

    errors: dict[str, float] = field(default_factory=dict)  # name -> max relative error
    worst: dict[str, tuple] = field(default_factory=dict)  # name -> (index, analytic, numeric)
    checked: dict[str, int] = field(default_factory=dict)  # name -> entries checked

    @property
    def max_rel_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        rows = [
            f"{n}: max rel error {e:.3e} over {self.checked[n]} entries "
            f"(worst at {self.worst[n][0]}: analytic {self.worst[n][1]:.6e}, "
            f"numeric {self.worst[n][2]:.6e})"
            for n, e in self.errors.items()
        ]
        return "\n".join(rows)


def relative_error(a: np.ndarray, n: np.ndarray, floor: float = 1e-5) -> np.ndarray:
    """``|a - n| / max(|a| + |n|, floor)``, elementwise; inf where either side is not finite."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    with np.errstate(invalid="ignore"):
        r = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
    r[~(np.isfinite(a) & np.isfinite(n))] = np.inf
    return r


def gradcheck(
    loss_fn: Callable[[], float],
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    *,
    h: float = 1e-3,
    floor: float = 1e-5,
    max_entries: int | None = None,
    seed: int = 0,
) -> GradcheckResult:
    """Compare ``grads`` with numerical derivatives of ``loss_fn`` w.r.t. ``params``.

    loss_fn: () -> float, reads the arrays in ``params`` (they are perturbed in place and restored
    bit for bit). params / grads: name -> array of the same shape (grads computed beforehand at the
    unperturbed point). max_entries: check at most this many random entries of each array (all
    when None). Use float64 arrays: float32 central differences are not accurate to 1e-6.
    """
    missing = [n for n in params if n not in grads]
    if missing:
        raise RnnkitError(f"no analytic gradient for {missing}")
    rng = np.random.default_rng(seed)
    res = GradcheckResult()
    for name, p in params.items():
        g = np.asarray(grads[name])
        if g.shape != p.shape:
            raise RnnkitError(f"gradient of {name} has shape {g.shape}, parameter has {p.shape}")
        if p.dtype != np.float64:
            raise RnnkitError(f"gradcheck needs float64 arrays; {name} is {p.dtype}")
        idx = np.arange(p.size)
        if max_entries is not None and p.size > max_entries:
            idx = rng.choice(p.size, size=max_entries, replace=False)
        flat = p.reshape(-1)  # a view: perturbing it perturbs p
        if not np.shares_memory(flat, p):
            raise RnnkitError(f"{name} must be contiguous so it can be perturbed in place")
        num = np.empty(idx.size)
        for j, i in enumerate(idx):
            num[j] = _richardson(loss_fn, flat, int(i), h)
        ana = g.reshape(-1)[idx]
        rel = relative_error(ana, num, floor)
        w = int(np.argmax(rel)) if rel.size else 0
        res.errors[name] = float(rel.max()) if rel.size else 0.0
        res.checked[name] = int(idx.size)
        if rel.size:
            res.worst[name] = (np.unravel_index(idx[w], p.shape), float(ana[w]), float(num[w]))
    return res


def _richardson(loss_fn, flat: np.ndarray, i: int, h: float) -> float:
    old = flat[i]
    vals = []
    try:
        for step in (h, h / 2):
            flat[i] = old + step
            lp = float(loss_fn())
            flat[i] = old - step
            lm = float(loss_fn())
            vals.append((lp - lm) / (2 * step))
    finally:
        flat[i] = old  # restored even when loss_fn raises
    return (4 * vals[1] - vals[0]) / 3


def _truncated_reference(layer, x, h0, lengths, R, k: int) -> dict:
    """Truncated BPTT by brute force: for each sequence b and each of its outputs t, the full
    gradient of that output's loss through the window of steps t-k..t alone, the state entering
    the window held constant. Summed, this is what ``bptt_truncate=k`` must give.

    ``layer``: anything with ``params``, ``grads``, ``hidden_size``, ``forward(x, state)`` and
    ``backward(dy)`` as rnnkit's recurrent layers have them (nothing here imports the layers)."""
    total = {n: np.zeros_like(p) for n, p in layer.params.items()}
    states = layer.state_parts(h0)
    for b in range(x.shape[1]):
        sb = tuple(s[:, b : b + 1] for s in states)
        for t in range(int(lengths[b])):
            start = max(0, t - k)
            st = layer.public_state(sb)
            if start > 0:
                _, st = layer.forward(x[:start, b : b + 1], st)
            layer.forward(x[start : t + 1, b : b + 1], st)
            dy = np.zeros((t + 1 - start, 1, layer.hidden_size))
            dy[-1] = R[t, b]
            layer.backward(dy)
            for n in total:
                total[n] += layer.grads[n]
    return total
