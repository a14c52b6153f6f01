"""The command line: ``rnnkit train TASK``, ``eval``, ``generate``, ``predict``, ``gradcheck``.

    rnnkit train lm --time-budget 60                 # word LM on the embedded corpus, ~1 minute
    rnnkit train lm --level char --cell lstm --corpus my.txt --out runs/char
    rnnkit generate runs/lm -n 5 --temperature 0.8
    rnnkit eval runs/lm --json
    rnnkit predict RUN INPUT ...                     # whatever the run's task predicts

``rnnkit train TASK`` builds its flags from the task's config dataclasses (``Config`` for data,
``ModelConfig``) and the shared :class:`~rnnkit.fit.FitConfig`: every task's flags look alike, and
each help text says its default once. ``--resume`` keeps the checkpoint's model, data and training
settings: a flag that differs from them is a one-line error naming it, except the few a resumed run
may change (``--epochs``, ``--time-budget``, ``--lr``, ``--eval-every``, ``--log-every``).

Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import types
import typing
from dataclasses import MISSING, fields

from .errors import RnnkitError

# flags that the CLI adds itself, beside the config fields
_RUN_FLAGS = ("out", "resume", "overwrite", "progress", "samples")


def _int_at_least(lo: int, hi: int | None = None):
    """An argparse type: an integer >= lo (and <= hi), with a one-line message otherwise."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {s!r}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"at most {hi:,} here, got {s!r}")
        return v

    return parse


_positive_int, _nonnegative_int = _int_at_least(1), _int_at_least(0)
# generate: a sampled token costs a step of the model, so a billion would run for days
_sample_count, _sample_length = _int_at_least(1, 100_000), _int_at_least(1, 1_000_000)


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s}")
    return v


def _nonnegative_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}") from None
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s}")
    return v


def _fraction(s: str) -> float:
    v = _nonnegative_float(s)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {s}")
    return v


# numbers that must be positive / may be zero / are fractions, by field name
_FLOAT_TYPES = {
    "valid_fraction": _fraction,
    "dropout": _nonnegative_float,
    "weight_decay": _nonnegative_float,
    "forget_bias": float,
}
_INT_TYPES = {"seed": _nonnegative_int, "bptt_truncate": _nonnegative_int}


def _base_type(tp):
    """int | None -> (int, True)."""
    if isinstance(tp, str):
        tp = eval(tp, {}, {})  # annotations are strings under `from __future__ import annotations`
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _add_config_flags(
    group, cls, dests: dict, section: str, overrides: dict | None = None, shown: dict | None = None
) -> None:
    """One flag per field of the dataclass ``cls`` (``metadata={"cli": False}`` skips a field);
    ``shown`` replaces the default printed in a flag's help (a default that depends on others)."""
    notes = shown or {}
    for f in fields(cls):
        md = f.metadata
        if md.get("cli", True) is False or f.name in dests:
            continue
        dests[f.name] = section
        flag = "--" + f.name.replace("_", "-")
        tp, optional = _base_type(f.type)
        default = f.default if f.default is not MISSING else None
        default = (overrides or {}).get(f.name, default)
        helptext = md.get("help", "")
        if tp is bool:  # --flag and --no-flag both, so either can be said explicitly
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{helptext} (default: {'on' if default else 'off'})",
            )
            if "negative" in md:  # an older spelling of --no-flag
                group.add_argument(
                    md["negative"],
                    dest=f.name,
                    action="store_false",
                    default=argparse.SUPPRESS,
                    help=f"the same as --no-{flag[2:]}",
                )
            continue
        if tp is int:
            conv = _INT_TYPES.get(f.name, _positive_int)
        elif tp is float:
            conv = _FLOAT_TYPES.get(f.name, _positive_float)
        else:
            conv = str
        said = notes.get(f.name, "none" if default is None else default)
        kw = dict(
            dest=f.name, type=conv, default=argparse.SUPPRESS, help=f"{helptext} (default: {said})"
        )
        if "choices" in md:
            kw["choices"] = md["choices"]
        if "metavar" in md:
            kw["metavar"] = md["metavar"]
        group.add_argument(flag, **kw)
        if optional and default is not None:
            group.add_argument(
                f"--no-{f.name.replace('_', '-')}",
                dest=f.name,
                action="store_const",
                const=None,
                default=argparse.SUPPRESS,
                help=f"turn {flag} off",
            )


def build_parser() -> argparse.ArgumentParser:
    from .fit import FitConfig
    from .layers.registry import cell_names
    from .tasks import get_task, task_names

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
        type=_positive_int,
        default=os.environ.get("RNNKIT_THREADS", "1"),
        help="BLAS threads (default 1, or $RNNKIT_THREADS): the small per-step products "
        "of a recurrence run slower on more threads, and a shared 2-core machine can "
        "collapse under two; needs threadpoolctl",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model", description="Train a model for a task.")
    trs = tr.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in task_names():
        cls = get_task(name)
        tp = trs.add_parser(
            name,
            help=cls.description.split(".")[0].lower(),
            description=cls.description + " Writes checkpoint.npz, metrics.jsonl "
            "and loss.png to --out.",
        )
        dests: dict = {}
        _add_config_flags(tp.add_argument_group("data"), cls.Config, dests, "task")
        _add_config_flags(tp.add_argument_group("model"), cls.ModelConfig, dests, "model")
        _add_config_flags(
            tp.add_argument_group("training"),
            FitConfig,
            dests,
            "fit",
            overrides=cls.fit_defaults,
            shown=cls.fit_defaults_shown,
        )
        tp.set_defaults(_dests=dests)
        g = tp.add_argument_group("run")
        g.add_argument(
            "--out", default=argparse.SUPPRESS, help=f"output folder (default: runs/{name})"
        )
        g.add_argument(
            "--resume",
            action="store_true",
            help="continue the run in --out exactly where it stopped",
        )
        g.add_argument(
            "--overwrite",
            action="store_true",
            help="start over in an --out that already holds a run",
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
            type=_nonnegative_int,
            default=5,
            help="examples to print at the end (default: 5)",
        )
        for action in tp._actions:  # the cell flag lists every registered cell
            if action.dest == "cell" and action.choices is None:
                action.choices = cell_names()

    ev = sub.add_parser(
        "eval",
        help="held-out metrics of a trained model",
        description="Held-out metrics of a trained model (the held-out part of its "
        "data as split when training).",
    )
    ev.add_argument(
        "checkpoint", help="a checkpoint .npz file or the run folder that holds checkpoint.npz"
    )
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

    ge = sub.add_parser(
        "generate",
        help="sample text from a trained language model",
        description="Sample text from a trained language model.",
    )
    ge.add_argument(
        "checkpoint", help="a checkpoint .npz file or the run folder that holds checkpoint.npz"
    )
    ge.add_argument(
        "-n",
        "--num",
        type=_sample_count,
        default=5,
        help="sentences (word) or passages (char) (default: 5)",
    )
    ge.add_argument(
        "--length",
        type=_sample_length,
        default=300,
        help="characters per passage / max words (default: 300)",
    )
    ge.add_argument("--prompt", default="", help="text to start from")
    ge.add_argument("--temperature", type=_positive_float, default=0.8, help="(default: 0.8)")
    ge.add_argument("--top-k", type=_positive_int, help="sample among the K likeliest tokens")
    ge.add_argument(
        "--allow-unk", action="store_true", help="allow the unknown token (default: resample)"
    )
    ge.add_argument("--seed", type=_nonnegative_int, default=0, help="(default: 0)")

    pr = sub.add_parser(
        "predict",
        help="apply a trained model to inputs",
        description="Apply a trained model to inputs given as arguments, or one "
        "per line on stdin when there are none.",
    )
    pr.add_argument(
        "checkpoint", help="a checkpoint .npz file or the run folder that holds checkpoint.npz"
    )
    pr.add_argument("inputs", nargs="*", help="inputs (default: one per line from stdin)")
    pr.add_argument("--top", type=_positive_int, default=5, help="candidates to show (default: 5)")
    pr.add_argument(
        "--beam",
        type=_positive_int,
        default=1,
        help="sequence outputs: beam search of this width (default: 1, greedy)",
    )

    from . import inspect_grads, memory_bench

    memory_bench.add_parser(sub)
    inspect_grads.add_parser(sub)

    gc = sub.add_parser(
        "gradcheck",
        help="check every cell's BPTT against central differences",
        description="Compare hand-written gradients with central differences in "
        "float64 for each cell and for the language model; exit 1 on failure.",
    )
    gc.add_argument("--cell", choices=cell_names() + ["all"], default="all")
    gc.add_argument("--tol", type=_positive_float, default=1e-6, help="(default: 1e-6)")
    return p


def _version() -> str:
    from . import __version__

    return f"rnnkit {__version__}"


def main(argv: list[str] | None = None) -> int:
    from .parallel import launch_rank

    if launch_rank() > 0:  # under mpirun: rank 0 alone prints (errors only it saw excepted)
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            with contextlib.redirect_stderr(null):
                args = build_parser().parse_args(argv)  # the same usage errors on every rank
            return _main(args)
    return _main(build_parser().parse_args(argv))


def _main(args) -> int:
    # the command's BLAS thread limit, restored when it returns (main() may run in a process
    # that goes on: tests, a notebook)
    with _limit_blas_threads(args.threads):
        return _dispatch(args)


def _dispatch(args) -> int:
    try:
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "eval":
            return _cmd_eval(args)
        if args.command == "bench":
            from .memory_bench import run as run_bench

            return run_bench(args)
        if args.command == "inspect":
            from .inspect_grads import run as run_inspect

            return run_inspect(args)
        if args.command == "predict":
            return _cmd_predict(args)
        return _cmd_gradcheck(args)
    except MemoryError as exc:
        return _fail(
            "out of memory: choose smaller sizes (--hidden-size, --embed-size, "
            "--vocab-size, --batch-size)",
            2,
            exc,
        )
    except (RnnkitError, OSError) as exc:
        msg = (
            str(exc)
            if isinstance(exc, RnnkitError)
            else f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        )
        return _fail(msg.splitlines()[0] if msg else type(exc).__name__, 2, exc)
    except KeyboardInterrupt as exc:
        return _fail("interrupted; nothing was saved", 130, exc, prefix="rnnkit: ")
    except Exception:
        from .parallel import current

        if current().size > 1:  # a bug on one rank: say where, then end every rank (not a hang)
            import traceback

            traceback.print_exc()
            _fail("an unexpected error (traceback above)", 1, None)
        raise


def _fail(msg: str, code: int, exc, prefix: str = "rnnkit: error: ") -> int:
    """Report an error and return the exit status. Under mpirun, an error every rank raised
    together (``collective``) is printed by rank 0 and every rank exits normally; one that only
    this rank saw is printed with its rank, then every rank is ended (MPI_Abort), since the
    others would wait for it forever."""
    from .parallel import current, launch_rank

    comm = current()
    if comm.size > 1 and not getattr(exc, "collective", False):
        print(
            f"{prefix}{msg} (rank {comm.rank} of {comm.size}; stopping every rank)",
            file=sys.stderr,
            flush=True,
        )
        comm.abort(code)
    if launch_rank() == 0:
        print(f"{prefix}{msg}", file=sys.stderr)
    return code


def _limit_blas_threads(n: int) -> contextlib.AbstractContextManager:
    """A context that pins NumPy's BLAS to n threads while the command runs (no-op without
    threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _given(a, dests: dict, section: str) -> dict:
    return {k: getattr(a, k) for k, s in dests.items() if s == section and hasattr(a, k)}


def _check_resume_flags(task_cls, a, meta: dict) -> None:
    """A flag given with --resume must agree with the checkpoint (or be one that may change)."""
    stored = {
        "task": meta["task_config"],
        "model": meta["model_config"],
        "fit": meta.get("fit") or {},
    }
    allowed = set(task_cls.resume_overridable)
    for name, section in a._dests.items():
        if not hasattr(a, name) or (section == "fit" and name in allowed):
            continue
        given, have = getattr(a, name), stored[section].get(name)
        if name in task_cls.path_fields and given is not None:
            given = os.path.abspath(given)
        if given != have:
            flag = "--" + name.replace("_", "-")
            raise RnnkitError(
                f"{flag} {given} differs from the checkpoint's {have}: a resumed run "
                f"keeps its model, data and training settings (only "
                f"{', '.join('--' + x.replace('_', '-') for x in sorted(allowed))} may change)"
            )


def _cmd_train(a) -> int:
    from .fit import FitConfig, Interrupted, fit
    from .parallel import world
    from .rundir import RunDir, config_from, resume_state
    from .tasks import get_task
    from .tasks.runs import load_model

    comm = world()  # one process, or the K ranks of mpirun (docs/mpi.md)
    task_cls = get_task(a.task)
    if getattr(a, "preset", None) and not a.resume:  # the preset's values where no flag was given
        for k, v in task_cls.presets[a.preset].items():
            if not hasattr(a, k):
                setattr(a, k, v)
    out = getattr(a, "out", f"runs/{a.task}")
    run = RunDir(out, rank=comm.rank)
    try:
        with comm.collective_errors():  # an error on any rank stops every rank, with its message
            if a.resume and a.overwrite:
                raise RnnkitError("--resume and --overwrite exclude each other")
            if a.resume:
                if not run.checkpoint.exists():
                    raise RnnkitError(f"nothing to resume: {run.checkpoint} does not exist")
                task, model, meta, arrays = load_model(run.checkpoint)
                if meta["task"] != a.task:
                    raise RnnkitError(f"{out} holds a {meta['task']} run, not {a.task}")
                _check_resume_flags(task_cls, a, meta)
                fit_cfg = config_from(FitConfig, meta.get("fit") or {}, "fit")
                for k, v in _given(a, a._dests, "fit").items():
                    setattr(fit_cfg, k, v)
                rs = resume_state(meta, arrays)
                if hasattr(a, "lr"):
                    rs["position"]["lr"] = a.lr
            else:
                tcfg = task_cls.Config(**_given(a, a._dests, "task"))
                mcfg = task_cls.ModelConfig(**_given(a, a._dests, "model"))
                defaults = task_cls.fit_defaults_for(mcfg, tcfg)
                fit_cfg = FitConfig(**{**defaults, **_given(a, a._dests, "fit")}).validate()
                if hasattr(tcfg, "seed"):
                    tcfg.seed = fit_cfg.seed
                rs = None
            run.open(resume=a.resume, overwrite=a.overwrite)  # lock, refuse to overwrite
            if not a.resume:
                task = task_cls(tcfg)  # Ctrl-C here saves nothing, and says so
                model = task.build_model(mcfg, seed=fit_cfg.seed)
        try:
            res = fit(task, model, fit_cfg, run, resume_state=rs, progress=a.progress, comm=comm)
        except Interrupted as exc:
            why = "terminated" if exc.terminated else "interrupted"
            if comm.rank == 0:
                print(
                    f"rnnkit: {why}; the position is saved in {exc.checkpoint}: continue with  "
                    f"rnnkit train {a.task} --out {out} --resume",
                    file=sys.stderr,
                )
            return 143 if exc.terminated else 130
        if comm.rank == 0:
            task.after_training(model, res, out, samples=a.samples, seed=fit_cfg.seed)
            b, h = res.best, res.history
            if b is not None and (
                not h or (b["step"], b["epoch"]) != (h[-1]["step"], h[-1]["epoch"])
            ):
                print(
                    f"lowest held-out loss at an epoch's end {b['valid_loss']:.4g}, epoch "
                    f"{b['epoch']:g} (the last: {res.metrics['loss']:.4g}): that model is "
                    f"{res.best_checkpoint}, for eval and predict"
                )
    finally:
        run.close()
    return 0


def _cmd_generate(a) -> int:
    from .generate import generate_text

    for line in generate_text(
        a.checkpoint,
        n=a.num,
        length=a.length,
        prompt=a.prompt,
        temperature=a.temperature,
        top_k=a.top_k,
        allow_unk=a.allow_unk,
        seed=a.seed,
    ):
        print(f"  {line}")
    return 0


def _cmd_eval(a) -> int:
    from .generate import evaluate_checkpoint

    if a.trees is not None:
        from .tasks.runs import load_model

        task, model, _, _ = load_model(a.checkpoint, load_data=False)
        if not hasattr(task, "evaluate_file"):
            raise RnnkitError(
                f"--trees applies to tree models; {a.checkpoint} holds a {task.name} model"
            )
        r = task.evaluate_file(model, a.trees)
        r["checkpoint"] = str(a.checkpoint)
    else:
        r = evaluate_checkpoint(a.checkpoint, a.corpus, a.split)
    if a.json:
        print(json.dumps(r))
    elif "unit" in r:
        print(
            f"{r['tokens']} {r['unit']}s: loss {r['nll']:.4f} nats/{r['unit']}, perplexity "
            f"{r['perplexity']:.2f}, {r['bits']:.3f} bits/{r['unit']}"
        )
    else:
        print(
            "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
        )
    return 0


def _cmd_predict(a) -> int:
    from .tasks.runs import load_model

    task, model, _, _ = load_model(a.checkpoint, load_data=False)
    inputs = a.inputs or [ln.rstrip("\n") for ln in sys.stdin if ln.strip()]
    return task.predict(model, inputs, a)


def _cmd_gradcheck(a) -> int:
    from .gradcheck import check_cells

    ok = True
    for name, err in check_cells(None if a.cell == "all" else a.cell):
        good = err < a.tol
        ok &= good
        print(f"{name:40s} max rel error {err:.2e}  {'ok' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
