"""``loss.png``: the training and held-out loss of a run against its optimizer steps."""

from __future__ import annotations

import json
import os
from pathlib import Path


def plot_metrics(metrics_path, png_path, ylabel: str = "loss", title: str = "rnnkit") -> bool:
    """Training and held-out loss against steps as a PNG (matplotlib's object API and an Agg
    canvas: no global backend switch); False when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    rows = [
        json.loads(ln)
        for ln in Path(metrics_path).read_text(encoding="utf-8").splitlines()
        if ln.strip()
    ]
    tr = [(r["step"], r["train_loss"]) for r in rows if r.get("kind") == "train"]
    va = [(r["step"], r["valid_loss"]) for r in rows if r.get("kind") == "eval"]
    fig = Figure(figsize=(7, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if tr:
        ax.plot(*zip(*tr), lw=1, alpha=0.7, label="training (running mean)")
    if va:
        ax.plot(*zip(*va), "o-", lw=2, label="held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if tr or va:
        ax.legend()
    fig.tight_layout()
    tmp = str(png_path) + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, png_path)
    return True
