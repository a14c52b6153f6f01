"""Tree networks against a sequential LSTM on arithmetic expressions: root accuracy by depth.

Run (from the repository root):

    python benchmarks/tree_vs_lstm.py                          # 4 models x 90 s, about 7 minutes
    python benchmarks/tree_vs_lstm.py --seconds 30 --models treelstm,lstm --json /tmp/tvl.json

Data (``rnnkit.trees.arith``): single digits combined with + - * mod 10; ``--train-size`` training
expressions of depth 1..4 (seed 1), and ``--test-size`` fresh ones of EACH depth 1..6 (depths 5
and 6 never seen in training).

* tree models: ``TreeModel`` as ``rnnkit train tree`` builds it (the papers' sizes unless
  ``--tree-dim``), a label at every subexpression, AdaGrad at the papers' rates (0.01 plain net
  and RNTN, Socher et al. 2013; 0.05 Tree-LSTM, Tai et al. 2015; ``--tree-lr`` for all), L2 1e-4
  on the mean gradient, batches of 27 (plain net, RNTN) / 25 (Tree-LSTM);
* LSTM: the same expression as a flat, fully bracketed token sequence (``to_tokens``:
  ``( ( 3 + 4 ) * 5 )``), an embedding, one LSTM layer, the final hidden state -> a softmax over
  the 10 values; trained on the root value only (all it sees is the sequence), Adam (lr 3e-3),
  batches of 32, gradient norm clipped at 5. Its backward pass is written out below.

Each model trains for ``--seconds`` of wall time (one BLAS thread), then root accuracy is
measured on each depth's test set, next to the majority-class baseline of that depth.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rnnkit.functional import softmax_cross_entropy
from rnnkit.layers import make_recurrent
from rnnkit.layers.dense import Embedding, Linear
from rnnkit.module import Module
from rnnkit.optim import clip_grad_norm, make_optimizer
from rnnkit.trees import TreeConfig, TreeModel, arith_trees, arith_vocab, to_tokens

TOKENS = ["<pad>", "(", ")", *"0123456789", "+", "-", "*"]
STOI = {t: i for i, t in enumerate(TOKENS)}


class LSTMClassifier(Module):
    """ids (T, B) -> e = E[ids] (T, B, D) -> LSTM -> h_n (B, H) at each sequence's last step
    (``lengths``) -> o = h_n W^T + b (B, C) -> softmax cross-entropy (DL book 10.40-10.44, 10.11).
    """

    def __init__(
        self,
        vocab: int,
        embed: int,
        hidden: int,
        n_classes: int,
        seed: int = 0,
        dtype: str = "float32",
    ):
        super().__init__()
        rng = np.random.default_rng(seed)
        dt = np.dtype(dtype)
        self.embed = Embedding(vocab, embed, rng, dt, init_std=0.1)
        self.rnn = make_recurrent("lstm", embed, hidden, seed=int(rng.integers(2**31)), dtype=dtype)
        self.out = Linear(hidden, n_classes, rng, dt)

    def logits(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self._ids = ids
        x = self.embed.forward(ids)
        _, (h, _) = self.rnn.forward(x, lengths=lengths)
        self._h = h[-1]  # (B, H): the state after each sequence's own last token
        return self.out.forward(self._h)

    def loss_and_grads(self, ids, lengths, y) -> tuple[float, int, dict]:
        """Sum of the losses over the batch, the count, the gradients of the sum."""
        loss, n, dz = softmax_cross_entropy(self.logits(ids, lengths), y)
        dh = self.out.backward(self._h, dz)  # dL/dh_n = dz W
        zero = np.zeros_like(dh)
        dx, _ = self.rnn.backward(None, dh_n=(dh[None], zero[None]))  # BPTT from the last state
        self.embed.backward(self._ids, dx)  # scatter-add into E's rows
        return loss, n, self.named_grads()


def token_ids(tree) -> np.ndarray:
    return np.array([STOI[t] for t in to_tokens(tree)], np.int64)


def pad(seqs: list) -> tuple[np.ndarray, np.ndarray]:
    """(ids (T, B) padded with <pad>, lengths (B,)) from B id arrays."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    ids = np.zeros((lengths.max(), len(seqs)), np.int64)
    for j, s in enumerate(seqs):
        ids[: len(s), j] = s
    return ids, lengths


def encode(trees) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (T, B), lengths (B,), root labels (B,))."""
    return (*pad([token_ids(t) for t in trees]), np.array([t.label for t in trees], np.int64))


def shuffled(n: int, batch: int, lengths: np.ndarray | None = None):
    """An epoch's batches of indices: a random permutation cut into ``batch``-sized pieces; with
    ``lengths``, bucketed: each run of 50 batches is sorted by length before cutting (padding to
    the batch's longest sequence wastes less), then the batches are shuffled."""

    def make(rng):
        perm = rng.permutation(n)
        if lengths is not None:
            span = 50 * batch
            perm = np.concatenate(
                [
                    c[np.argsort(lengths[c], kind="stable")]
                    for c in np.split(perm, range(span, n, span))
                ]
            )
        out = [perm[s : s + batch] for s in range(0, n, batch)]
        return [out[i] for i in rng.permutation(len(out))] if lengths is not None else out

    return make


def train_for(seconds: float, n: int, batches, step, params: dict, opt, clip=None, seed=0):
    """Minibatches (``batches(rng)`` -> a list of index arrays per epoch) until ``seconds`` have
    passed: ``step(indices) -> (loss_sum, count, grads of the sum)``; the optimizer gets the
    mean. Returns (epochs done, steps)."""
    rng = np.random.default_rng(seed)
    t0, steps, seen = time.perf_counter(), 0, 0
    while True:
        for idx in batches(rng):
            _, count, grads = step(idx)
            for g in grads.values():
                g /= count
            if clip:
                clip_grad_norm(grads, clip)
            opt.step(params, grads)
            steps, seen = steps + 1, seen + len(idx)
            if time.perf_counter() - t0 >= seconds:
                return seen / n, steps


def run_tree(cell, train, tests, args) -> dict:
    vocab = arith_vocab()
    cfg = TreeConfig(len(vocab), cell=cell, dim=args.tree_dim, n_classes=10, seed=args.seed)
    model = TreeModel(cfg, vocab)
    p = cfg.validate().paper_training()
    flats = model.flatten(train)
    lr = args.tree_lr or p["lr"]
    opt = make_optimizer("adagrad", lr, weight_decay=p["weight_decay"])

    def step(idx):
        loss, n, grads, _ = model.loss_and_grads([flats[i] for i in idx])
        return loss, n, grads

    epochs, steps = train_for(
        args.seconds,
        len(flats),
        shuffled(len(flats), p["batch_size"]),
        step,
        model.parameters(),
        opt,
        seed=args.seed,
    )
    acc = {}
    for d, ts in tests.items():
        pred, _ = model.predict(model.flatten(ts))
        acc[d] = float((pred == np.array([t.label for t in ts])).mean())
    return {
        "model": cell,
        "dim": model.config.dim,
        "lr": lr,
        "params": model.num_parameters(),
        "epochs": epochs,
        "steps": steps,
        "acc": acc,
    }


def run_lstm(train, tests, args) -> dict:
    model = LSTMClassifier(len(TOKENS), args.lstm_embed, args.lstm_hidden, 10, seed=args.seed)
    opt = make_optimizer("adam", args.lstm_lr)

    seqs = [token_ids(t) for t in train]  # once
    labels = np.array([t.label for t in train], np.int64)

    def step(idx):
        return model.loss_and_grads(*pad([seqs[i] for i in idx]), labels[idx])

    batches = shuffled(len(train), args.lstm_batch, np.array([len(q) for q in seqs]))
    epochs, steps = train_for(
        args.seconds, len(train), batches, step, model.parameters(), opt, clip=5.0, seed=args.seed
    )
    acc = {}
    for d, ts in tests.items():
        ids, lengths, y = encode(ts)
        acc[d] = float((model.logits(ids, lengths).argmax(axis=1) == y).mean())
    return {
        "model": "lstm",
        "dim": args.lstm_hidden,
        "lr": args.lstm_lr,
        "params": model.num_parameters(),
        "epochs": epochs,
        "steps": steps,
        "acc": acc,
    }


def check_lstm_gradient() -> float:
    """The hand-written backward against central differences (a tiny float64 model)."""
    from rnnkit.gradcheck import gradcheck

    m = LSTMClassifier(len(TOKENS), 4, 5, 10, seed=3, dtype="float64")
    ids, lengths, y = encode(arith_trees(4, [1, 2], seed=5))  # ragged: lengths differ
    _, _, grads = m.loss_and_grads(ids, lengths, y)
    grads = {k: g.copy() for k, g in grads.items()}
    return gradcheck(
        lambda: m.loss_and_grads(ids, lengths, y)[0], m.parameters(), grads
    ).max_rel_error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="rnn,rntn,treelstm,lstm")
    ap.add_argument("--seconds", type=float, default=90.0, help="training wall time per model")
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--test-size", type=int, default=500, help="test trees per depth")
    ap.add_argument("--tree-dim", type=int, default=None, help="default: the papers' (30, 25, 150)")
    ap.add_argument(
        "--tree-lr",
        type=float,
        default=None,
        help="AdaGrad rate for every tree model (default: the papers', 0.01 rnn and "
        "rntn, 0.05 treelstm)",
    )
    ap.add_argument("--lstm-embed", type=int, default=32)
    ap.add_argument("--lstm-hidden", type=int, default=128)
    ap.add_argument("--lstm-batch", type=int, default=32)
    ap.add_argument("--lstm-lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        print("threadpoolctl not installed: set OPENBLAS_NUM_THREADS=1 yourself")
    print(f"LSTM classifier gradient check: max rel error {check_lstm_gradient():.1e}")
    train = arith_trees(args.train_size, [1, 2, 3, 4], seed=1)
    tests = {d: arith_trees(args.test_size, d, seed=100 + d) for d in range(1, 7)}
    majority = {
        d: float(np.bincount([int(t.label or 0) for t in ts], minlength=10).max() / len(ts))
        for d, ts in tests.items()
    }
    print(
        f"arithmetic (+ - * mod 10): {args.train_size} training trees of depth 1-4, "
        f"{args.seconds:.0f} s per model; root accuracy on {args.test_size} trees per depth"
    )
    head = f"{'model':9} {'dim':>4} {'lr':>6} {'params':>7} {'epochs':>6} " + " ".join(
        f"{'d=' + str(d):>6}" for d in tests
    )
    print(head)
    print(
        f"{'majority':9} {'':>4} {'':>6} {'':>7} {'':>6} "
        + " ".join(f"{majority[d]:6.3f}" for d in tests)
    )
    rows = []
    for name in args.models.split(","):
        r = run_lstm(train, tests, args) if name == "lstm" else run_tree(name, train, tests, args)
        rows.append(r)
        print(
            f"{name:9} {r['dim']:4d} {r['lr']:6.3g} {r['params']:7d} {r['epochs']:6.1f} "
            + " ".join(f"{r['acc'][d]:6.3f}" for d in tests),
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"majority": majority, "rows": rows, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
