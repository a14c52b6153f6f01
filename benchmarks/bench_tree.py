"""Tree networks: speed of level batching, and accuracy by depth on arithmetic expressions.

Run (from the repository root):

    python benchmarks/bench_tree.py                       # both parts, about 4 minutes
    python benchmarks/bench_tree.py --part speed --dim 50 --trees 1000 --leaves 20
    python benchmarks/bench_tree.py --part arith --train-seconds 60 --cells rnn,rntn,treelstm
    python benchmarks/bench_tree.py --json /tmp/bench_tree.json

One BLAS thread (threadpoolctl) and ``torch.set_num_threads(1)``; float32.

Speed: ``--trees`` random binary trees of ``--leaves`` leaves (each split point uniform, so the
heights vary like parses do), words from a vocabulary of 1,000, a random 5-class label at every
node, ``--dim`` for the node vectors and the embeddings. Timed: one training step's work,
forward + loss + backward with every gradient (``TreeModel.loss_and_grads``, including joining the
pre-flattened trees into a level-sorted batch), over all trees in batches of ``--batch`` (and in
one batch of all trees); every implementation is run in turn, ``--repeats`` rounds after a warm-up
round, and the median pass is reported as trees per second.
Compared with:

* node at a time: ``reference_loss_and_grads``, the recursive implementation (same composition
  functions on one row at a time, a product per node and per weight gradient), on the first
  ``--ref-trees`` trees;
* PyTorch: the same binary Tree-LSTM with the same weights, batched by level the same way
  (index_select of the children's rows, one matmul per level, torch.cat to grow the state) and
  differentiated by autograd (``loss.backward()``). Checked once to give the same loss (float32,
  relative 1e-4). Skipped when torch is missing.

Arithmetic: trees from ``rnnkit.trees.arith`` (+, -, * mod 10, a label at every subexpression),
``--train-size`` training trees of depth 1..4, AdaGrad in batches of 25 on the mean loss, for
``--train-seconds`` per cell; then root accuracy on 500 fresh trees of each depth 1..6 (depths 5
and 6 never seen in training), next to the majority-class baseline of that depth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from rnnkit.optim import make_optimizer
from rnnkit.trees import (
    Tree,
    TreeBatch,
    TreeConfig,
    TreeModel,
    arith_trees,
    arith_vocab,
    flatten_tree,
    reference_loss_and_grads,
)


def random_binary_tree(n_leaves: int, rng: np.random.Generator, vocab: int, n_classes: int) -> Tree:
    def build(n):
        lab = int(rng.integers(n_classes))
        if n == 1:
            return Tree(lab, word=str(int(rng.integers(vocab))))
        k = int(rng.integers(1, n))
        return Tree(lab, children=(build(k), build(n - k)))

    return build(n_leaves)


def _grad(p) -> np.ndarray:
    """A torch leaf's gradient as an array (after a backward)."""
    if p.grad is None:
        raise RuntimeError("no gradient: the parameter took no part in the loss")
    return p.grad.numpy()


def _interleaved_times(fns, repeats: int) -> list[float]:
    """Median seconds of each function, run in turn (a, b, c, a, b, c, ...) after one warm-up
    round, so that a change in the machine's load hits all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats + 1):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            if r:
                times[k].append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


# -- PyTorch Tree-LSTM, batched by level like levels.py --------------------------------------------
def torch_tree_lstm_step(torch, P: dict, b: TreeBatch, d: int):
    """Forward + summed cross-entropy over labelled nodes; P: torch tensors requiring grad."""
    F = torch.nn.functional
    e = P["embed"][torch.from_numpy(b.words)]
    g = e @ P["cell.W"].T + P["cell.b_leaf"]
    i, o, u = torch.sigmoid(g[:, :d]), torch.sigmoid(g[:, d : 2 * d]), torch.tanh(g[:, 2 * d :])
    c = i * u
    H, C = o * torch.tanh(c), c
    left, right = torch.from_numpy(b.left), torch.from_numpy(b.right)
    for s, t in b.levels:
        L, R = left[s:t], right[s:t]
        x = torch.cat((H.index_select(0, L), H.index_select(0, R)), dim=1)
        g = x @ P["cell.U"].T + P["cell.b"]
        i, fl, fr, o = (torch.sigmoid(g[:, k * d : (k + 1) * d]) for k in range(4))
        u = torch.tanh(g[:, 4 * d :])
        c = i * u + fl * C.index_select(0, L) + fr * C.index_select(0, R)
        H = torch.cat((H, o * torch.tanh(c)))
        C = torch.cat((C, c))
    rows = torch.from_numpy(np.flatnonzero(b.labels >= 0))
    logits = H.index_select(0, rows) @ P["classify.weight"].T + P["classify.bias"]
    return F.cross_entropy(logits, torch.from_numpy(b.labels[rows.numpy()]), reduction="sum")


def bench_speed(args) -> list[dict]:
    rng = np.random.default_rng(0)
    V, C = 1000, 5
    trees = [random_binary_tree(args.leaves, rng, V, C) for _ in range(args.trees)]
    heights = [t.height() for t in trees]
    print(
        f"{args.trees} random binary trees of {args.leaves} leaves: "
        f"height {min(heights)}..{max(heights)} "
        f"(mean {np.mean(heights):.1f}), {sum(t.num_nodes() for t in trees)} nodes; "
        f"dim {args.dim}, float32, 1 thread"
    )
    rows = []
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None  # type: ignore[assignment]  # the module, or None without torch
        print("torch not installed: PyTorch column skipped")
    print(f"{'cell':9} {'implementation':38} {'trees/s':>9} {'vs node-at-a-time':>18}")
    for cell in args.cells_speed:
        model = TreeModel(
            TreeConfig(V, cell=cell, dim=args.dim, embed_dim=args.dim, n_classes=C, seed=0)
        )
        flats = [
            flatten_tree(t, lambda ws: np.array([int(w) for w in ws], np.int64)) for t in trees
        ]
        ref = flats[: args.ref_trees]

        def run_ref(model=model, ref=ref):
            reference_loss_and_grads(model, ref)

        impls: list[tuple[str, int, Callable[[], object]]] = [
            ("node at a time (recursive)", len(ref), run_ref)
        ]
        for bs in (args.batch, len(flats)):

            def run(bs=bs, model=model, flats=flats):
                for s in range(0, len(flats), bs):
                    model.loss_and_grads(flats[s : s + bs])

            impls.append((f"batched by level, batch {bs}", len(flats), run))
        if torch is not None and cell == "treelstm":
            P = {k: torch.tensor(v, requires_grad=True) for k, v in model.named_parameters()}
            b0 = TreeBatch.from_flat(flats[: args.batch])
            loss = torch_tree_lstm_step(torch, P, b0, args.dim)
            loss.backward()
            loss_n, _, g_n, _ = model.loss_and_grads(b0)
            ok = abs(loss.item() - loss_n) <= 1e-4 * abs(loss_n)
            gerr = max(
                float(np.abs(_grad(P[k]) - g).max() / np.abs(g).max()) for k, g in g_n.items()
            )
            print(
                f"  torch check: loss {loss.item():.6f} vs rnnkit {loss_n:.6f} -> "
                f"{'ok' if ok else 'MISMATCH'}; "
                f"gradients: max |diff| / max |grad| = {gerr:.1e}"
            )
            for bs in (args.batch, len(flats)):

                def run_t(bs=bs, flats=flats, P=P):
                    for s in range(0, len(flats), bs):
                        for p in P.values():
                            p.grad = None
                        b = TreeBatch.from_flat(flats[s : s + bs])
                        torch_tree_lstm_step(torch, P, b, args.dim).backward()

                impls.append((f"PyTorch autograd, by level, batch {bs}", len(flats), run_t))
        times = _interleaved_times([fn for _, _, fn in impls], args.repeats)
        ref_tps = impls[0][1] / times[0]
        for (name, n, _), t in zip(impls, times):
            tps = n / t
            print(f"{cell:9} {name:38} {tps:9.0f} {tps / ref_tps:17.1f}x")
            rows.append({"cell": cell, "impl": name, "trees_per_s": tps, "speedup": tps / ref_tps})
    return rows


# -- arithmetic: accuracy by depth -----------------------------------------------------------------
def bench_arith(args) -> list[dict]:
    vocab = arith_vocab()
    train_trees = arith_trees(args.train_size, [1, 2, 3, 4], seed=1)
    tests = {d: arith_trees(500, d, seed=100 + d) for d in range(1, 7)}
    majority = {
        d: max(np.bincount([int(t.label or 0) for t in ts], minlength=10)) / len(ts)
        for d, ts in tests.items()
    }
    print(
        f"\narithmetic (+ - * mod 10): train {args.train_size} trees of depth 1-4, "
        f"{args.train_seconds:.0f} s per cell, AdaGrad, batch 25; "
        "root accuracy on 500 trees per depth"
    )
    print(
        f"{'cell':9} {'dim':>4} {'lr':>5} {'epochs':>6} "
        + " ".join(f"{'d=' + str(d):>6}" for d in tests)
    )
    print(
        f"{'majority':9} {'':>4} {'':>5} {'':>6} " + " ".join(f"{majority[d]:6.3f}" for d in tests)
    )
    rows = []
    for cell in args.cells:
        dim, lr = args.arith_dim, {"rnn": 0.05, "rntn": 0.01, "treelstm": 0.05}[cell]
        cfg = TreeConfig(len(vocab), cell=cell, dim=dim, embed_dim=dim, n_classes=10, seed=0)
        model = TreeModel(cfg, vocab)
        train = model.flatten(train_trees)
        flat_tests = {d: model.flatten(ts) for d, ts in tests.items()}
        opt = make_optimizer("adagrad", lr)
        rng = np.random.default_rng(0)
        t0, epochs = time.perf_counter(), 0.0
        while time.perf_counter() - t0 < args.train_seconds:
            perm = rng.permutation(len(train))
            for s in range(0, len(perm), 25):
                _, n, grads, _ = model.loss_and_grads([train[i] for i in perm[s : s + 25]])
                opt.step(model.parameters(), {k: g / n for k, g in grads.items()})
                if time.perf_counter() - t0 > args.train_seconds:
                    break
            epochs += (s + 25) / len(perm)
        acc = {}
        for d, ft in flat_tests.items():
            ex = model.evaluate(ft)[2]
            acc[d] = ex["root_correct"] / ex["root_total"]
        print(
            f"{cell:9} {dim:4d} {lr:5.2f} {epochs:6.1f} "
            + " ".join(f"{acc[d]:6.3f}" for d in tests)
        )
        rows.append(
            {
                "cell": cell,
                "dim": dim,
                "lr": lr,
                "epochs": epochs,
                "seconds": args.train_seconds,
                "root_accuracy_by_depth": acc,
                "majority_by_depth": majority,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["speed", "arith", "both"], default="both")
    ap.add_argument("--trees", type=int, default=1000)
    ap.add_argument("--leaves", type=int, default=20)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--ref-trees", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cells-speed", default="rnn,treelstm")
    ap.add_argument("--cells", default="rnn,rntn,treelstm")
    ap.add_argument("--arith-dim", type=int, default=30)
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    args.cells_speed = args.cells_speed.split(",")
    args.cells = args.cells.split(",")
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        print("threadpoolctl not installed: set OPENBLAS_NUM_THREADS=1 yourself")
    result = {}
    if args.part in ("speed", "both"):
        result["speed"] = bench_speed(args)
    if args.part in ("arith", "both"):
        result["arith"] = bench_arith(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
