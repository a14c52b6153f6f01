"""``rnnkit inspect gradients RUN [RUN ...] --out plot.png``: the vanishing gradient, seen.

The curves are computed by ``rnnkit.tasks.gradients.profile_run`` (on ``rnnkit.models.gradients``);
this module plots them and prints a line per run.

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
from pathlib import Path

import numpy as np

from ..errors import RnnkitError
from ..tasks.gradients import GradientProfile, profile_run
from .args import positive_int

__all__ = ["plot_profiles", "add_parser", "run"]


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
        type=positive_int,
        default=16,
        help="held-out sequences to average over (default: 16)",
    )
    g.add_argument(
        "--jacobian-sequences",
        type=positive_int,
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
