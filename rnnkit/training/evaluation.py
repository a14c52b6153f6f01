"""Held-out evaluation: the task's metrics on a split, without gradients (every rank its share
under ``mpirun``, the sums combined)."""

from __future__ import annotations

from typing import Any

from ..parallel import SERIAL, Comm
from .protocol import Model, TrainTask


def evaluate(task: TrainTask, model: Model, split: str = "valid", comm: Comm = SERIAL) -> dict:
    """The task's metrics on a split (no gradients): loss per count and the task's own."""
    return task.summarize(*evaluate_sums(task, model, split, comm))


def evaluate_sums(
    task: TrainTask, model: Model, split: str = "valid", comm: Comm = SERIAL
) -> tuple[float, int, dict]:
    """(loss_sum, count, summed extra) over a split, without gradients."""
    model.eval()
    total, count, carry = 0.0, 0, None
    extra: dict[str, Any] = {}
    try:
        for batch in task.batches(split, None):
            if comm.size > 1:  # each rank evaluates its share; the sums are combined below
                batch = task.shard(batch, comm.rank, comm.size)
                if batch is None:
                    continue
            r = model.evaluate(batch, carry if task.carries_state else None)
            total, count = total + r.loss_sum, count + r.count
            for k, v in (r.extra or {}).items():
                extra[k] = extra.get(k, 0) + v
            carry = r.carry
    finally:
        model.train()
    return comm.sum_values(total, count, extra)
