"""The learning-rate schedule and the best-model choice, as functions of the :class:`Position`.

* halving on a plateau: after an end-of-epoch evaluation whose held-out loss is higher than the
  previous one, the learning rate is halved (``--no-lr-halving``: off);
* a fixed decay (Zaremba et al. 2014): the learning rate is multiplied by ``--lr-decay`` after each
  epoch from ``--lr-decay-start`` on;
* the best model: the end-of-epoch evaluation of the lowest finite held-out loss so far.

An evaluation made when a time budget ran out mid-epoch changes none of these (an uninterrupted run
never makes it, and a resumed run must stay exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import FitConfig
from .position import Position


@dataclass
class Outcome:
    """What an end-of-epoch evaluation changed."""

    halved_to: float | None = None  # the new learning rate, when it was halved
    best: bool = False  # the lowest held-out loss so far: save best.npz


def after_evaluation(pos: Position, valid_loss: float, cfg: FitConfig) -> Outcome:
    """Apply an end-of-epoch held-out loss to ``pos`` (its lr, prev_valid, best_valid)."""
    out = Outcome()
    if cfg.halve_lr and pos.prev_valid is not None and valid_loss > pos.prev_valid:
        pos.lr *= 0.5
        out.halved_to = pos.lr
    pos.prev_valid = valid_loss
    if math.isfinite(valid_loss) and (pos.best_valid is None or valid_loss < pos.best_valid):
        pos.best_valid = valid_loss
        out.best = True
    return out


def after_epoch(pos: Position, cfg: FitConfig) -> None:
    """The fixed decay at the end of epoch ``pos.epoch`` (0-based, not yet counted)."""
    if cfg.lr_decay is not None and pos.epoch + 1 >= cfg.lr_decay_start:
        pos.lr *= cfg.lr_decay


def evaluation_due(epoch_done: int, cfg: FitConfig) -> bool:
    """Whether the epoch that ends ``epoch_done`` epochs (1-based) is evaluated."""
    return epoch_done % cfg.eval_every == 0 or epoch_done == cfg.epochs
