"""The rows of ``metrics.jsonl`` (one JSON object per line) and the line logged per evaluation.

* ``{"kind": "train", "step", "train_loss", "lr", "grad_norm", "elapsed"}`` every ``--log-every``
  steps: the training loss averaged over the steps since the previous such row;
* ``{"kind": "eval", "step", "epoch", "valid_loss", "valid_<metric>"..., "lr", "elapsed"}`` per
  evaluation, with ``diverged`` (a non-finite loss), ``partial_epoch`` (the time budget ran out
  mid-epoch), ``lr_halved_to`` and ``best`` (saved as ``best.npz``) when they apply.
"""

from __future__ import annotations

import math


def train_row(step: int, loss: float, lr: float, grad_norm: float, elapsed: float) -> dict:
    return {
        "kind": "train",
        "step": step,
        "train_loss": loss,
        "lr": lr,
        "grad_norm": grad_norm,
        "elapsed": round(elapsed, 3),
    }


def eval_row(metrics: dict, step: int, epoch: float, lr: float, elapsed: float) -> dict:
    """The row of an evaluation's ``metrics`` (the task's, "loss" among them)."""
    v = metrics["loss"]
    row = {
        "kind": "eval",
        "step": step,
        "epoch": round(epoch, 4),
        "valid_loss": v,
        **{f"valid_{k}": x for k, x in metrics.items() if k != "loss"},
        "lr": lr,
        "elapsed": round(elapsed, 3),
    }
    if not math.isfinite(v):
        row["diverged"] = True
    return row


def row_metrics(row: dict) -> dict:
    """The metrics of an eval row (the inverse of :func:`eval_row`)."""
    m = {k[len("valid_") :]: v for k, v in row.items() if k.startswith("valid_")}
    m["loss"] = row["valid_loss"]
    return m


def fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v) or abs(v) >= 1e6:
            return f"{v:.4g}"
        return f"{v:.4f}"
    return str(v)


def eval_line(row: dict) -> str:
    """The line logged for an eval row."""
    shown = "  ".join(f"{k} {fmt(x)}" for k, x in row_metrics(row).items() if k != "loss")
    return (
        f"epoch {row['epoch']:6.2f}  step {row['step']:6d}  held-out loss "
        f"{fmt(row['valid_loss'])}  {shown}  lr {row['lr']:.3g}"
        + ("  (lr halved)" if "lr_halved_to" in row else "")
    )
