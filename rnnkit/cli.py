"""The command line: ``rnnkit train lm``, ``rnnkit generate``, ``rnnkit eval``, ``rnnkit gradcheck``.

    rnnkit train lm --time-budget 60                 # word LM on the embedded corpus, ~1 minute
    rnnkit train lm --level char --cell lstm --corpus my.txt --out runs/char
    rnnkit generate runs/lm -n 5 --temperature 0.8
    rnnkit eval runs/lm --json

Bad input (missing or non-UTF-8 files, empty corpora, corrupt checkpoints, bad settings) ends with a
one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path


from .errors import RnnkitError


def _int_at_least(lo: int):
    """An argparse type: an integer >= lo, with a one-line message otherwise."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {s!r}")
        return v
    return parse


_positive_int, _nonnegative_int = _int_at_least(1), _int_at_least(0)


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit", description=(
        "Recurrent neural networks from first principles in NumPy: train, sample and evaluate "
        "language models; check gradients."))
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("--threads", type=_positive_int, default=os.environ.get("RNNKIT_THREADS", "1"),
                   help="BLAS threads (default 1, or $RNNKIT_THREADS): the small per-step products "
                   "of a recurrence run slower on more threads, and a shared 2-core machine can "
                   "collapse under two; needs threadpoolctl")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model", description="Train a model.")
    trs = tr.add_subparsers(dest="model", required=True, metavar="MODEL")
    lm = trs.add_parser("lm", help="a word- or character-level language model",
                        description="Train a recurrent language model on a text file or on the "
                        "embedded corpus (CPython's English documentation), then print perplexity "
                        "and samples. Writes checkpoint.npz, metrics.jsonl and loss.png to --out.",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = lm.add_argument_group("data")
    g.add_argument("--corpus", metavar="PATH", help="UTF-8 text file (default: the embedded corpus)")
    g.add_argument("--level", choices=["word", "char"], default="word")
    g.add_argument("--vocab-size", type=_positive_int, default=4000, help="vocabulary cap, special tokens included")
    g.add_argument("--no-lower", dest="lower", action="store_false", help="keep case (word level)")
    g.add_argument("--max-sentences", type=_positive_int, help="use at most this many sentences (word level)")
    g.add_argument("--valid-fraction", type=float, default=0.1, help="held-out share of the corpus")
    g = lm.add_argument_group("model")
    g.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="rnn")
    g.add_argument("--hidden-size", type=_positive_int, default=128)
    g.add_argument("--embed-size", type=_positive_int, default=64)
    g.add_argument("--nonlinearity", choices=["tanh", "relu"], default="tanh", help="Elman cell")
    g.add_argument("--forget-bias", type=float, default=1.0, help="LSTM forget-gate bias at init")
    g.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    g = lm.add_argument_group("training")
    g.add_argument("--optimizer", choices=["sgd", "adagrad", "rmsprop", "adam"], default="adam")
    g.add_argument("--lr", type=_positive_float, default=3e-3, help="learning rate")
    g.add_argument("--epochs", type=_positive_int, help="passes over the training data (default 20; "
                   "with --resume: the checkpoint's)")
    g.add_argument("--time-budget", type=_positive_float, metavar="SECONDS",
                   help="stop after this many seconds of training (checkpointed; --resume goes on)")
    g.add_argument("--batch-size", type=_positive_int, default=32)
    g.add_argument("--bptt", type=_positive_int, default=64,
                   help="char level: chunk length; the state is carried across chunks, the gradient is not")
    g.add_argument("--bptt-truncate", type=int, metavar="K",
                   help="the gradient from each output flows back at most K steps (default: full BPTT)")
    g.add_argument("--clip-norm", type=_positive_float, default=5.0, help="clip the global gradient norm")
    g.add_argument("--no-clip-norm", dest="clip_norm", action="store_const", const=None)
    g.add_argument("--clip-value", type=_positive_float, help="clip each gradient entry to [-V, V]")
    g.add_argument("--eval-every", type=_positive_int, default=1, help="epochs between held-out evaluations")
    g.add_argument("--no-lr-halving", dest="halve_lr", action="store_false",
                   help="keep the learning rate when the held-out loss goes up")
    g.add_argument("--seed", type=_nonnegative_int, default=0)
    g.add_argument("--out", default="runs/lm", help="output folder")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                   help="no progress bar (it is off anyway when stderr is not a terminal)")
    g.add_argument("--samples", type=int, default=5, help="sentences (or 300-char passages / 100) to print at the end")

    for name, helptext in (("generate", "sample text from a trained language model"),
                           ("eval", "held-out perplexity of a trained language model")):
        sp = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        sp.add_argument("checkpoint", help="a checkpoint .npz file or the run folder that holds checkpoint.npz")
        if name == "generate":
            sp.add_argument("-n", "--num", type=_positive_int, default=5, help="sentences (word) or passages (char)")
            sp.add_argument("--length", type=_positive_int, default=300, help="characters per passage / max words")
            sp.add_argument("--prompt", default="", help="text to start from")
            sp.add_argument("--temperature", type=_positive_float, default=0.8)
            sp.add_argument("--top-k", type=_positive_int)
            sp.add_argument("--allow-unk", action="store_true", help="allow the unknown token (default: resample)")
            sp.add_argument("--seed", type=_nonnegative_int, default=0)
        else:
            sp.add_argument("--corpus", metavar="PATH",
                            help="evaluate on this whole file instead of the held-out part of the training corpus")
            sp.add_argument("--json", action="store_true", help="print one JSON object")

    gc = sub.add_parser("gradcheck", help="check every cell's BPTT against central differences",
                        description="Compare hand-written gradients with central differences in "
                        "float64 for each cell and for the language model; exit 1 on failure.")
    gc.add_argument("--cell", choices=["rnn", "lstm", "gru", "all"], default="all")
    gc.add_argument("--tol", type=float, default=1e-6)
    return p


def _version() -> str:
    from . import __version__
    return f"rnnkit {__version__}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limiter = _limit_blas_threads(args.threads)  # noqa: F841  (kept alive for the command)
    try:
        if args.command == "train":
            return _cmd_train_lm(args)
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "eval":
            return _cmd_eval(args)
        return _cmd_gradcheck(args)
    except MemoryError:
        print("rnnkit: error: out of memory: choose smaller sizes (--hidden-size, --embed-size, "
              "--vocab-size, --batch-size)", file=sys.stderr)
        return 2
    except (RnnkitError, OSError) as exc:
        msg = str(exc) if isinstance(exc, RnnkitError) else f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        print(f"rnnkit: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


def _limit_blas_threads(n: int):
    """Pin NumPy's BLAS to n threads for this process (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


def _ckpt_path(s: str) -> Path:
    p = Path(s)
    return p / "checkpoint.npz" if p.is_dir() else p


def _cmd_train_lm(a) -> int:
    from .models.lm import LMConfig
    from .train import TrainConfig, load_lm, train_config_from, train_lm

    if a.resume:
        _, _, meta, _ = load_lm(Path(a.out) / "checkpoint.npz")
        over = {"out": a.out, "time_budget": a.time_budget, "progress": a.progress}
        if a.epochs is not None:
            over["epochs"] = a.epochs
        cfg = train_config_from(meta, **over)
        mcfg = None
    else:
        cfg = TrainConfig(level=a.level, corpus=a.corpus, lower=a.lower, vocab_size=a.vocab_size,
                          max_sentences=a.max_sentences, valid_fraction=a.valid_fraction,
                          batch_size=a.batch_size, bptt=a.bptt, bptt_truncate=a.bptt_truncate,
                          optimizer=a.optimizer, lr=a.lr, clip_norm=a.clip_norm, clip_value=a.clip_value,
                          epochs=a.epochs or 20, time_budget=a.time_budget, eval_every=a.eval_every,
                          halve_lr=a.halve_lr, seed=a.seed, out=a.out, progress=a.progress)
        mcfg = LMConfig(vocab_size=0, embed_size=a.embed_size, hidden_size=a.hidden_size, cell=a.cell,
                        nonlinearity=a.nonlinearity, forget_bias=a.forget_bias, dtype=a.dtype, seed=a.seed)
    try:
        res = train_lm(cfg.validate(), mcfg, resume=a.resume)
    except KeyboardInterrupt:
        print(f"rnnkit: interrupted; the position is saved in {Path(cfg.out) / 'checkpoint.npz'}: "
              f"continue with  rnnkit train lm --out {cfg.out} --resume", file=sys.stderr)
        return 130
    unit = "char" if cfg.level == "char" else "word"
    print(f"\nheld-out perplexity {res.perplexity:.2f} ({res.bits_per_token:.3f} bits/{unit}) "
          f"after {res.steps} steps ({res.stopped_by.replace('_', ' ')}); checkpoint {res.checkpoint}")
    if a.samples > 0:
        print("samples:")
        _print_samples(res.checkpoint, n=a.samples, length=300, prompt="", temperature=0.8, top_k=None,
                       allow_unk=False, seed=cfg.seed)
    return 0


def _print_samples(ckpt, n, length, prompt, temperature, top_k, allow_unk, seed) -> None:
    from .generate import generate_text
    for line in generate_text(_ckpt_path(str(ckpt)), n=n, length=length, prompt=prompt,
                              temperature=temperature, top_k=top_k, allow_unk=allow_unk, seed=seed):
        print(f"  {line}")


def _cmd_generate(a) -> int:
    _print_samples(a.checkpoint, a.num, a.length, a.prompt, a.temperature, a.top_k, a.allow_unk, a.seed)
    return 0


def _cmd_eval(a) -> int:
    from .generate import evaluate_checkpoint
    r = evaluate_checkpoint(_ckpt_path(a.checkpoint), a.corpus)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{r['tokens']} {r['unit']}s: loss {r['nll']:.4f} nats/{r['unit']}, perplexity "
              f"{r['perplexity']:.2f}, {r['bits']:.3f} bits/{r['unit']}")
    return 0


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
