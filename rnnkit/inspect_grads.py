"""``rnnkit inspect gradients RUN [RUN ...] --out plot.png``: the vanishing gradient, seen.

For a batch of held-out sequences of each trained run (the adding, copy and remember-first tasks,
and language models), with the loss L taken at the LAST step T only:

* left panel: the norm of dL/dh(t), the gradient reaching the top layer's hidden state h(t)
  (10.20-10.21 without the output terms of steps before T), against t, on a log scale::

      dL/dh(t) = (dh(t+1)/dh(t))^T dL/dh(t+1)

  computed exactly by taking the layer back one step at a time (``StepFunction``); the mean over
  the sequences of ||dL/dh(t)||, divided by its value at t = T (``--absolute``: not divided);
* right panel: the spectral norm of each step's Jacobian J(t) = ds(t)/ds(t-1) of the whole
  recurrent state s (every layer; (h, c) for the LSTM, the delay line of the skip cell, the
  clockwork counter), mean over the sequences, and (dashed) its root-mean-square singular value
  ||J(t)||_F / sqrt(n), the typical gain of a direction. J(t) is formed exactly, row by row: the
  step is run once on a batch holding each sequence n times (n = size of s) and taken back once
  with the n basis vectors e_i as dL/ds(t), which gives the rows e_i^T J(t); then ||J(t)||_2 =
  sqrt(largest eigenvalue of J J^T).

A product of Jacobians whose singular values stay below 1 shrinks the gradient geometrically (the
Elman RNN; its largest singular value may exceed 1 while the product still vanishes, since the
directions do not line up); gated and leaky units keep J(t) close to the identity along their
memory.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RnnkitError

__all__ = [
    "GradientProfile",
    "gradient_norms",
    "jacobian_norms",
    "profile_run",
    "plot_profiles",
    "add_parser",
    "run",
]


@dataclass
class GradientProfile:
    """The two curves of one run; index t-1 holds step t = 1..T."""

    label: str
    grad_norm: np.ndarray  # (T,) mean over sequences of ||dL/dh(t)||
    jac_norm: np.ndarray  # (T,) mean over sequences of ||ds(t)/ds(t-1)||_2
    jac_rms: np.ndarray  # (T,) mean over sequences of ||ds(t)/ds(t-1)||_F / sqrt(n)
    loss: float  # mean loss at step T over the sequences


def _pack(s) -> tuple:
    return s if isinstance(s, tuple) else (s,)


def _unpack(parts: tuple):
    return parts if len(parts) > 1 else parts[0]


def _check_layer(layer) -> None:
    if layer.num_directions != 1:
        raise RnnkitError(
            "inspect gradients needs a unidirectional recurrent layer (a "
            "bidirectional one has no single last step)"
        )


def gradient_norms(layer, x: np.ndarray, dloss_dy_last) -> tuple[np.ndarray, float]:
    """||dL/dh(t)|| of the top layer for every sequence, L the loss at the last step only.

    layer: a unidirectional ``RecurrentLayer``; x (T, B, I) floats or (T, B) ids;
    dloss_dy_last: y(T) (B, H) -> (loss (float), dL/dy(T) (B, H)). Returns (norms (T, B), loss)
    with norms[t-1] = ||dL/dh(t)|| of each sequence."""
    from .layers.stepper import StepFunction

    _check_layer(layer)
    f = StepFunction(layer)
    s, tapes = None, []
    for x_t in x:
        y_t, s, tape = f.forward(x_t, s)
        tapes.append(tape)
    loss, dy = dloss_dy_last(y_t)
    T = len(tapes)
    norms = np.empty((T, dy.shape[0]))
    norms[T - 1] = np.linalg.norm(dy, axis=-1)
    ds = None
    for t in range(T - 1, 0, -1):  # tapes[t] is step t+1; it gives dL/ds(t)
        _, ds = f.backward(tapes[t], dy if t == T - 1 else None, ds)
        norms[t - 1] = np.linalg.norm(_pack(ds)[0][-1], axis=-1)
    return norms, float(loss)


def _states(layer, x: np.ndarray) -> list[tuple]:
    """s(0), ..., s(T-1): the state entering each step, each a tuple of (L, B, H) arrays."""
    from .layers.stepper import StepFunction

    f = StepFunction(layer)
    B = x.shape[1]
    s = tuple(
        np.zeros((layer.num_layers, B, layer.hidden_size), layer.dtype)
        for _ in range(layer.cell.n_states)
    )
    out = [s]
    for x_t in x[:-1]:
        _, s, _ = f.forward(x_t, _unpack(s))
        s = _pack(s)
        out.append(s)
    return out


def step_jacobians(layer, x_t: np.ndarray, s_prev: tuple) -> np.ndarray:
    """J = ds(t)/ds(t-1) of one step, exactly: (B, n, n), n = n_states * L * H, the state
    flattened as (state kind, layer, unit). x_t (B, I) or (B,) ids; s_prev: tuple of (L, B, H).

    The step runs on a batch holding each sequence n times; its backward with dL/ds(t) = e_i for
    copy i gives dL/ds(t-1) = J^T e_i, row i of J."""
    _check_layer(layer)
    K, L, H = layer.cell.n_states, layer.num_layers, layer.hidden_size
    B, n = x_t.shape[0], K * L * H
    rep = lambda a, ax: np.repeat(a, n, axis=ax)  # noqa: E731  sequence b -> rows b*n .. b*n+n-1
    xr = rep(x_t, 0)[None]
    sr = tuple(rep(s, 1) for s in s_prev)
    basis = np.zeros((K, L, B * n, H), layer.dtype)
    eye = np.eye(n, dtype=layer.dtype).reshape(n, K, L, H)  # e_i as (kind, layer, unit)
    basis[...] = np.tile(eye.transpose(1, 2, 0, 3), (1, 1, B, 1))
    layer.forward(xr, _unpack(sr))
    keep, layer.bptt_truncate = getattr(layer, "bptt_truncate", None), None  # the full step,
    try:  # whatever truncation the model was trained with (0 would cut ds(t)/ds(t-1) itself)
        _, ds0 = layer.backward(None, _unpack(tuple(basis)))
    finally:
        layer.bptt_truncate = keep
    rows = np.stack(_pack(ds0))  # (K, L, B*n, H): row i of J for copy i
    return rows.transpose(2, 0, 1, 3).reshape(B, n, n)


def jacobian_norms(layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(||J(t)||_2, ||J(t)||_F / sqrt(n)), each (T, B), of J(t) = ds(t)/ds(t-1) for every step
    t = 1..T (index t-1) and sequence: the largest and the root-mean-square singular value."""
    states = _states(layer, x)
    spec, rms = np.empty((2, x.shape[0], x.shape[1]))
    for t, (x_t, s) in enumerate(zip(x, states)):
        J = step_jacobians(layer, x_t, s).astype(np.float64)
        lam = np.linalg.eigvalsh(J @ J.swapaxes(-1, -2))[..., -1]
        spec[t] = np.sqrt(np.maximum(lam, 0.0))
        rms[t] = np.sqrt((J * J).mean(axis=(-2, -1)) * J.shape[-1])
    return spec, rms


# -- runs ---------------------------------------------------------------------------------------
def _lm_problem(task, model, n: int):
    """A language model: n held-out sequences of one common length (the longest n available),
    embedded; the loss is the cross-entropy of the last step's next token."""
    from .functional import softmax_cross_entropy

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
    from .tasks.runs import load_model

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


def plot_profiles(profiles: list[GradientProfile], out, absolute: bool = False) -> None:
    """The two panels as a PNG (matplotlib's object API on an Agg canvas)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnkitError("plotting needs matplotlib (pip install matplotlib)") from None
    fig = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    a1, a2 = fig.subplots(1, 2)
    for p in profiles:
        t = np.arange(1, len(p.grad_norm) + 1)
        g = p.grad_norm if absolute else p.grad_norm / max(p.grad_norm[-1], 1e-300)
        (line,) = a1.plot(t, np.maximum(g, 1e-300), lw=1.8, label=p.label)
        a2.plot(t, p.jac_norm, lw=1.2, color=line.get_color())
        a2.plot(t, p.jac_rms, lw=1.2, ls="--", color=line.get_color())
    a1.set_yscale("log")
    a1.set_xlabel("step t (the loss is at the last step T)")
    a1.set_ylabel("||dL/dh(t)||" + ("" if absolute else " / ||dL/dh(T)||"))
    a1.set_title("gradient reaching h(t)")
    a2.set_yscale("log")
    a2.set_xlabel("step t")
    a2.set_ylabel("singular values of ds(t)/ds(t-1)")
    a2.set_title("each step's Jacobian: largest (solid), RMS (dashed)")
    for a in (a1, a2):
        a.grid(alpha=0.3, which="both")
    a1.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp)
    tmp.replace(out)


# -- command line -------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    """``inspect gradients RUN [RUN ...]`` under the CLI's subcommands."""
    p = subparsers.add_parser(
        "inspect", help="look inside trained models", description="Look inside trained models."
    )
    sub = p.add_subparsers(dest="inspect_what", required=True, metavar="WHAT")
    g = sub.add_parser(
        "gradients",
        help="plot dL/dh(t) and the step Jacobians' norms against t",
        description="Plot the norm of dL/dh(t) for the loss at the last step, and the largest "
        "and the RMS singular value of each step's Jacobian ds(t)/ds(t-1), against t (log "
        "scale), one line per run, on held-out sequences.",
    )
    g.add_argument("runs", nargs="+", metavar="RUN", help="run folders or checkpoint files")
    g.add_argument("--out", default="gradients.png", help="PNG to write (default: gradients.png)")
    g.add_argument(
        "--sequences",
        type=_positive_int,
        default=16,
        help="held-out sequences to average over (default: 16)",
    )
    g.add_argument(
        "--jacobian-sequences",
        type=_positive_int,
        default=4,
        help="of which for the Jacobians (default: 4)",
    )
    g.add_argument(
        "--absolute",
        action="store_true",
        help="plot ||dL/dh(t)|| itself, not divided by its value at the last step",
    )
    g.add_argument("--label", action="append", help="a legend label per run, in order")
    g.add_argument("--json", action="store_true", help="also print the curves as JSON")
    return p


def _gmean(a: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(a, 1e-300)))))


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {s!r}")
    return v


def run(args) -> int:
    """Run ``inspect gradients``; prints one summary line per run. Returns the exit status."""
    labels = args.label or []
    if labels and len(labels) != len(args.runs):
        raise RnnkitError(f"{len(labels)} --label for {len(args.runs)} runs")
    profiles = []
    for i, path in enumerate(args.runs):
        p = profile_run(
            path, args.sequences, args.jacobian_sequences, labels[i] if labels else None
        )
        profiles.append(p)
        ratio = p.grad_norm[0] / max(p.grad_norm[-1], 1e-300)
        print(
            f"{p.label}: loss at T {p.loss:.4g}; ||dL/dh(1)|| / ||dL/dh(T)|| = {ratio:.3g} over "
            f"T={len(p.grad_norm)}; step Jacobian: largest singular value "
            f"{_gmean(p.jac_norm):.3g}, "
            f"RMS singular value {_gmean(p.jac_rms):.3g} (geometric means over t)"
        )
    plot_profiles(profiles, args.out, absolute=args.absolute)
    print(f"wrote {args.out}")
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "label": p.label,
                        "loss": p.loss,
                        "grad_norm": p.grad_norm.tolist(),
                        "jacobian_norm": p.jac_norm.tolist(),
                        "jacobian_rms": p.jac_rms.tolist(),
                    }
                    for p in profiles
                ]
            )
        )
    return 0
