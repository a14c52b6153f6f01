"""Echo state network on Mackey-Glass: rnnkit.reservoir.ESN against reservoirpy 0.4.2.

Run (from the repository root; reservoirpy is optional, ``pip install reservoirpy==0.4.2``):

    python benchmarks/bench_esn.py                      # 100 and 500 units, 20 seeds
    python benchmarks/bench_esn.py --units 100 --seeds 3 --time-seeds 3 --data rnnkit

Task (one-step prediction): 2,100 Mackey-Glass points (tau 17) scaled to [-1, 1]; inputs
x(t) = d(t), targets d(t+1); the first 1,600 pairs train (washout 100), the other 499 test, with
the state carried on from training. NRMSE = RMSE / std of the test target. Both libraries get
the same series, units, spectral radius 1.25, leak rate 0.3, ridge 1e-5, and their default
initialisers (rnnkit's differ in two defaults, a dense input matrix and a reservoir bias, see
rnnkit/reservoir.py; each draws from its own seeds, so each row is the median over seeds). With
reservoirpy's defaults and spectral radius 1.25 the error varies a lot from one draw to the next
(500 units: test NRMSE from 5e-3 to 0.5 over 5 seeds, training NRMSE ~2e-3 for all: some draws
overfit), hence 20 seeds by default.

Closed loop: from the state at the end of training, the ESN generates 200 steps, each output fed
back as the next input; NRMSE over the first 50, 100 and 200 generated steps against d(1600...)
(normalised by the std of that stretch of the target). reservoirpy's loop: y0 = readout of its
final state, then ``esn(y)`` step by step.

Timing: one BLAS thread (threadpoolctl). "fit" = constructing a fresh model and fitting it (both
libraries draw the reservoir and compute its spectral radius inside the first fit), "refit" = a
second fit of the same model (state loop + ridge solve only). Per seed the two libraries alternate
(rnnkit, reservoirpy, rnnkit, ...) for ``--repeats`` rounds; the table shows medians in ms, and
minima ("min fit", "min ref"), which other load on a shared machine disturbs less.

Same-matrices check (printed last): reservoirpy's fitted W and W_in loaded into an rnnkit ESN;
both then solve the same ridge problem, so readouts and predictions must agree to rounding.

``--data`` picks the series: rnnkit's ``mackey_glass`` (classical RK4, default discard), or
reservoirpy's ``datasets.mackey_glass`` (its own discretisation, seeded), or both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnkit.data.synthetic import mackey_glass  # noqa: E402
from rnnkit.reservoir import ESN  # noqa: E402

N_POINTS, N_TRAIN, WASHOUT = 2100, 1600, 100
SR, LR, RIDGE = 1.25, 0.3, 1e-5
HORIZONS = (50, 100, 200)


def series(source: str) -> np.ndarray:
    if source == "rnnkit":
        d = mackey_glass(N_POINTS)
    else:
        from reservoirpy.datasets import mackey_glass as rpy_mg

        d = rpy_mg(N_POINTS, seed=0)
    return 2.0 * (d - d.min()) / (d.max() - d.min()) - 1.0


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - target) ** 2)) / np.std(target))


def run_rnnkit(units, seed, X, Y, d):
    t0 = time.perf_counter()
    esn = ESN(units, spectral_radius=SR, leak_rate=LR, ridge=RIDGE, seed=seed)
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], washout=WASHOUT)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], washout=WASHOUT)
    refit = time.perf_counter() - t0
    gen = esn.generate(max(HORIZONS))  # from the state at the end of training
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], washout=WASHOUT)
    pred = esn.predict(X[N_TRAIN:])
    return fit, refit, nrmse(pred, Y[N_TRAIN:]), gen


def run_rpy(units, seed, X, Y, d):
    from reservoirpy import ESN as RpyESN

    t0 = time.perf_counter()
    esn = RpyESN(units=units, sr=SR, lr=LR, ridge=RIDGE, seed=seed)
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], warmup=WASHOUT)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], warmup=WASHOUT)  # runs on from the trained state
    refit = time.perf_counter() - t0
    esn.reset()
    esn.fit(X[:N_TRAIN], Y[:N_TRAIN], warmup=WASHOUT)
    state = esn.reservoir.state["out"].copy()
    y = state @ esn.readout.Wout + esn.readout.bias
    gen = [y]
    for _ in range(max(HORIZONS) - 1):
        y = esn(np.asarray(y).reshape(1))
        gen.append(y)
    gen = np.asarray(gen).reshape(-1, 1)
    esn.reservoir.state["out"] = state  # back to the end of training for the test run
    pred = esn.run(X[N_TRAIN:])
    return fit, refit, nrmse(pred, Y[N_TRAIN:]), gen


def same_matrices_check(units: int, X, Y) -> str:
    """Fit reservoirpy, load its W, W_in into an rnnkit ESN, fit that: how far apart are the
    readouts and test predictions (they solve the same problem), and the true spectral radius of
    reservoirpy's W (its ARPACK call uses the default ncv)."""
    from reservoirpy import ESN as RpyESN

    r = RpyESN(units=units, sr=SR, lr=LR, ridge=RIDGE, seed=0)
    r.fit(X[:N_TRAIN], Y[:N_TRAIN], warmup=WASHOUT)
    W = r.reservoir.W.tocoo()
    o = np.lexsort((W.col, W.row))
    e = ESN(
        units,
        spectral_radius=SR,
        leak_rate=LR,
        ridge=RIDGE,
        input_dim=X.shape[1],
        output_dim=Y.shape[1],
    )
    e.load_state_dict(
        {
            "reservoir.W_values": W.data[o],
            "reservoir.W_rows": W.row[o],
            "reservoir.W_cols": W.col[o],
            "reservoir.W_in": r.reservoir.Win.toarray(),
            "reservoir.bias": np.zeros(units),
            "reservoir.leak_rate": np.array(LR),
            "readout.weight": np.zeros((1, units)),
            "readout.bias": np.zeros(1),
        }
    )
    e.fit(X[:N_TRAIN], Y[:N_TRAIN], washout=WASHOUT)
    dw = np.max(np.abs(e.readout.weight.T - r.readout.Wout)) / np.max(np.abs(r.readout.Wout))
    dp = np.max(np.abs(e.predict(X[N_TRAIN:]) - r.run(X[N_TRAIN:])))
    rho = np.max(np.abs(np.linalg.eigvals(W.toarray())))
    return (
        f"same matrices, {units} units: readout rel. diff {dw:.1e}, prediction max diff "
        f"{dp:.1e}; reservoirpy's W has spectral radius {rho:.5f} (asked {SR})"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", default="100,500")
    ap.add_argument("--seeds", type=int, default=20, help="reservoirs drawn per row (errors)")
    ap.add_argument("--time-seeds", type=int, default=5, help="of which timed")
    ap.add_argument("--repeats", type=int, default=3, help="timed fits per timed seed and library")
    ap.add_argument("--data", choices=("rnnkit", "reservoirpy", "both"), default="both")
    args = ap.parse_args(argv)
    try:
        import reservoirpy

        have_rpy = reservoirpy.__version__
    except ImportError:
        have_rpy = None
        print("reservoirpy not installed: rnnkit only")
    try:
        import scipy.linalg  # noqa: F401  (load every BLAS before pinning: threadpoolctl
        import scipy.sparse.linalg  # noqa: F401  limits only the libraries already loaded)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(1)
        pools = {i["filepath"].rsplit("/", 1)[-1]: i["num_threads"] for i in threadpool_info()}
        print("thread pools:", pools)
    except ImportError:
        print("threadpoolctl missing: BLAS threads not pinned")
    sources = ["rnnkit", "reservoirpy"] if args.data == "both" else [args.data]
    if not have_rpy:
        sources = [s for s in sources if s == "rnnkit"]
    libs = {"rnnkit": run_rnnkit}
    if have_rpy:
        libs["reservoirpy " + have_rpy] = run_rpy
    units_list = [int(u) for u in args.units.split(",")]
    d = series("rnnkit")
    for units in units_list:  # warm-up: imports, first calls into BLAS/ARPACK
        for fn in libs.values():
            fn(units, 99, d[:-1], d[1:], d)
    head = (
        f"{'data':12s} {'units':>5s} {'library':18s} {'NRMSE':>9s} {'fit ms':>8s} "
        f"{'refit ms':>8s} {'min fit':>8s} {'min ref':>8s} "
        + " ".join(f"{'gen' + str(h):>9s}" for h in HORIZONS)
    )
    print(head)
    print("-" * len(head))
    for src in sources:
        d = series(src)
        X, Y = d[:-1], d[1:]
        for units in units_list:
            res: dict[str, dict[str, list]] = {
                name: {"fit": [], "refit": [], "nrmse": [], "gen": []} for name in libs
            }
            for seed in range(args.seeds):
                for rep in range(args.repeats if seed < args.time_seeds else 1):
                    for name, fn in libs.items():
                        fit, refit, err, gen = fn(units, seed, X, Y, d)
                        r = res[name]
                        if seed < args.time_seeds:
                            r["fit"].append(fit)
                            r["refit"].append(refit)
                        if rep == 0:
                            r["nrmse"].append(err)
                            r["gen"].append(
                                [nrmse(gen[:h], d[N_TRAIN : N_TRAIN + h]) for h in HORIZONS]
                            )
            for name, r in res.items():
                gens = np.median(np.asarray(r["gen"]), axis=0)
                print(
                    f"{src:12s} {units:5d} {name:18s} {statistics.median(r['nrmse']):9.2e} "
                    f"{1e3 * statistics.median(r['fit']):8.1f} "
                    f"{1e3 * statistics.median(r['refit']):8.1f} "
                    f"{1e3 * min(r['fit']):8.1f} {1e3 * min(r['refit']):8.1f} "
                    + " ".join(f"{g:9.2e}" for g in gens)
                )
    if have_rpy:
        d = series("rnnkit")
        for units in units_list:
            print(same_matrices_check(units, d[:-1], d[1:]))
    print(
        f"(errors: medians over {args.seeds} seeds; times: medians and minima over "
        f"{args.time_seeds} seeds x {args.repeats} repeats; "
        "gen<h> = closed-loop NRMSE over the first h generated steps)"
    )


if __name__ == "__main__":
    main()
