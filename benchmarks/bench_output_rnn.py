"""A training step of the teacher-forced output-to-hidden model against the Elman RNN, same sizes.

Run (from the repository root):

    python benchmarks/bench_output_rnn.py                       # the default shapes, 30 rounds
    python benchmarks/bench_output_rnn.py --shapes 50x32x128x10 --repeats 50 --ragged

What is timed (float32, token inputs, one BLAS thread), forward AND backward with every gradient:

* ``elman``: ``make_recurrent("rnn", V, H)`` fed the ids (one-hot inputs: a row gather),
  h(t) = tanh(b + W h(t-1) + U x(t)), then ``Linear(H, K)`` on all steps, summed softmax
  cross-entropy, ``Linear.backward`` and BPTT (``layer.backward``): a Python loop over T steps in
  each direction.
* ``output``: :class:`rnnkit.models.output_rnn.OutputRNN` (V inputs, H hidden, K outputs),
  h(t) = tanh(b + U x(t) + W y(t-1)), o(t) = c + V h(t), the same loss, trained by teacher
  forcing: ``loss_and_grads`` -- every step at once, no loop over time.

Both have the same input, hidden and output sizes (the output model has K+1 columns of W
instead of H, so its parameter count differs slightly). Method: a warm-up step each, then
``--repeats`` rounds alternating elman, output, elman, ...; each side's median and interquartile
range; ``speed-up = elman median / output median``. ``--ragged``: lengths uniform in [T/2, T].
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rnnkit.functional import lengths_to_mask, softmax_cross_entropy  # noqa: E402
from rnnkit.layers.dense import Linear  # noqa: E402
from rnnkit.layers.registry import make_recurrent  # noqa: E402
from rnnkit.models.output_rnn import OutputRNN  # noqa: E402


def elman_step(rnn, out, x, y, lengths) -> float:
    h, _ = rnn.forward(x, lengths=lengths)
    mask = None if lengths is None else lengths_to_mask(lengths, x.shape[0])
    rows = h.reshape(-1, h.shape[2]) if mask is None else h[mask]
    tgt = y.reshape(-1) if mask is None else y[mask]
    loss, _, d = softmax_cross_entropy(out.forward(rows), tgt, inplace=True)
    drows = out.backward(rows, d)
    dh = drows.reshape(h.shape) if mask is None else np.zeros_like(h)
    if mask is not None:
        dh[mask] = drows
    rnn.backward(dh)
    return loss


def bench(T: int, B: int, H: int, V: int, repeats: int, ragged: bool, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    lengths = rng.integers(T // 2, T + 1, B) if ragged else None
    if lengths is not None:
        lengths[0] = T
    rnn = make_recurrent("rnn", V, H, seed=seed)
    out = Linear(H, V, rng, np.float32)
    model = OutputRNN(V, H, V, input_ids=True, seed=seed)
    batch = (x, y, lengths)
    runs = {
        "elman": lambda: elman_step(rnn, out, x, y, lengths),
        "output": lambda: model.loss_and_grads(batch).loss_sum,
    }
    for f in runs.values():
        f()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():  # alternated
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    res: dict[str, float] = {"T": T, "B": B, "H": H, "V": V, "ragged": ragged}
    for k, ts in times.items():
        q = statistics.quantiles(ts, n=4)
        res[k + "_ms"] = 1e3 * statistics.median(ts)
        res[k + "_iqr%"] = 100 * (q[2] - q[0]) / statistics.median(ts)
    res["speedup"] = res["elman_ms"] / res["output_ms"]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shapes",
        default="20x32x64x10,50x32x128x10,100x64x256x50,200x16x128x100",
        help="comma-separated TxBxHxV (default: %(default)s)",
    )
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--ragged", action="store_true", help="lengths uniform in [T/2, T]")
    a = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=1, user_api="blas")  # noqa: F841
    except ImportError:
        print("(threadpoolctl missing: set OPENBLAS_NUM_THREADS=1 yourself)")
    print(
        f"numpy {np.__version__}, {platform.processor() or platform.machine()}, one BLAS thread, "
        f"float32, {a.repeats} alternated rounds, medians"
    )
    print(
        f"{'T':>5} {'B':>4} {'H':>5} {'V':>5}  {'elman ms':>9} {'output ms':>10} "
        f"{'speed-up':>9} {'iqr%':>5}"
    )
    for s in a.shapes.split(","):
        T, B, H, V = (int(v) for v in s.lower().split("x"))
        r = bench(T, B, H, V, a.repeats, a.ragged)
        iqr = max(r["elman_iqr%"], r["output_iqr%"])
        print(
            f"{T:5d} {B:4d} {H:5d} {V:5d}  {r['elman_ms']:9.3f} {r['output_ms']:10.3f} "
            f"{r['speedup']:8.1f}x {iqr:5.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
