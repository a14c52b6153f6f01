"""Data-parallel scaling on one machine (loopback): steps/s and tokens/s for K ranks, the bytes
one step sums, the time of an Allreduce per MB, and the model of docs/mpi.md fitted to them.

Run (from the repository root; Open MPI as root also needs OMPI_ALLOW_RUN_AS_ROOT=1 and
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1):

    python benchmarks/bench_mpi.py                      # K = 1, 2; a few seconds per config
    python benchmarks/bench_mpi.py --ranks 1,2,4 --seconds 5 --json /tmp/mpi.json

The driver starts ``mpirun -n K python benchmarks/bench_mpi.py --worker ...`` for each K. Each
worker pins one BLAS thread, builds a character language model on the embedded corpus and runs
the training loop's step exactly as ``rnnkit.fit.fit`` does it (this rank's shard of the global
batch, loss and gradient sums, ONE ``Allreduce`` of every gradient, the loss and the count in one
buffer, the division by the global count, clipping, Adam), untimed warm-up steps first, then as
many steps as fit in ``--seconds``. Reported per config and K: steps/s, global tokens/s, the
buffer's bytes, the time per step inside the Allreduce (waiting for the slower rank included)
and the compute time per step (the rest). Then, with K ranks, an Allreduce of buffers from 64 KB
to 16 MB: seconds per MB (fitted t = a + b * MB).

The machine is small and shared (2 cores, other people's jobs): K=2 on 2 cores competes with
whatever else runs; repeat runs and read the iqr-free medians with care.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (name, cell, hidden, embed, layers, global batch, bptt)
CONFIGS = [
    ("rnn-128  B32", "rnn", 128, 64, 1, 32, 64),
    ("lstm-256 B32", "lstm", 256, 64, 1, 32, 64),
    ("lstm-512 B64", "lstm", 512, 128, 1, 64, 32),
]


def _worker(args) -> None:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from rnnkit.models.lm import LMConfig
    from rnnkit.models.protocol import StepOut
    from rnnkit.optim import clip_grad_norm, make_optimizer
    from rnnkit.parallel import world
    from rnnkit.tasks.lm import LMDataConfig, LMTask

    threadpool_limits(1)
    comm = world()
    configs: list[dict] = []
    out = {"K": comm.size, "configs": configs}
    names = set(args.configs.split(",")) if args.configs else None
    for name, cell, H, D, L, B, T in CONFIGS:
        if names and name.split()[0] not in names:
            continue
        task = LMTask(LMDataConfig(level="char", batch_size=B, bptt=T))
        model = task.build_model(LMConfig(embed_size=D, hidden_size=H, cell=cell, num_layers=L))
        params = model.parameters()
        opt = make_optimizer("adam", 1e-3)
        batches = task.batches("train", np.random.default_rng(0))
        carry = None
        t_comm = 0.0
        n_steps, tokens = 0, 0
        t0: float | None = None
        warm = 3
        i = 0
        while True:
            batch = batches[i % len(batches)]
            i += 1
            if comm.size > 1:
                batch = task.shard(batch, comm.rank, comm.size)
            r = (
                model.loss_and_grads(batch, carry)
                if batch is not None
                else StepOut(0.0, 0, {k: np.zeros_like(p) for k, p in params.items()})
            )
            carry = r.carry
            grads = r.grads or {}
            over = t0 is not None and time.perf_counter() - t0 >= args.seconds
            ta = time.perf_counter()
            loss, n, (stop, _, _) = comm.allreduce_grads(grads, r.loss_sum, r.count, (over, 0, 0))
            tb = time.perf_counter()
            for g in grads.values():
                g *= 1.0 / n
            clip_grad_norm(grads, 5.0)
            opt.step(params, grads)
            if i == warm:  # every rank starts timing after the same step's Allreduce
                t0 = time.perf_counter()
            elif i > warm:
                n_steps, tokens, t_comm = n_steps + 1, tokens + n, t_comm + (tb - ta)
                if stop:  # decided together, as fit decides its time budget
                    break
        wall = time.perf_counter() - (t0 if t0 is not None else time.perf_counter())
        shard_ms = {}
        if comm.size == 1:  # compute alone for a rank's share of the global batch: t_c(B / k)
            parts = {k: task.shard(batches[0], 0, k) for k in (1, 2, 4, 8)}
            ts: dict[int, list[float]] = {k: [] for k in parts}
            for _ in range(args.reps):  # interleaved, so that other jobs disturb every k alike
                for k, part in parts.items():
                    t = time.perf_counter()
                    model.loss_and_grads(part, None)
                    ts[k].append(time.perf_counter() - t)
            shard_ms = {k: 1e3 * sorted(v)[len(v) // 2] for k, v in ts.items()}  # median
        nbytes = getattr(comm, "buffer_bytes", 0) or sum(p.nbytes for p in params.values()) + 24
        configs.append(
            {
                "name": name,
                "params": int(sum(p.size for p in params.values())),
                "steps": n_steps,
                "steps_per_s": n_steps / wall,
                "tokens_per_s": tokens / wall,
                "tokens_per_step": tokens / max(n_steps, 1),
                "buffer_bytes": nbytes,
                "allreduce_ms": 1e3 * t_comm / max(n_steps, 1),
                "compute_ms": 1e3 * (wall - t_comm) / max(n_steps, 1),
                "shard_ms": shard_ms,
            }
        )
    if comm.size > 1:  # Allreduce alone: seconds per MB
        from mpi4py import MPI

        c = MPI.COMM_WORLD
        rows = []
        for mb in (0.0625, 0.25, 1, 4, 16):
            buf = np.ones(int(mb * 2**20 / 4), np.float32)
            reps = max(5, int(40 / mb))
            for _ in range(3):
                c.Allreduce(MPI.IN_PLACE, buf)
            c.Barrier()
            t = time.perf_counter()
            for _ in range(reps):
                c.Allreduce(MPI.IN_PLACE, buf)
            rows.append((mb, (time.perf_counter() - t) / reps))
        x, y = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        b, a = np.polyfit(x, y, 1)
        out["allreduce"] = {"rows": rows, "latency_us": 1e6 * a, "ms_per_MB": 1e3 * b}
    if comm.rank == 0:
        Path(args.json_out).write_text(json.dumps(out))


def _mpirun() -> list[str]:
    exe = shutil.which("mpirun")
    if exe is None:
        sys.exit(
            "bench_mpi: mpirun is missing (Debian: apt-get install openmpi-bin libopenmpi-dev)"
        )
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return [exe, "--oversubscribe"] if "Open MPI" in ver else [exe]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--configs", default="", help="comma-separated config names (rnn-128, ...)")
    ap.add_argument(
        "--reps", type=int, default=9, help="K=1: repeats of each shard's step (median)"
    )
    ap.add_argument(
        "--net",
        default="50,1.1",
        help="the model's network: latency us, GB/s "
        "(default: 10 Gb/s Ethernet, assumed, not measured)",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args)
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_mpi_yield_when_idle="1",
        RNNKIT_NO_NUMBA=os.environ.get("RNNKIT_NO_NUMBA", ""),
    )
    results = []
    for k in [int(x) for x in args.ranks.split(",")]:
        tmp = Path(f"/tmp/bench_mpi_{os.getpid()}_{k}.json")
        cmd = [
            *_mpirun(),
            "-n",
            str(k),
            sys.executable,
            __file__,
            "--worker",
            "--seconds",
            str(args.seconds),
            "--json-out",
            str(tmp),
            "--reps",
            str(args.reps),
        ]
        if args.configs:
            cmd += ["--configs", args.configs]
        subprocess.run(cmd, env=env, check=True)
        results.append(json.loads(tmp.read_text()))
        tmp.unlink()
    print(
        f"{'config':14s} {'params':>9s} {'K':>2s} {'steps/s':>8s} {'tokens/s':>9s} "
        f"{'buffer MB':>9s} {'compute ms':>10s} {'allreduce ms':>12s} {'speed-up':>8s}"
    )
    base = {c["name"]: c for c in results[0]["configs"]}
    for r in results:
        for c in r["configs"]:
            print(
                f"{c['name']:14s} {c['params']:9d} {r['K']:2d} {c['steps_per_s']:8.2f} "
                f"{c['tokens_per_s']:9.0f} {c['buffer_bytes'] / 2**20:9.2f} "
                f"{c['compute_ms']:10.1f} {c['allreduce_ms']:12.2f} "
                f"{c['steps_per_s'] / base[c['name']]['steps_per_s']:8.2f}"
            )
    for r in results:
        if "allreduce" in r:
            a = r["allreduce"]
            print(
                f"Allreduce, K={r['K']}: latency {a['latency_us']:.0f} us, "
                f"{a['ms_per_MB']:.3f} ms per MB  "
                + "  ".join(f"{mb:g} MB {1e3 * t:.3f} ms" for mb, t in a["rows"])
            )
    import numpy as np

    # the model: t_step(K) = t_c(B / K) + t_ar(K),
    # t_ar = latency + 2 (K - 1) / K * bytes / bandwidth
    lat_us, gbs = (float(x) for x in args.net.split(","))
    loop = next((r["allreduce"] for r in results if "allreduce" in r), None)
    print(
        f"\nmodel: speed-up(K) = t_c(B) / (t_c(B/K) + t_ar(K)); t_c measured in one process "
        f"(median of {args.reps}, interleaved), t_ar for a ring over {gbs:g} GB/s, {lat_us:g} us"
        + (
            f" | loopback as measured ({loop['ms_per_MB']:.2f} ms/MB, {loop['latency_us']:.0f} us)"
            if loop
            else ""
        )
    )
    for c in results[0]["configs"]:
        sm = {int(k): v for k, v in c.get("shard_ms", {}).items()}
        if not sm:
            continue
        mb = c["buffer_bytes"] / 2**20
        cells = []
        for K in (2, 4, 8):
            net = 1e-3 * lat_us + 2 * (K - 1) / K * mb * 2**20 / (gbs * 1e9) * 1e3
            row = f"K={K}: t_c {sm[K]:.1f} ms + t_ar {net:.2f} ms -> {sm[1] / (sm[K] + net):.2f}x"
            if loop:
                lb = loop["latency_us"] * 1e-3 + loop["ms_per_MB"] * mb
                row += f" (loopback {sm[1] / (sm[K] + lb):.2f}x)"
            cells.append(row)
        print(f"{c['name']:14s} t_c(B) {sm[1]:.1f} ms  " + "  ".join(cells))
        cols = [int(c["name"].split("B")[-1]) // k for k in sorted(sm)]
        slope, icpt = np.polyfit(cols, [sm[k] for k in sorted(sm)], 1)
        print(
            f"{'':14s} t_c(b) ~ {icpt:.1f} ms + {slope:.2f} ms per column b (a fixed cost of "
            f"{icpt / slope:.1f} columns); buffer {mb:.2f} MB = "
            f"{1e3 * mb * 2**20 / (gbs * 1e9):.2f} ms "
            f"on the assumed network"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
