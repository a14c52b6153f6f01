"""``rnnkit bench memory --out DIR``: which models remember across T steps (DL book 10.7).

Trains the Elman RNN, leaky units (learned time constants), skip connections through time
(delays 1, 2, 4, 8), the LSTM and the GRU -- and fits an echo state network -- on the adding
problem and the copy task for T in {10, 20, 50, 100, 200}, and writes

* ``DIR/memory.json``: the settings and one record per (task, model, T);
* ``DIR/memory.md``: a Markdown table per task;
* ``DIR/memory.png``: success against T, one line per model (matplotlib, Agg canvas);
* ``DIR/runs/TASK-T{T}-MODEL/``: each trained run (checkpoint, metrics, loss curve), so that
  ``rnnkit inspect gradients`` and ``rnnkit train TASK --out ... --resume`` work on them.

Success: adding, 1 - MSE / (1/6) (the share of the always-1 baseline's error removed; 0 when worse);
copy, the accuracy on the recall steps (chance 1/8). "Solved": adding MSE < 0.1 x 1/6, copy
recall accuracy >= 0.9.

Equal parameter budgets: every trained model gets the hidden size whose trainable parameter count
(recurrent layer and output layer) is closest to that of an LSTM with ``--reference-hidden``
units (32) on the same task; e.g. on the adding problem LSTM 32 units (4,641 parameters), GRU 37,
Elman 66, leaky 65, skip 33. The echo state network is the exception: its reservoir of
400 units is fixed and random (``ESN_SETTINGS``: spectral radius 0.99, leak rate 0.05, bias
scaling 0.2, ridge 1e-4 -- the best of six settings tried on T = 20 and 100), and only its ridge
readout is fitted, in closed form, on 2,000 sequences: on the final state (adding) or on the
states of the recall steps (copy).

Each trained run uses the task's training loop (``rnnkit.fit``: Adam, clipping at 1, batches of
20, fresh sequences every epoch; learning rate 1e-2, or 1e-3 for the Elman, skip and clockwork
cells, see ``LEARNING_RATES``) until it is done (adding: MSE < 1/50 of the baseline,
0.0033; copy: recall accuracy >= 0.99) or its ``--time-budget`` is spent: seconds of CPU time of
its process (``time.process_time``), so that a busy machine gives every run the same computation,
only later. ``--jobs`` runs that many in parallel processes, each with one BLAS thread.
The copy task asks for 3 symbols of 8 (``BenchConfig.copy_recall``) instead of Arjovsky et al.'s
10, so that a budget of seconds can show a difference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RnnkitError
from .args import csv_list, nonnegative_int, positive_float, positive_int

__all__ = ["BenchConfig", "run_bench", "hidden_for_budget", "add_parser", "run"]

MODELS = ("rnn", "leaky", "skip", "esn", "lstm", "gru")
EXTRA_MODELS = ("clockwork", "leaky-fixed")
LENGTHS = (10, 20, 50, 100, 200)
TASKS = ("adding", "copy")
ADDING_BASELINE = 1.0 / 6.0
CHANCE = 1.0 / 8.0  # copy: 8 symbols
# Adam's learning rate per model: the better of 1e-2 and 1e-3 in probes on the adding problem
# (T = 10 to 100); at 1e-2 the Elman and skip cells did not learn it even at T = 10
LEARNING_RATES = {"rnn": 1e-3, "skip": 1e-3, "clockwork": 1e-3}
DEFAULT_LR = 1e-2
# the echo state network's reservoir (the same for every task and T); a sparse input
# (connectivity 0.1) remembers a little better here than ESN's dense default (docs/long_memory.md)
ESN_SETTINGS: dict[str, Any] = dict(
    spectral_radius=0.99,
    leak_rate=0.05,
    input_scaling=1.0,
    input_connectivity=0.1,
    bias_scaling=0.2,
    ridge=1e-4,
)


@dataclass
class BenchConfig:
    out: str = "runs/memory"
    models: tuple = MODELS
    lengths: tuple = LENGTHS
    tasks: tuple = TASKS
    time_budget: float = 30.0  # CPU seconds per trained run
    jobs: int = 2
    seed: int = 0
    reference_hidden: int = 32  # the LSTM size that sets the parameter budget
    copy_recall: int = 3
    batch_size: int = 20
    lr: float | None = None  # None: LEARNING_RATES, else DEFAULT_LR
    valid_size: int = 500
    esn_units: int = 400
    esn_train: int = 2000  # sequences the ESN readout is fitted on
    quick: bool = False

    def validate(self) -> BenchConfig:
        bad = [m for m in self.models if m not in MODELS + EXTRA_MODELS]
        if bad or not self.models:
            raise RnnkitError(
                f"unknown model(s) {', '.join(bad) or '(none)'}; choose from "
                f"{', '.join(MODELS + EXTRA_MODELS)}"
            )
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise RnnkitError(
                f"unknown task(s) {', '.join(bad) or '(none)'}; choose from adding, copy"
            )
        if not self.lengths or min(self.lengths) < 2:
            raise RnnkitError(f"lengths must be integers >= 2, got {self.lengths}")
        if not (self.time_budget > 0 and math.isfinite(self.time_budget)):
            raise RnnkitError(f"--time-budget must be a positive number, got {self.time_budget}")
        return self


def quick_config(cfg: BenchConfig) -> BenchConfig:
    """``--quick``: tiny everything, for tests (seconds, not minutes)."""
    return replace(
        cfg,
        lengths=(5, 8) if cfg.lengths == LENGTHS else cfg.lengths,
        time_budget=min(cfg.time_budget, 1.0),
        valid_size=50,
        esn_units=40,
        esn_train=100,
        reference_hidden=min(cfg.reference_hidden, 8),
        quick=True,
    )


# -- models and their budgets -------------------------------------------------------------------
def _task(name: str, T: int, cfg: BenchConfig, train_size: int | None = None):
    from ..tasks import get_task

    cls = get_task(name)
    kw = dict(length=T, valid_size=cfg.valid_size, batch_size=cfg.batch_size, seed=cfg.seed)
    if name == "copy":
        kw["recall"] = cfg.copy_recall
        steps = T + 2 * cfg.copy_recall
    else:
        steps = T
    # an epoch of about 600,000 sequence steps (a few seconds): evaluations stay a small share
    kw["train_size"] = train_size or int(np.clip(600_000 // steps, 200, 60_000))
    if cfg.quick:
        kw["train_size"] = min(kw["train_size"], 200)
    return cls(cls.Config(**kw))


def _n_params(task, cell: str, hidden: int) -> int:
    from ..models.sequence import MemoryModelConfig

    model = task.build_model(MemoryModelConfig(cell=cell, hidden_size=hidden))
    return sum(p.size for p in model.parameters().values())


def hidden_for_budget(task, cell: str, reference_hidden: int = 32) -> tuple[int, int, int]:
    """(hidden size, its parameter count, the budget): the hidden size of ``cell`` whose
    trainable parameter count on ``task`` is closest to an LSTM's of ``reference_hidden`` units."""
    budget = _n_params(task, "lstm", reference_hidden)
    lo, hi = 1, 8 * reference_hidden + 8
    while lo < hi:  # the smallest H with count >= budget (counts grow with H)
        mid = (lo + hi) // 2
        if _n_params(task, cell, mid) >= budget:
            hi = mid
        else:
            lo = mid + 1
    best = min(
        (h for h in (lo - 1, lo) if h >= 1), key=lambda h: abs(_n_params(task, cell, h) - budget)
    )
    return best, _n_params(task, cell, best), budget


# -- one run ------------------------------------------------------------------------------------
def _solved(task_name: str, m: dict) -> bool:
    if task_name == "adding":
        return m["mse"] < 0.1 * ADDING_BASELINE
    return m["accuracy"] >= 0.9


def _done(task_name: str, m: dict) -> bool:
    """Good enough to stop training early."""
    if task_name == "adding":
        return m["mse"] < ADDING_BASELINE / 50
    return m["accuracy"] >= 0.99


def _success(task_name: str, m: dict) -> float:
    if task_name == "adding":
        return max(0.0, 1.0 - m["mse"] / ADDING_BASELINE)
    return float(m["accuracy"])


def _record(task_name, model, T, m, **kw) -> dict:
    r = {"task": task_name, "model": model, "T": T, **kw}
    r["metric"] = m["mse"] if task_name == "adding" else m["accuracy"]
    r.update(
        success=_success(task_name, m),
        solved=bool(_solved(task_name, m)),
        loss=m.get("loss"),
        relative_loss=m.get("relative_loss"),
    )
    return r


def train_one(task_name: str, cell: str, T: int, cfg: BenchConfig) -> dict:
    """Train one model on one task until solved or out of time; its run folder is kept."""
    from ..fit import FitConfig, fit
    from ..models.sequence import MemoryModelConfig
    from ..rundir import RunDir, load_run, resume_state

    task = _task(task_name, T, cfg)
    hidden, n_params, _ = hidden_for_budget(task, cell, cfg.reference_hidden)
    model = task.build_model(MemoryModelConfig(cell=cell, hidden_size=hidden), seed=cfg.seed)
    lr = cfg.lr if cfg.lr is not None else LEARNING_RATES.get(cell, DEFAULT_LR)
    fcfg = FitConfig(**{**task.fit_defaults, "lr": lr, "seed": cfg.seed, "log_every": 100})
    run_dir = RunDir(Path(cfg.out) / "runs" / f"{task_name}-T{T}-{cell}")
    t0, cpu0 = time.perf_counter(), time.process_time()
    rs, res, epochs = None, None, 0
    run_dir.open(overwrite=True)
    try:
        # the budget is CPU time of this process: fit stops on wall-clock time, so on a busy
        # machine it is called again (resuming exactly) until the CPU seconds are spent; an
        # epoch per call otherwise, so that a solved run stops at the end of its epoch
        while True:
            left = cfg.time_budget - (time.process_time() - cpu0)
            if res is not None and left < 0.05 * cfg.time_budget:
                break
            if res is None or res.stopped_by != "time_budget":
                epochs += 1
            res = fit(
                task,
                model,
                replace(fcfg, epochs=epochs, time_budget=left),
                run_dir,
                resume_state=rs,
                log=lambda *a: None,
                progress=False,
            )
            if _done(task_name, res.metrics):
                break
            rs = resume_state(*load_run(run_dir.checkpoint))
    finally:
        run_dir.close()
    cpu = time.process_time() - cpu0
    return _record(
        task_name,
        cell,
        T,
        res.metrics,
        hidden_size=hidden,
        params=n_params,
        lr=lr,
        steps=res.steps,
        seconds=round(cpu, 2),
        wall_seconds=round(time.perf_counter() - t0, 2),
        stopped="solved" if _done(task_name, res.metrics) else "time_budget",
        run=str(run_dir.path),
    )


def esn_one(task_name: str, T: int, cfg: BenchConfig) -> dict:
    """Fit an echo state network's readout in closed form (ridge regression) and score it on the
    same held-out sequences as the trained models."""
    from ..reservoir import ESN, ridge_fit

    t0, cpu0 = time.perf_counter(), time.process_time()
    task = _task(task_name, T, cfg, train_size=cfg.esn_train)
    esn = ESN(cfg.esn_units, seed=cfg.seed, **ESN_SETTINGS)
    x_tr, y_tr = task.make_data(cfg.esn_train, np.random.default_rng([cfg.seed, 2]))
    x_va, y_va = task.valid
    if task_name == "adding":

        def feats(x):
            return np.concatenate(
                [
                    esn.sequence_features(x[:, i : i + 250].astype(np.float64), feature="last")
                    for i in range(0, x.shape[1], 250)
                ]
            )

        W, c = ridge_fit(feats(x_tr), y_tr, esn.ridge)
        mse = float(np.mean((feats(x_va) @ W.T + c - y_va) ** 2))
        m: dict[str, Any] = {"mse": mse, "loss": mse, "relative_loss": mse / ADDING_BASELINE}
    else:
        V, r = task.sizes()[0], cfg.copy_recall

        def feats(ids):  # the states at the recall steps: (r * B, units)
            rows = []
            for i in range(0, ids.shape[1], 250):
                esn.reset()
                S = esn.run(np.eye(V)[ids[:, i : i + 250]])
                rows.append(S[-r:].reshape(-1, S.shape[-1]))
            return np.concatenate(rows)

        W, c = ridge_fit(feats(x_tr), np.eye(V)[y_tr[-r:].reshape(-1)], esn.ridge)
        pred = (feats(x_va) @ W.T + c).argmax(axis=1)
        m = {
            "accuracy": float(np.mean(pred == y_va[-r:].reshape(-1))),
            "loss": None,
            "relative_loss": None,
        }
    out_w = W.size + c.size
    return _record(
        task_name,
        "esn",
        T,
        m,
        hidden_size=cfg.esn_units,
        params=int(out_w),
        steps=0,
        seconds=round(time.process_time() - cpu0, 2),
        wall_seconds=round(time.perf_counter() - t0, 2),
        stopped="closed form",
        run=None,
    )


def _job(spec: tuple) -> dict:
    """One (task, model, T) in a worker process: one BLAS thread."""
    task_name, model, T, cfg = spec
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    if model == "esn":
        return esn_one(task_name, T, cfg)
    return train_one(task_name, model, T, cfg)


# -- the whole benchmark ------------------------------------------------------------------------
def run_bench(cfg: BenchConfig, log=print) -> dict:
    """Run every (task, model, T) and write memory.json, memory.md and memory.png to cfg.out."""
    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # longest first, so that parallel workers finish together
    specs = sorted(
        ((t, m, T, cfg) for t in cfg.tasks for m in cfg.models for T in cfg.lengths),
        key=lambda s: (-s[2], s[1] == "esn"),
    )
    t0 = time.perf_counter()
    results = []

    def done(r):
        results.append(r)
        log(
            f"[{len(results)}/{len(specs)}] {r['task']:6s} T={r['T']:<4d} {r['model']:11s} "
            f"{'mse' if r['task'] == 'adding' else 'acc'} {r['metric']:.4g}"
            f"{'  solved' if r['solved'] else ''}  ({r['seconds']:.0f} s, {r['stopped']})"
        )

    if cfg.jobs <= 1:
        for s in specs:
            done(_job(s))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(cfg.jobs, mp_context=mp.get_context("spawn")) as ex:
            for f in as_completed([ex.submit(_job, s) for s in specs]):
                done(f.result())
    order = {
        (t, m, T): i
        for i, (t, m, T, _) in enumerate(
            (t, m, T, None) for t in cfg.tasks for m in cfg.models for T in cfg.lengths
        )
    }
    results.sort(key=lambda r: order[(r["task"], r["model"], r["T"])])
    report = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "results": results,
    }
    tmp = out / "memory.json.tmp"
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    tmp.replace(out / "memory.json")
    (out / "memory.md").write_text(markdown_table(report), encoding="utf-8")
    plot_success(report, out / "memory.png")
    return report


def markdown_table(report: dict) -> str:
    """One table per task: rows are models, columns the lengths T; bold = solved."""
    cfg, res = report["config"], report["results"]
    lines = []
    for task in cfg["tasks"]:
        what = (
            "held-out MSE (always answering 1: 0.167; solved: < 0.0167)"
            if task == "adding"
            else f"held-out accuracy on the {cfg['copy_recall']} recall steps (chance 0.125; "
            f"solved: >= 0.9)"
        )
        lines += [
            f"**{task}**: {what}; **bold** = solved",
            "",
            "| model | hidden | parameters | "
            + " | ".join(f"T={T}" for T in cfg["lengths"])
            + " |",
            "|---|---:|---:|" + "---:|" * len(cfg["lengths"]),
        ]
        for m in cfg["models"]:
            rows = {r["T"]: r for r in res if r["task"] == task and r["model"] == m}
            if not rows:
                continue
            any_r = next(iter(rows.values()))
            cells = []
            for T in cfg["lengths"]:
                r = rows.get(T)
                if r is None:
                    cells.append("")
                    continue
                v = f"{r['metric']:.4f}" if task == "adding" else f"{r['metric']:.3f}"
                cells.append(f"**{v}**" if r["solved"] else v)
            params = f"{any_r['params']:,}" + (" (readout)" if m == "esn" else "")
            lines.append(f"| {m} | {any_r['hidden_size']} | {params} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        f"{len(res)} runs in {report['seconds']:.0f} s; at most {cfg['time_budget']:g} CPU "
        f"seconds of training per run, {cfg['jobs']} in parallel."
    )
    return "\n".join(lines) + "\n"


def plot_success(report: dict, path) -> None:
    """Success against T (log axis), one line per model, one panel per task."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnkitError("the plot needs matplotlib (pip install matplotlib)") from None
    cfg, res = report["config"], report["results"]
    fig = Figure(figsize=(5.2 * len(cfg["tasks"]), 4.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(cfg["tasks"])))
    for ax, task in zip(axes, cfg["tasks"]):
        for m in cfg["models"]:
            pts = sorted(
                (r["T"], r["success"]) for r in res if r["task"] == task and r["model"] == m
            )
            if pts:
                ax.plot(*zip(*pts), "o-", lw=1.6, label=m)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(cfg["lengths"]), [str(T) for T in cfg["lengths"]])
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("T (steps between what must be remembered and the answer)")
        if task == "adding":
            ax.set_ylabel("1 - MSE / 0.167")
            ax.set_title("adding problem")
        else:
            ax.axhline(CHANCE, color="gray", ls=":", lw=1)
            ax.set_ylabel("recall accuracy")
            ax.set_title(f"copy task ({cfg['copy_recall']} symbols)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    tmp = Path(str(path) + ".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)


# -- command line -------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    """``bench memory`` under the CLI's subcommands."""
    p = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks.")
    sub = p.add_subparsers(dest="bench_what", required=True, metavar="WHAT")
    d = BenchConfig()
    b = sub.add_parser(
        "memory",
        help="long-term dependencies: models x tasks x lengths",
        description="Train Elman, leaky, skip-through-time, LSTM and GRU networks "
        "(equal parameter budgets) and fit an echo state network on the adding and "
        "copy tasks for several lengths T; write memory.json, memory.md and "
        "memory.png to --out.",
    )
    b.add_argument("--out", default=d.out, help=f"output folder (default: {d.out})")
    b.add_argument(
        "--models",
        type=csv_list(str, MODELS + EXTRA_MODELS),
        default=d.models,
        help=f"comma-separated (default: {','.join(d.models)}; also {','.join(EXTRA_MODELS)})",
    )
    b.add_argument(
        "--lengths",
        type=csv_list(int),
        default=d.lengths,
        help=f"values of T (default: {','.join(map(str, d.lengths))})",
    )
    b.add_argument(
        "--tasks", type=csv_list(str, TASKS), default=d.tasks, help="(default: adding,copy)"
    )
    b.add_argument(
        "--time-budget",
        type=positive_float,
        default=d.time_budget,
        help=f"CPU seconds of training per run (default: {d.time_budget:g})",
    )
    b.add_argument(
        "--jobs",
        type=positive_int,
        default=d.jobs,
        help=f"runs in parallel, one BLAS thread each (default: {d.jobs})",
    )
    b.add_argument("--seed", type=nonnegative_int, default=d.seed, help=f"(default: {d.seed})")
    b.add_argument(
        "--reference-hidden",
        type=positive_int,
        default=d.reference_hidden,
        help="LSTM units that set the parameter budget (default: 32)",
    )
    b.add_argument("--quick", action="store_true", help="tiny sizes and budgets (a smoke test)")
    return p


def run(args) -> int:
    """Run ``bench memory`` from parsed arguments; returns the exit status."""
    cfg = BenchConfig(
        out=args.out,
        models=tuple(args.models),
        lengths=tuple(args.lengths),
        tasks=tuple(args.tasks),
        time_budget=args.time_budget,
        jobs=args.jobs,
        seed=args.seed,
        reference_hidden=args.reference_hidden,
    )
    if args.quick:
        cfg = quick_config(cfg)
    report = run_bench(cfg)
    print(markdown_table(report))
    print(f"wrote {Path(cfg.out) / 'memory.json'}, memory.md, memory.png")
    return 0
