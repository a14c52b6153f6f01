"""The argument parser of ``rnnkit``, built from one small part per command."""

from __future__ import annotations

import argparse
import os

from .args import nonnegative_int, positive_float, positive_int, sample_count, sample_length
from .flags import add_config_flags

_CHECKPOINT_HELP = "a checkpoint .npz file or the run folder that holds checkpoint.npz"


def build_parser() -> argparse.ArgumentParser:
    from .inspect_grads import add_parser as add_inspect
    from .memory_bench import add_parser as add_bench

    p = argparse.ArgumentParser(
        prog="rnnkit",
        description=(
            "Recurrent neural networks from first principles in NumPy: train, evaluate and use "
            "models; check gradients."
        ),
    )
    p.add_argument("--version", action="version", version=_version())
    p.add_argument(
        "--threads",
        type=positive_int,
        default=os.environ.get("RNNKIT_THREADS", "1"),
        help="BLAS threads (default 1, or $RNNKIT_THREADS): the small per-step products "
        "of a recurrence run slower on more threads, and a shared 2-core machine can "
        "collapse under two; needs threadpoolctl",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(sub)
    add_eval(sub)
    add_generate(sub)
    add_predict(sub)
    add_bench(sub)
    add_inspect(sub)
    add_gradcheck(sub)
    return p


def _version() -> str:
    from .. import __version__

    return f"rnnkit {__version__}"


# -- train TASK ---------------------------------------------------------------------------------
def add_train(sub) -> None:
    from ..tasks import get_task, task_names

    tr = sub.add_parser("train", help="train a model", description="Train a model for a task.")
    trs = tr.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        _add_task(trs, name, get_task(name))


def _add_task(trs, name: str, cls) -> None:
    """``train NAME``: the task's data, model and training flags, then the run's."""
    from ..fit import FitConfig
    from ..layers.registry import cell_names

    tp = trs.add_parser(
        name,
        help=cls.description.split(".")[0].lower(),
        description=cls.description + " Writes checkpoint.npz, metrics.jsonl "
        "and loss.png to --out.",
    )
    dests: dict = {}
    add_config_flags(tp.add_argument_group("data"), cls.Config, dests, "task")
    add_config_flags(tp.add_argument_group("model"), cls.ModelConfig, dests, "model")
    add_config_flags(
        tp.add_argument_group("training"),
        FitConfig,
        dests,
        "fit",
        overrides=cls.fit_defaults,
        shown=cls.fit_defaults_shown,
    )
    tp.set_defaults(_dests=dests)
    _add_run_flags(tp.add_argument_group("run"), name, cls)
    for action in tp._actions:  # the cell flag lists every registered cell
        if action.dest == "cell" and action.choices is None:
            action.choices = cell_names()


def _add_run_flags(g, name: str, cls) -> None:
    g.add_argument("--out", default=argparse.SUPPRESS, help=f"output folder (default: runs/{name})")
    g.add_argument(
        "--resume", action="store_true", help="continue the run in --out exactly where it stopped"
    )
    g.add_argument(
        "--overwrite", action="store_true", help="start over in an --out that already holds a run"
    )
    g.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="no progress bar (off anyway when stderr is not a terminal)",
    )
    if cls.presets:
        g.add_argument(
            "--preset",
            choices=sorted(cls.presets),
            default=argparse.SUPPRESS,
            help="a published configuration: sets its flags' defaults",
        )
    g.add_argument(
        "--samples",
        type=nonnegative_int,
        default=5,
        help="examples to print at the end (default: 5)",
    )


# -- eval, generate, predict, gradcheck ---------------------------------------------------------
def add_eval(sub) -> None:
    ev = sub.add_parser(
        "eval",
        help="held-out metrics of a trained model",
        description="Held-out metrics of a trained model (the held-out part of its "
        "data as split when training).",
    )
    ev.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    ev.add_argument(
        "--corpus", metavar="PATH", help="language models: evaluate on this whole file instead"
    )
    ev.add_argument(
        "--trees",
        metavar="PATH",
        help="tree models: evaluate on this file of bracketed trees instead",
    )
    ev.add_argument(
        "--split",
        choices=["valid", "test"],
        default="valid",
        help="the held-out part (default) or the test file given when training",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")


def add_generate(sub) -> None:
    ge = sub.add_parser(
        "generate",
        help="sample text from a trained language model",
        description="Sample text from a trained language model.",
    )
    ge.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    ge.add_argument(
        "-n",
        "--num",
        type=sample_count,
        default=5,
        help="sentences (word) or passages (char) (default: 5)",
    )
    ge.add_argument(
        "--length",
        type=sample_length,
        default=300,
        help="characters per passage / max words (default: 300)",
    )
    ge.add_argument("--prompt", default="", help="text to start from")
    ge.add_argument("--temperature", type=positive_float, default=0.8, help="(default: 0.8)")
    ge.add_argument("--top-k", type=positive_int, help="sample among the K likeliest tokens")
    ge.add_argument(
        "--allow-unk", action="store_true", help="allow the unknown token (default: resample)"
    )
    ge.add_argument("--seed", type=nonnegative_int, default=0, help="(default: 0)")


def add_predict(sub) -> None:
    pr = sub.add_parser(
        "predict",
        help="apply a trained model to inputs",
        description="Apply a trained model to inputs given as arguments, or one "
        "per line on stdin when there are none.",
    )
    pr.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    pr.add_argument("inputs", nargs="*", help="inputs (default: one per line from stdin)")
    pr.add_argument("--top", type=positive_int, default=5, help="candidates to show (default: 5)")
    pr.add_argument(
        "--beam",
        type=positive_int,
        default=1,
        help="sequence outputs: beam search of this width (default: 1, greedy)",
    )


def add_gradcheck(sub) -> None:
    from ..layers.registry import cell_names

    gc = sub.add_parser(
        "gradcheck",
        help="check every cell's BPTT against central differences",
        description="Compare hand-written gradients with central differences in "
        "float64 for each cell and for the language model; exit 1 on failure.",
    )
    gc.add_argument("--cell", choices=cell_names() + ["all"], default="all")
    gc.add_argument("--tol", type=positive_float, default=1e-6, help="(default: 1e-6)")
