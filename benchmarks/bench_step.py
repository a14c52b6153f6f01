"""One training step of rnnkit against PyTorch, same shapes, same work, one run.

Run (from the repository root):

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --cells rnn,lstm,gru --threads 1,2
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --cells rnn --shapes 0,3 --repeats 25
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --memory --cells rnn,lstm,gru
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --profile --cells lstm --shapes 0
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --json /tmp/bench.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step.py --cells lstm --baseline /work/old

What is timed (both sides, float32, time-major inputs, zero initial state):

    forward of the recurrent layer over all T steps          rnnkit: recurrent_forward
    + output linear layer over all steps                      rnnkit: linear_forward
    + summed softmax cross-entropy                            rnnkit: softmax_cross_entropy
    + backward through all of it: BPTT, every weight and      rnnkit: linear_backward,
      bias gradient, and the gradient of the input x                  recurrent_backward

PyTorch side: ``nn.RNN/LSTM/GRU(I, H)`` + ``nn.Linear(H, out)`` +
``F.cross_entropy(..., reduction="sum")`` + ``.backward()``, with ``x.requires_grad_()`` and
gradients reset to None before each step (rnnkit also allocates fresh gradients every step).

Method: for every (cell, shape, thread count) both sides are built from the same weights (rnnkit
loads torch's ``state_dict``), checked once, untimed, to compute the same loss (relative 1e-4;
"check ok"), warmed up, then run alternately (rnnkit, torch, rnnkit, torch, ...) for ``--repeats``
rounds; each side reports its median. ``ratio = torch_ms / rnnkit_ms`` (> 1: rnnkit is faster).
Threads are pinned on BOTH sides: threadpoolctl limits NumPy's BLAS, torch.set_num_threads torch's.

If ``rnnkit.layers._fast`` (the optional numba kernels) can be imported, the rnnkit step is timed
twice per round, with the fast path off (``numpy`` column) and on (``fast`` column), unless
``--no-fast``. The switch is ``_fast.set_enabled(bool)`` if the module has it, else the module
attribute ``_fast.ENABLED``. Without torch only rnnkit times are printed.

Errors: a cell that cannot be built (unknown name, a module that fails to import, a broken
layer), or whose untimed check against torch fails, is not timed; it is printed as ``ERROR`` on
stderr when it happens and again in a summary, the other cells still run, and the benchmark then
exits with status 1 -- a failing cell is never a silent gap in the table.

``--baseline DIR``: also time the recurrent layer of an older checkout (``DIR/rnnkit``, imported
as the package ``rnnkit_base`` from a copy) in the same alternated rounds, on each path (columns
``base-numpy``, ``base-fast``), with the same weights and the same output layer; ``new/base`` is
base ms / current ms (> 1: the current code is faster). Under load this is the fair old-vs-new
comparison: both see the same machine at the same moments.

``--memory``: peak memory of one rnnkit training step (tracemalloc: NumPy reports its buffers to
it), against the bytes the backward pass needs cached -- the arrays of the Cache returned by
``recurrent_forward`` (cache.S and cache.buf, not counting arrays that merely alias a parameter)
plus the logits. Printed as peak / cached (the target is <= 1.5); also (peak - grads) / cached,
since the returned gradients (dx and every weight gradient) are outputs, not temporaries.

Reading the table: ``-`` in a fast column means the cell has no numba path (the Elman cell);
``iqr%`` is the largest interquartile range over median of the sides -- above ~15 the machine was
busy, rerun. The check also compares dx and every weight gradient with torch's (printed, not
asserted). The machine is shared and small (2 cores): with 2 threads, any other busy process makes
both libraries' spinning thread pools (OpenBLAS, torch's OpenMP) collapse, sometimes 10-100x; trust
only 2-thread rows with a small iqr%, and run twice.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rnnkit.functional import softmax_cross_entropy  # noqa: E402
from rnnkit.layers.dense import linear_backward, linear_forward  # noqa: E402
from rnnkit.layers.recurrent import recurrent_backward, recurrent_forward  # noqa: E402

NEUTRAL = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}
from rnnkit.layers.registry import make_recurrent  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is optional: rnnkit times only
    torch = None  # type: ignore[assignment]  # the module, or None without torch

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # optional: NumPy's BLAS threads are then not pinned
    threadpool_limits = threadpool_info = None

try:
    from rnnkit.layers import _fast
except ImportError:
    _fast = None  # type: ignore[assignment]  # the module, or None: numpy path only
if _fast is not None and not getattr(_fast, "AVAILABLE", True):  # module there, numba missing
    print("note: rnnkit.layers._fast present but numba is not importable: numpy path only")
    _fast = None  # type: ignore[assignment]

# (T, B, I, H, out)
SHAPES = [
    (50, 32, 64, 128, 64),
    (50, 32, 256, 512, 256),
    (25, 1, 65, 100, 65),
    (35, 20, 200, 200, 10000),
]
F32 = np.float32
BASE: Any = None  # the --baseline package (rnnkit_base), or None


def load_baseline(root: str):
    """``root/rnnkit`` copied to a temporary folder as ``rnnkit_base`` (absolute imports
    renamed) and imported; its numba kernels compile into that copy's cache."""
    import importlib
    import re
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="rnnkit_base_")
    dst = os.path.join(tmp, "rnnkit_base")
    shutil.copytree(os.path.join(root, "rnnkit"), dst, ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, files in os.walk(dst):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                text = re.sub(r"\b(from|import) rnnkit\b", r"\1 rnnkit_base", text)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
    sys.path.insert(0, tmp)
    mod = importlib.import_module("rnnkit_base")
    for sub in ("layers.recurrent", "layers.registry", "layers._fast"):
        importlib.import_module(f"rnnkit_base.{sub}")
    return mod


def shape_name(s) -> str:
    return "x".join(str(v) for v in s)


# -- the fast-path switch ------------------------------------------------------------------------
def set_fast(on: bool, module=None) -> None:
    mod: Any = _fast if module is None else module
    if mod is None:
        return
    if hasattr(mod, "set_enabled"):
        mod.set_enabled(bool(on))
    else:
        mod.ENABLED = bool(on)


@contextmanager
def fast_path(on: bool | None, module=None):
    """on=None: leave the switch alone; otherwise set it for the block and restore it.
    ``module``: the _fast module to switch (default: this checkout's)."""
    mod: Any = _fast if module is None else module
    if mod is None or on is None:
        yield
        return
    old = getattr(mod, "ENABLED", None)
    set_fast(on, mod)
    try:
        yield
    finally:
        if old is not None:
            set_fast(old, mod)


@contextmanager
def pinned(threads: int):
    """Pin NumPy's BLAS (threadpoolctl) and torch's intra-op pool to the same thread count."""
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    ctx = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else nullcontext()
    try:
        with ctx:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)


def blas_threads() -> str:
    if threadpool_info is None:
        return "?"
    return ",".join(
        f"{i['internal_api']}:{i['num_threads']}"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )


def cell_uses_fast(cell) -> bool:
    """Whether the cell's module refers to the numba kernels (the Elman cell has none)."""
    if _fast is None:
        return False
    src = inspect.getsourcefile(type(cell))
    if src is None:
        return True
    try:
        with open(src) as fh:
            return "_fast" in fh.read()
    except OSError:
        return True


def paths_for(args, cell) -> list:
    """[(column name, fast switch)] to time for this cell."""
    if _fast is None or args.fast is False:
        return [("rnnkit", None)] if _fast is None else [("numpy", False)]
    return [("numpy", False), ("fast", True)] if cell_uses_fast(cell) else [("numpy", False)]


# -- building both sides -------------------------------------------------------------------------
class Problem:
    """Data and weights for one (cell, shape); rnnkit's params are copies of torch's."""

    def __init__(self, cell: str, shape, seed: int = 0):
        T, B, I, H, O = shape
        self.cell_name, self.shape = cell, shape
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((T, B, I)).astype(F32)
        self.tgt = rng.integers(0, O, size=(T, B)).astype(np.int64)
        layer = make_recurrent(cell, I, H, seed=seed, dtype="float32")  # ImportError: cell missing
        self.cell = layer.cell
        if torch is not None:
            torch.manual_seed(seed)
            mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            self.t_rnn = mod(I, H)  # time-major, one layer, tanh for "rnn"
            self.t_lin = torch.nn.Linear(H, O)
            layer.load_state_dict(
                {k: v.detach().numpy() for k, v in self.t_rnn.state_dict().items()}
            )
            self.params = layer.weights()  # the engine's neutral names (w_ih, w_hh, b_ih, b_hh)
            self.Wo = self.t_lin.weight.detach().numpy().copy()
            self.bo = self.t_lin.bias.detach().numpy().copy()
            self.t_x = torch.from_numpy(self.x.copy()).requires_grad_(True)
            self.t_tgt = torch.from_numpy(self.tgt.reshape(-1).copy())
            self.t_params = list(self.t_rnn.parameters()) + list(self.t_lin.parameters())
            if BASE is not None:
                base = BASE.layers.registry.make_recurrent(cell, I, H, seed=seed, dtype="float32")
                base.load_state_dict(layer.state_dict())
                self.base_cell, self.base_params = base.cell, base.weights()
        else:
            self.params = layer.weights()
            k = 1.0 / np.sqrt(H)
            self.Wo = rng.uniform(-k, k, (O, H)).astype(F32)
            self.bo = rng.uniform(-k, k, (O,)).astype(F32)

    def rnnkit_step(self):
        """One training step; returns (loss, dx, recurrent grads, dWo, dbo)."""
        T, B, I, H, O = self.shape
        y, _, cache = recurrent_forward(
            self.cell, self.params, self.x, None, hidden_size=H, dtype=F32
        )
        logits = linear_forward(y, self.Wo, self.bo)
        loss, _, dlogits = softmax_cross_entropy(logits, self.tgt, inplace=True)
        del logits  # drop each array as soon as it is used, as a careful training loop would
        dy, dWo, dbo = linear_backward(y, self.Wo, dlogits)
        del y, dlogits
        dx, _, grads = recurrent_backward(self.cell, self.params, cache, dy)
        return loss, dx, grads, dWo, dbo

    def base_step(self):
        """The same step with the --baseline checkout's recurrent layer."""
        T, B, I, H, O = self.shape
        rec = BASE.layers.recurrent
        y, _, cache = rec.recurrent_forward(
            self.base_cell, self.base_params, self.x, None, hidden_size=H, dtype=F32
        )
        logits = linear_forward(y, self.Wo, self.bo)
        loss, _, dlogits = softmax_cross_entropy(logits, self.tgt, inplace=True)
        del logits
        dy, dWo, dbo = linear_backward(y, self.Wo, dlogits)
        del y, dlogits
        dx, _, grads = rec.recurrent_backward(self.base_cell, self.base_params, cache, dy)
        return loss, dx, grads, dWo, dbo

    def torch_step(self):
        for p in self.t_params:
            p.grad = None
        self.t_x.grad = None
        y, _ = self.t_rnn(self.t_x)
        logits = self.t_lin(y)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.t_tgt, reduction="sum")
        loss.backward()
        return loss

    def check(self) -> str:
        """Untimed: same loss (rel 1e-4); the input and weight gradients are compared as well."""
        loss, dx, grads, dWo, _ = self.rnnkit_step()
        tl = self.torch_step()
        tloss = float(tl.detach())
        rel = abs(loss - tloss) / max(abs(tloss), 1e-30)
        if not rel <= 1e-4:
            raise AssertionError(
                f"{self.cell_name} {shape_name(self.shape)}: loss rnnkit {loss:.6g}"
                f" vs torch {tloss:.6g} (rel {rel:.2e})"
            )

        def relerr(a, b):
            b = b.detach().numpy()
            return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

        g = max(
            relerr(dx, self.t_x.grad),
            relerr(dWo, self.t_lin.weight.grad),
            *(relerr(grads[NEUTRAL[k[:-3]]], p.grad) for k, p in self.t_rnn.named_parameters()),
        )
        return f"check ok (loss rel {rel:.1e}, grads max rel {g:.1e})"


# -- timing --------------------------------------------------------------------------------------
def time_sides(sides: dict, repeats: int, warmup: int) -> dict:
    """sides: name -> callable. Warm up each, then alternate them round-robin, the first side
    rotating from round to round (so that no side always runs right after torch, on the caches
    torch left: at B = 1 that alone moved a side by 30%); medians in ms."""
    for f in sides.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in sides}
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        order = list(sides.items())
        for r in range(repeats):
            for k, f in order[r % len(order) :] + order[: r % len(order)]:
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    finally:
        if was:
            gc.enable()
    return {
        k: {
            "median_ms": 1e3 * statistics.median(v),
            "min_ms": 1e3 * min(v),
            "iqr_ms": 1e3 * (np.percentile(v, 75) - np.percentile(v, 25)),
        }
        for k, v in times.items()
    }


ERRORS: list[str] = []  # every failing cell of this run; main() exits 1 when there is one


def report_error(what: str, exc: BaseException) -> str:
    """Record and print (stderr) a failing cell; returns the one-line message."""
    msg = f"{what}: {type(exc).__name__}: {exc}"
    ERRORS.append(msg)
    print(f"ERROR {msg}", file=sys.stderr, flush=True)
    return msg


def make_problems(cells, shapes):
    """Yield (cell, shape, Problem | None, error): None and the error's message for a cell that
    cannot be built (reported as an error, then the next one is tried)."""
    for cell in cells:
        for shape in shapes:
            try:
                prob = Problem(cell, shape)
            except Exception as exc:  # reported, and the run exits 1 at the end
                yield cell, shape, None, report_error(f"{cell} {shape_name(shape)}: not built", exc)
                continue
            yield cell, shape, prob, ""


def run_speed(args, cells, shapes) -> list[dict]:
    use_fast = _fast is not None and args.fast is not False
    columns = (
        [("numpy", False), ("fast", True)]
        if use_fast
        else [("rnnkit", None)]
        if _fast is None
        else [("numpy", False)]
    )
    if args.fast and _fast is None:
        print("note: --fast given but rnnkit.layers._fast is not importable; numpy path only")
    results = []
    for cell, shape, prob, _ in make_problems(cells, shapes):
        if prob is None:  # reported as an error already
            continue
        paths = paths_for(args, prob.cell)
        for threads in args.threads:
            with pinned(threads):
                checks = []
                try:
                    if torch is not None:
                        for pname, on in paths:
                            with fast_path(on):
                                checks.append((pname, prob.check()))
                except (
                    Exception
                ) as exc:  # not the same work: reported, not timed, exit 1 at the end
                    msg = report_error(
                        f"{cell} {shape_name(shape)} th={threads}: check against torch failed", exc
                    )
                    results.append(
                        {
                            "cell": cell,
                            "shape": list(shape),
                            "threads": threads,
                            "check_failed": msg,
                        }
                    )
                    continue
                sides = {}
                for pname, on in paths:

                    def f(on=on, prob=prob):
                        with fast_path(on):
                            prob.rnnkit_step()

                    sides[pname] = f
                if BASE is not None and torch is not None:
                    for pname, on in paths:

                        def fb(on=on, prob=prob):
                            with fast_path(on, BASE.layers._fast):
                                prob.base_step()

                        sides[f"base-{pname}"] = fb
                if torch is not None:
                    sides["torch"] = prob.torch_step
                r = time_sides(sides, args.repeats, args.warmup)
                rec = {
                    "cell": cell,
                    "shape": list(shape),
                    "threads": threads,
                    "blas_threads": blas_threads(),
                    "check": dict(checks),
                    "times": r,
                }
                if torch is not None:
                    for pname, _ in paths:
                        rec[f"ratio_{pname}"] = r["torch"]["median_ms"] / r[pname]["median_ms"]
                        if f"base-{pname}" in r:
                            b = r[f"base-{pname}"]["median_ms"]
                            rec[f"ratio_base-{pname}"] = r["torch"]["median_ms"] / b
                            rec[f"new/base_{pname}"] = b / r[pname]["median_ms"]
                results.append(rec)
                line = f"  {cell:4s} {shape_name(shape):18s} th={threads} " + "  ".join(
                    f"{k}={v['median_ms']:.2f}ms" for k, v in r.items()
                )
                if torch is not None:
                    line += "  " + "; ".join(f"{p}: {c}" for p, c in checks)
                print(line, flush=True)
    print_table(results, columns, torch is not None)
    if BASE is not None:
        print_baseline(results, columns)
    if use_fast and any("fast" not in r["times"] for r in results):
        print("-: the cell has no numba path (its module does not use rnnkit.layers._fast)")
    return results


def print_table(results, paths, have_torch):
    cols = ["cell", "shape (T,B,I,H,out)", "thr"]
    for pname, _ in paths:
        cols.append("rnnkit ms" if pname == "rnnkit" else f"rnnkit-{pname} ms")
    if have_torch:
        cols.append("torch ms")
        for pname, _ in paths:
            cols.append("ratio" if pname == "rnnkit" else f"ratio {pname}")
    cols.append("iqr%")
    rows = []
    for r in results:
        if "check_failed" in r:
            continue
        row = [r["cell"], ",".join(map(str, r["shape"])), str(r["threads"])]
        row += [f"{r['times'][p]['median_ms']:.2f}" if p in r["times"] else "-" for p, _ in paths]
        if have_torch:
            row.append(f"{r['times']['torch']['median_ms']:.2f}")
            row += [f"{r[f'ratio_{p}']:.2f}" if f"ratio_{p}" in r else "-" for p, _ in paths]
        row.append(f"{max(100 * v['iqr_ms'] / v['median_ms'] for v in r['times'].values()):.0f}")
        rows.append(row)
    w = [
        max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)
    ]
    print()
    print("  ".join(c.rjust(w[i]) if i > 1 else c.ljust(w[i]) for i, c in enumerate(cols)))
    print("  ".join("-" * x for x in w))
    for row in rows:
        print("  ".join(v.rjust(w[i]) if i > 1 else v.ljust(w[i]) for i, v in enumerate(row)))
    if have_torch:
        print("ratio = torch ms / rnnkit ms (median); > 1 means rnnkit is faster")
    print(
        "iqr% = largest interquartile range / median of the sides: above ~15, rerun (noisy machine)"
    )


def print_baseline(results, paths):
    """The --baseline comparison: medians, min, and ratios per path."""
    print("\nagainst --baseline (same rounds): ms median (min); ratio = torch / side")
    for r in results:
        if "check_failed" in r:
            continue
        t = r["times"]
        for p, _ in paths:
            if f"base-{p}" not in t:
                continue
            new, base, th = t[p], t[f"base-{p}"], t["torch"]
            print(
                f"  {r['cell']:4s} {','.join(map(str, r['shape'])):19s} {p:5s} "
                f"new {new['median_ms']:8.2f} ({new['min_ms']:8.2f})  "
                f"base {base['median_ms']:8.2f} ({base['min_ms']:8.2f})  "
                f"torch {th['median_ms']:8.2f} ({th['min_ms']:8.2f})  "
                f"ratio new {r[f'ratio_{p}']:.2f} base {r[f'ratio_base-{p}']:.2f}  "
                f"new/base {r[f'new/base_{p}']:.3f}"
            )


# -- memory --------------------------------------------------------------------------------------
def cached_bytes(cache, params) -> int:
    """nbytes of the cache's own arrays (S and buf), skipping any that alias a parameter."""
    arrays = list(cache.S)
    stack = list(cache.buf.values())
    while stack:  # buf values may be arrays or tuples / lists / dicts of arrays
        v = stack.pop()
        if isinstance(v, np.ndarray):
            arrays.append(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    seen, total = set(), 0
    for a in arrays:
        if id(a) in seen or any(np.shares_memory(a, p) for p in params.values()):
            continue
        seen.add(id(a))
        total += a.nbytes
    return total


def run_memory(args, cells, shapes) -> list[dict]:
    results = []
    print(
        f"{'cell':4s}  {'shape (T,B,I,H,out)':20s} {'path':6s} {'peak MB':>9s} {'cached MB':>9s}"
        f" {'logits MB':>9s} {'grads MB':>9s} {'peak/cached':>11s} {'(peak-grads)/cached':>19s}"
    )
    for cell, shape, prob, _ in make_problems(cells, shapes):
        if prob is None:  # reported as an error already
            continue
        T, B, I, H, O = shape
        for pname, on in paths_for(args, prob.cell):
            with fast_path(on):
                prob.rnnkit_step()  # warm (JIT, first-call allocations)
                y, _, cache = recurrent_forward(
                    prob.cell, prob.params, prob.x, None, hidden_size=H, dtype=F32
                )
                logits = linear_forward(y, prob.Wo, prob.bo)
                need = cached_bytes(cache, prob.params) + logits.nbytes
                lbytes = logits.nbytes
                del y, cache, logits
                gc.collect()
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
                out = prob.rnnkit_step()
                peak = tracemalloc.get_traced_memory()[1] - base
                tracemalloc.stop()
                _, dx, grads, dWo, dbo = out
                gbytes = dx.nbytes + dWo.nbytes + dbo.nbytes + sum(g.nbytes for g in grads.values())
                del out, dx, grads, dWo, dbo
            rec = {
                "cell": cell,
                "shape": list(shape),
                "path": pname,
                "peak_bytes": peak,
                "cached_bytes": need,
                "logits_bytes": lbytes,
                "grad_bytes": gbytes,
                "ratio": peak / need,
                "ratio_without_grads": (peak - gbytes) / need,
            }
            results.append(rec)
            print(
                f"{cell:4s}  {','.join(map(str, shape)):20s} {pname:6s} {peak / 1e6:9.2f} "
                f"{need / 1e6:9.2f} {lbytes / 1e6:9.2f} {gbytes / 1e6:9.2f} {peak / need:11.2f} "
                f"{(peak - gbytes) / need:19.2f}",
                flush=True,
            )
    print(
        "peak = tracemalloc peak of one step (forward + loss + backward, grads included);"
        " cached = cache.S + cache.buf (own arrays) + logits; target peak/cached <= 1.5;"
        " grads = dx + every weight/bias gradient returned (outputs, not temporaries)"
    )
    return results


# -- profile -------------------------------------------------------------------------------------
def run_profile(args, cells, shapes):
    for cell, shape, prob, _ in make_problems(cells, shapes):
        if prob is None:  # reported as an error already
            continue
        with pinned(args.threads[0]):
            for _ in range(args.warmup):
                prob.rnnkit_step()
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(args.repeats):
                prob.rnnkit_step()
            pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
        print(f"=== {cell} {shape_name(shape)}: {args.repeats} steps, threads={args.threads[0]}")
        print(s.getvalue())


# -- main ----------------------------------------------------------------------------------------
def parse_shapes(spec: str | None):
    if not spec or spec == "all":
        return list(SHAPES)
    out: list[tuple[int, ...]] = []
    for part in spec.split(","):
        part = part.strip()
        if part.isdigit():
            out.append(SHAPES[int(part)])
        else:
            out.append(tuple(int(v) for v in part.split("x")))
    return out


def main(argv=None) -> int:
    """Run the benchmark; returns the exit status (1 when a cell failed: see ``ERRORS``)."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma list of rnn,lstm,gru")
    p.add_argument("--threads", default="1", help="comma list of thread counts, e.g. 1,2")
    p.add_argument(
        "--shapes",
        default="all",
        help="comma list of indices into "
        + " ".join(f"{i}={shape_name(s)}" for i, s in enumerate(SHAPES))
        + ", or TxBxIxHxOUT shapes",
    )
    p.add_argument("--repeats", type=int, default=15, help="timed rounds per side (>= 15 advised)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--fast",
        dest="fast",
        action="store_true",
        default=None,
        help="also time rnnkit.layers._fast on (default when it exists)",
    )
    p.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="time only the NumPy path even if _fast exists",
    )
    p.add_argument("--memory", action="store_true", help="peak memory vs cached activations")
    p.add_argument("--profile", action="store_true", help="cProfile the rnnkit step instead")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--baseline", metavar="DIR", help="also time DIR/rnnkit (an older checkout)")
    args = p.parse_args(argv)
    if args.baseline:
        global BASE
        BASE = load_baseline(args.baseline)
    args.threads = [int(t) for t in args.threads.split(",")]
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    shapes = parse_shapes(args.shapes)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__ if torch is not None else 'absent'}, "
        f"cores {os.cpu_count()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
        f"_fast {'present' if _fast is not None else 'absent'}, repeats {args.repeats}"
    )
    if threadpool_limits is None:
        print("note: threadpoolctl missing: NumPy's BLAS threads are not pinned")
    if torch is None:
        print("note: torch missing: rnnkit times only")

    results: dict[str, Any]
    if args.memory:
        results = {"memory": run_memory(args, cells, shapes)}
    elif args.profile:
        run_profile(args, cells, shapes)
        return _summary()
    else:
        results = {"speed": run_speed(args, cells, shapes)}
    if args.json:
        results["meta"] = {
            "numpy": np.__version__,
            "torch": getattr(torch, "__version__", None),
            "repeats": args.repeats,
            "fast_module": _fast is not None,
            "load_avg": os.getloadavg(),
        }
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        print(f"wrote {args.json}")
    return _summary()


def _summary() -> int:
    """Repeat the errors at the end, where they are seen; 1 if there was one, else 0."""
    if not ERRORS:
        return 0
    print(f"\n{len(ERRORS)} cell(s) FAILED (not timed):", file=sys.stderr)
    for msg in ERRORS:
        print(f"  ERROR {msg}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
