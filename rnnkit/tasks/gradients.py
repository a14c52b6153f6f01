"""The vanishing gradient of a trained run: its held-out sequences, a loss at the last step, and
the curves of ``rnnkit.models.gradients`` averaged over the sequences (``rnnkit inspect
gradients``; the language models and the adding, copy and remember-first tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RnnkitError
from ..functional import softmax_cross_entropy
from ..models.gradients import gradient_norms, jacobian_norms

__all__ = ["GradientProfile", "profile_run"]


@dataclass
class GradientProfile:
    """The two curves of one run; index t-1 holds step t = 1..T."""

    label: str
    grad_norm: np.ndarray  # (T,) mean over sequences of ||dL/dh(t)||
    jac_norm: np.ndarray  # (T,) mean over sequences of ||ds(t)/ds(t-1)||_2
    jac_rms: np.ndarray  # (T,) mean over sequences of ||ds(t)/ds(t-1)||_F / sqrt(n)
    loss: float  # mean loss at step T over the sequences


def _lm_problem(task, model, n: int):
    """A language model: n held-out sequences of one common length (the longest n available),
    embedded; the loss is the cross-entropy of the last step's next token."""

    seqs = []
    for i, batch in enumerate(task.batches("valid", None)):
        inputs, targets, lengths = batch
        for b in range(inputs.shape[1]):
            Lb = inputs.shape[0] if lengths is None else int(lengths[b])
            seqs.append((inputs[:Lb, b], targets[:Lb, b]))
        if len(seqs) >= 20 * n or i >= 50:
            break
    seqs.sort(key=lambda s: -len(s[0]))
    seqs = seqs[:n]
    T = len(seqs[-1][0])
    if T < 2:
        raise RnnkitError("the held-out sequences are too short to inspect (need 2 steps)")
    ids = np.stack([s[0][:T] for s in seqs], axis=1)
    tgt = np.array([s[1][T - 1] for s in seqs])
    x = model.embed.forward(ids)

    def dloss(y_last):
        nll, _, dlogits = softmax_cross_entropy(model.out.forward(y_last), tgt)
        return nll / len(tgt), model.out.backward(y_last, dlogits)

    return x, dloss


def _memory_problem(task, model, n: int):
    """The memory tasks: the first n held-out sequences; the loss at the last step."""
    x, targets = task.batches("valid", None)[0]
    x = model.layer_input(x[:, :n])
    tgt = targets[:, :n][-1] if model.config.head == "every" else targets[:n]

    def dloss(y_last):
        loss, count, dy, _ = model.head_loss(y_last, tgt)
        return loss / max(count, 1), dy

    return x, dloss


def profile_run(
    path, n: int = 16, n_jacobian: int = 4, label: str | None = None
) -> GradientProfile:
    """Both curves for the checkpoint (or run folder) ``path``: gradients over n held-out
    sequences, Jacobians over the first n_jacobian of them."""
    from .runs import load_model

    task, model, meta, _ = load_model(path)
    model.eval()
    if not hasattr(model, "rnn"):
        raise RnnkitError(f"{path}: a {task.name} model has no recurrent layer to inspect")
    if hasattr(model, "embed") and hasattr(model, "out") and task.name == "lm":
        x, dloss = _lm_problem(task, model, n)
    elif hasattr(model, "head_loss"):
        x, dloss = _memory_problem(task, model, n)
    else:
        raise RnnkitError(
            f"{path}: inspect gradients knows language models and the adding, copy "
            f"and remember-first tasks, not {task.name}"
        )
    g, loss = gradient_norms(model.rnn, x, dloss)
    spec, rms = jacobian_norms(model.rnn, x[:, :n_jacobian])
    cell = meta["model_config"].get("cell", "?")
    length = meta["task_config"].get("length")
    if label is None:
        label = f"{cell} ({Path(path).name}" + (f", T={length})" if length else ")")
    return GradientProfile(label, g.mean(axis=1), spec.mean(axis=1), rms.mean(axis=1), loss)
