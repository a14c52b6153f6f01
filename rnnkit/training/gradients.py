"""From the ranks' gradient sums to the update's gradient: the mean over the GLOBAL count, the
clipping, and the check that the step may be taken.

With per-example losses ``L_i`` the model returns ``sum_i L_i`` and its gradient over its share of
the batch; the step uses the mean over the whole batch (Deep Learning book, algorithm 8.1, the
minibatch estimate of the gradient) ``g = (1/N) sum_r sum_{i in r} grad L_i``, with ``N`` the
count summed over ranks: never a mean of the ranks' means, so that data parallelism and gradient
accumulation give the same update as one process. Clipping (section 10.11.1, eqs. 10.48-10.49): the
global norm ``||g||`` rescaled to at most ``clip_norm``, then each entry to ``[-V, V]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..optim import clip_grad_norm, clip_grad_value
from ..parallel import SERIAL, Comm
from .config import TrainingStopped


def global_mean(
    grads: dict[str, np.ndarray],
    loss_sum: float,
    count: int,
    comm: Comm = SERIAL,
    flags: Sequence[bool] = (),
) -> tuple[float, int, tuple]:
    """Sum ``grads`` (in place), the loss sums, the counts and ``flags`` over the ranks, then
    divide ``grads`` by the global count: (global loss sum, global count, summed flags)."""
    total, n, summed = comm.allreduce_grads(grads, loss_sum, count, tuple(flags))
    scale = 1.0 / max(n, 1)
    for g in grads.values():
        g *= scale
    return total, n, summed


def clip(grads: dict[str, np.ndarray], clip_norm: float | None, clip_value: float | None) -> float:
    """Clip in place (norm first, then values); returns the global norm before clipping."""
    norm = (
        clip_grad_norm(grads, clip_norm)
        if clip_norm
        else math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    )
    if clip_value:
        clip_grad_value(grads, clip_value)
    return norm


def check_finite(
    loss: float, grad_norm: float, step: int, epoch: int, last_good: str | None
) -> None:
    """Raise :class:`TrainingStopped` for a NaN/inf loss or gradient (before any update); ``step``
    and ``epoch`` are 1-based, ``last_good`` the checkpoint that stands (None: none yet)."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    where = (
        f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written yet"
    )
    raise TrainingStopped(
        f"loss became {loss:.4g} (gradient norm {grad_norm:.4g}) at step {step} (epoch {epoch}); "
        f"stopped without updating; {where}; try a lower --lr or --clip-norm"
    )
