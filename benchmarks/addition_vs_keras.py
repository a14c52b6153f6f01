"""The addition task: one epoch of Keras 3 (``addition_rnn.py``'s model) against one of rnnkit.

Run (from the repository root; needs ``pip install keras``, torch installed):

    python benchmarks/addition_vs_keras.py                      # 2 rounds, 3 digits, ~2-4 minutes
    python benchmarks/addition_vs_keras.py --rounds 3 --form repeat --json /tmp/add.json

Both train on the SAME data, made by ``rnnkit.data.addition`` exactly as the Keras example makes
it (50,000 distinct questions, 10% held out, padded, reversed unless ``--no-reverse``), one epoch
at a time, alternating (Keras, rnnkit, Keras, rnnkit, ...), so both see the same machine load.
One thread each: ``torch.set_num_threads(1)`` and one BLAS thread (threadpoolctl); float32.

* Keras 3 on the PyTorch backend (``KERAS_BACKEND=torch``): the example's model, LSTM(128) ->
  RepeatVector(DIGITS+1) -> LSTM(128, return_sequences) -> Dense(softmax) on one-hot inputs,
  Adam (lr 1e-3), batch 32, categorical cross-entropy; timed: ``model.fit(..., epochs=1,
  validation_data=...)``, as the example runs it (training and the held-out pass).
* rnnkit: ``Seq2Seq`` as ``rnnkit train addition`` builds it (``--form``, ``--hidden-size``,
  ``--lr`` as given; default: the task's defaults), Adam, batch 32, gradient-norm clipping at 5
  (the training loop's default); timed: one pass of ``loss_and_grads`` + clip + Adam step over the
  training batches (the loop of ``rnnkit.fit``) and the held-out evaluation.

Printed per epoch: seconds (training + held-out pass) and the held-out accuracy per character and
per whole answer (the Keras whole-answer accuracy from ``model.predict``, outside the timing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rnnkit_side(args):
    from rnnkit.fit import evaluate
    from rnnkit.optim import clip_grad_norm, make_optimizer
    from rnnkit.tasks.addition import AdditionConfig, AdditionTask

    task = AdditionTask(
        AdditionConfig(
            digits=args.digits, size=args.size, reverse=args.reverse, batch_size=32, seed=args.seed
        )
    )
    kw = {k: v for k, v in (("form", args.form), ("hidden_size", args.hidden)) if v is not None}
    model = task.build_model(task.ModelConfig(**kw), seed=args.seed)
    lr = args.lr if args.lr is not None else AdditionTask.fit_defaults.get("lr", 1e-3)
    opt = make_optimizer("adam", lr)
    params = model.parameters()
    rng = np.random.default_rng(args.seed)

    def epoch():
        t0 = time.perf_counter()
        for batch in task.batches("train", rng):
            r = model.loss_and_grads(batch)
            for g in r.grads.values():
                g *= 1.0 / r.count
            clip_grad_norm(r.grads, 5.0)
            opt.step(params, r.grads)
        m = evaluate(task, model, "valid")
        return time.perf_counter() - t0, m["per_char"], m["exact"]

    return task, model, epoch


def keras_side(task, args):
    import keras
    from keras import layers

    V, T_in, T_out = len(task.src_itos), task.train_data[0].shape[0], task.out_len
    eye = np.eye(V, dtype=np.float32)
    x_tr, y_tr = eye[task.train_data[0].T], eye[task.train_data[2].T]  # (N, T, 12) one-hot
    x_va, y_va = eye[task.valid_data[0].T], eye[task.valid_data[2].T]
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [
            keras.Input((T_in, V)),
            layers.LSTM(128),
            layers.RepeatVector(T_out),
            layers.LSTM(128, return_sequences=True),
            layers.Dense(V, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    def epoch():
        t0 = time.perf_counter()
        h = model.fit(x_tr, y_tr, batch_size=32, epochs=1, validation_data=(x_va, y_va), verbose=0)
        dt = time.perf_counter() - t0
        pred = model.predict(x_va, batch_size=1000, verbose=0).argmax(-1)
        exact = float((pred == y_va.argmax(-1)).all(axis=1).mean())
        return dt, float(h.history["val_accuracy"][-1]), exact

    return epoch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="epochs of each (default: 2)")
    ap.add_argument("--digits", type=int, default=3)
    ap.add_argument("--size", type=int, default=50000)
    ap.add_argument("--no-reverse", dest="reverse", action="store_false")
    ap.add_argument(
        "--form", choices=["repeat", "feedback"], help="rnnkit's form (default: the task's)"
    )
    ap.add_argument("--hidden", type=int, help="rnnkit's hidden size (default: the task's)")
    ap.add_argument("--lr", type=float, help="rnnkit's learning rate (default: the task's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)

    task, model, rk_epoch = rnnkit_side(args)
    k_epoch = None if args.skip_keras else keras_side(task, args)
    print(
        f"addition, {args.digits} digits: {task.train_data[0].shape[1]} training and "
        f"{task.valid_data[0].shape[1]} held-out questions, reverse={args.reverse}; rnnkit form "
        f"{model.config.form}, hidden {model.config.hidden_size}, {model.config.cell}",
        flush=True,
    )
    rows = []
    for r in range(1, args.rounds + 1):
        for name, fn in (("keras", k_epoch), ("rnnkit", rk_epoch)):
            if fn is None:
                continue
            dt, pc, ex = fn()
            rows.append(
                {"impl": name, "epoch": r, "seconds": round(dt, 2), "per_char": pc, "exact": ex}
            )
            print(
                f"epoch {r}  {name:7s} {dt:7.1f} s   held-out per char {pc:.4f}  "
                f"whole answers {ex:.4f}",
                flush=True,
            )
    for name in ("keras", "rnnkit"):
        ts = [x["seconds"] for x in rows if x["impl"] == name]
        if ts:
            print(f"{name:7s} median {np.median(ts):.1f} s per epoch")
    ks = [x["seconds"] for x in rows if x["impl"] == "keras"]
    rs = [x["seconds"] for x in rows if x["impl"] == "rnnkit"]
    if ks and rs:
        print(f"rnnkit / keras time per epoch: {np.median(rs) / np.median(ks):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
