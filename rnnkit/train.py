"""Training a language model: data, epochs, evaluation, schedule, metrics, checkpoints, resume.

    rnnkit train lm --time-budget 60                       # word model on the embedded corpus
    rnnkit train lm --level char --cell lstm --epochs 5     # character model
    rnnkit train lm --out runs/lm --resume                  # continue exactly where it stopped

Two ways of batching, both time-major:
* word level: sentences, each [<s>] + words -> words + [</s>], padded into (T, B) batches with
  lengths (masks); BPTT over the whole sentence, or truncated per output with ``bptt_truncate``.
* char level: the text as one contiguous stream cut into B columns and chunks of ``bptt`` steps;
  the state is carried from chunk to chunk but no gradient crosses a chunk boundary (truncated
  BPTT for long texts).

After every ``eval_every`` epochs the held-out loss is measured, the learning rate halved if it went
up (the classic schedule), a line written to ``metrics.jsonl``, the loss curve redrawn
(``loss.png``) and ``checkpoint.npz`` written atomically. A checkpoint also records the position
inside the epoch (the RNG state the epoch's order was drawn from, the batch index and the carried
state), so ``--resume`` after an interrupt or a time budget continues exactly.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint, rng_from_json, rng_state_to_json, save_checkpoint
from .data import (Vocab, default_corpus_text, default_sentences, load_text, sentence_batches,
                   split_sentences, stream_batches, tokenize_chars, tokenize_words,
                   train_valid_split)
from .errors import RnnkitError
from .models.lm import LanguageModel, LMConfig
from .optim import clip_grad_norm, clip_grad_value, make_optimizer

FORMAT = "rnnkit-lm"


class TrainingStopped(RnnkitError):
    """Training could not go on (a NaN/inf loss); the message names the last good checkpoint."""


@dataclass
class TrainConfig:
    """How to train (stored in checkpoints beside the model's LMConfig)."""

    level: str = "word"  # word | char
    corpus: str | None = None  # a UTF-8 text file; None: the embedded corpus
    lower: bool = True  # word level: lower-case before tokenising
    vocab_size: int = 4000  # cap, special tokens included
    max_sentences: int | None = None  # word level: use at most this many sentences
    valid_fraction: float = 0.1
    batch_size: int = 32
    bptt: int = 64  # char level: chunk length (state carried across chunks, no gradient)
    bptt_truncate: int | None = None  # gradient from each output flows back at most k steps
    optimizer: str = "adam"  # sgd | adagrad | rmsprop | adam
    lr: float = 3e-3
    clip_norm: float | None = 5.0
    clip_value: float | None = None
    epochs: int = 20
    time_budget: float | None = None  # seconds; stop (and checkpoint) when spent
    eval_every: int = 1  # epochs
    halve_lr: bool = True  # halve the learning rate when the held-out loss went up
    seed: int = 0
    out: str = "runs/lm"
    progress: bool | None = None  # None: a bar only when stderr is a terminal

    def validate(self) -> "TrainConfig":
        if self.level not in ("word", "char"):
            raise RnnkitError(f"level must be 'word' or 'char', got {self.level!r}")
        for name in ("batch_size", "bptt", "epochs", "eval_every", "vocab_size"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        need = 2 if self.level == "char" else 5  # real tokens + <unk> (+ <pad>, <s>, </s>)
        if self.vocab_size < need:
            raise RnnkitError(f"--vocab-size must be >= {need} at {self.level} level, got {self.vocab_size}")
        if self.seed < 0:
            raise RnnkitError(f"--seed must be >= 0, got {self.seed}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise RnnkitError(f"time_budget must be > 0 seconds, got {self.time_budget}")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise RnnkitError(f"clip_norm must be > 0, got {self.clip_norm}")
        if self.bptt_truncate is not None and self.bptt_truncate < 0:
            raise RnnkitError(f"bptt_truncate must be >= 0, got {self.bptt_truncate}")
        if self.clip_value is not None and self.clip_value <= 0:
            raise RnnkitError(f"clip_value must be > 0, got {self.clip_value}")
        return self


@dataclass
class Data:
    vocab: Vocab
    train: object  # word: list of (n,) id arrays; char: (N,) id stream
    valid: object


@dataclass
class TrainResult:
    valid_nll: float  # average negative log-likelihood per token (nats)
    perplexity: float
    bits_per_token: float
    steps: int
    epochs_done: float
    history: list = field(default_factory=list)
    checkpoint: str = ""
    stopped_by: str = "epochs"  # epochs | time_budget


# -- data ----------------------------------------------------------------------------------------
def corpus_text(cfg: TrainConfig) -> str:
    return default_corpus_text() if cfg.corpus is None else load_text(cfg.corpus)


def tokenize(text: str, level: str, lower: bool) -> list[str]:
    return tokenize_chars(text) if level == "char" else tokenize_words(text, lower=lower)


def prepare_data(cfg: TrainConfig, vocab: Vocab | None = None) -> Data:
    """Read and split the corpus, build the vocabulary on the training part, encode both parts.

    word: lists of (n,) id arrays, one per sentence; char: (N,) id streams. ``vocab`` reuses a
    checkpoint's vocabulary (resume, eval) instead of building one.
    """
    if cfg.level == "char":
        text = corpus_text(cfg)
        chars = np.array(tokenize_chars(text))
        train, valid = train_valid_split(chars, cfg.valid_fraction, cfg.seed)
        if vocab is None:
            vocab = Vocab.build([train.tolist()], max_size=cfg.vocab_size, specials=("<unk>",))
        data = Data(vocab, vocab.encode(train.tolist()), vocab.encode(valid.tolist()))
        if len(data.train) < 2 * cfg.batch_size or len(data.valid) < 2:
            raise RnnkitError(f"corpus too short: {len(text)} characters for batch size {cfg.batch_size}")
    else:
        if cfg.corpus is None:
            sents = default_sentences(cfg.max_sentences)
        else:
            sents = split_sentences(corpus_text(cfg))[: cfg.max_sentences]
        toks = [t for t in (tokenize_words(s, lower=cfg.lower) for s in sents) if t]
        if len(toks) < 2:
            raise RnnkitError(f"corpus has {len(toks)} sentence(s); need at least 2 (one held out)")
        train, valid = train_valid_split(toks, cfg.valid_fraction, cfg.seed)
        if not train or not valid:
            raise RnnkitError("valid_fraction leaves no training or no held-out sentences")
        if vocab is None:
            vocab = Vocab.build(train, max_size=cfg.vocab_size)
        data = Data(vocab, [vocab.encode(s) for s in train], [vocab.encode(s) for s in valid])
    n_real = sum(1 for t in data.vocab.itos if not t.startswith("<"))
    if n_real < 2:
        raise RnnkitError(f"vocabulary of {n_real} real token(s): the corpus needs at least 2 distinct tokens")
    return data


def epoch_batches(cfg: TrainConfig, data: Data, rng: np.random.Generator | None, train: bool = True):
    """List of (inputs (T, B), targets (T, B), lengths (B,) or None) for one pass."""
    v = data.vocab
    if cfg.level == "char":
        ids = data.train if train else data.valid
        B = cfg.batch_size if train else 1
        return [(i, t, None) for i, t in stream_batches(ids, B, cfg.bptt if train else 256)]
    sents = data.train if train else data.valid
    return list(sentence_batches(sents, cfg.batch_size, rng if train else None,
                                 v.bos_id, v.eos_id, v.pad_id, bucket=train))


def evaluate(model: LanguageModel, cfg: TrainConfig, data: Data) -> tuple[float, int]:
    """(nll_sum, n_tokens) on the held-out part; the char stream is read as one sequence."""
    total, count, state = 0.0, 0, None
    for inp, tgt, lengths in epoch_batches(cfg, data, None, train=False):
        nll, n, s = model.nll(inp, tgt, lengths, state)
        total, count = total + nll, count + n
        state = s if cfg.level == "char" else None
    return total, count


# -- checkpoints --------------------------------------------------------------------------------
def save_lm(path: str | os.PathLike, model: LanguageModel, vocab: Vocab, cfg: TrainConfig | None,
            extra: dict | None = None, arrays: dict | None = None) -> None:
    """Model parameters as ``param/<name>`` plus JSON metadata (config, vocab, training position)."""
    a = {f"param/{k}": v for k, v in model.params.items()}
    a.update(arrays or {})
    meta = {"format": FORMAT, "version": 1, "model": asdict(model.config),
            "train": None if cfg is None else asdict(cfg), "vocab": vocab.itos, **(extra or {})}
    save_checkpoint(path, a, meta)


def load_lm(path: str | os.PathLike) -> tuple[LanguageModel, Vocab, dict, dict]:
    """(model, vocab, meta, arrays) from a checkpoint; a clear error for anything else."""
    arrays, meta = load_checkpoint(path)
    if meta.get("format") != FORMAT:
        raise RnnkitError(f"{path} is not an rnnkit language-model checkpoint (format {meta.get('format')!r})")
    try:
        model = LanguageModel(LMConfig(**meta["model"]))
        vocab = Vocab(meta["vocab"])
        params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
        missing = set(model.params) - set(params)
        if missing:
            raise RnnkitError(f"checkpoint {path} lacks parameters {sorted(missing)}")
        for k, p in model.params.items():
            if params[k].shape != p.shape:
                raise RnnkitError(f"checkpoint {path}: {k} has shape {params[k].shape}, model expects {p.shape}")
            p[...] = params[k]
    except (KeyError, TypeError) as exc:
        raise RnnkitError(f"checkpoint {path} has malformed metadata ({exc})") from exc
    if len(vocab) != model.config.vocab_size:
        raise RnnkitError(f"checkpoint {path}: vocabulary of {len(vocab)} tokens but the model has {model.config.vocab_size}")
    return model, vocab, meta, arrays


def train_config_from(meta: dict, **overrides) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in (meta.get("train") or {}).items() if k in known}
    d.update(overrides)  # every override given counts, None included (e.g. no time budget)
    return TrainConfig(**d).validate()


# -- metrics and plot ---------------------------------------------------------------------------
def _log(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _trim_metrics(path: Path, n_lines: int) -> None:
    """On resume: keep the first n_lines rows, those written before the checkpoint."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    path.write_text("".join(ln + "\n" for ln in rows[:n_lines]), encoding="utf-8")


def _last_eval(path: Path) -> dict | None:
    if not path.exists():
        return None
    rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    evals = [r for r in rows if r.get("kind") == "eval"]
    return evals[-1] if evals else None


class _HardStop(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, without saving (the step in progress may be half done)."""


class _DeferredInterrupt:
    """Ctrl-C during training sets a flag; the loop stops at the next safe point (after a whole
    optimizer step, or after an evaluation and its checkpoint). A second Ctrl-C stops at once."""

    def __init__(self):
        self.requested, self._old = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise _HardStop()
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt()

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def plot_metrics(metrics_path: str | os.PathLike, png_path: str | os.PathLike, unit: str = "nats") -> bool:
    """Draw training and held-out loss against steps as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [json.loads(ln) for ln in Path(metrics_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    tr = [(r["step"], r["train_loss"]) for r in rows if r.get("kind") == "train"]
    va = [(r["step"], r["valid_loss"]) for r in rows if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    if tr:
        ax.plot(*zip(*tr), lw=1, alpha=0.7, label="training (running mean)")
    if va:
        ax.plot(*zip(*va), "o-", lw=2, label="held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"loss per token ({unit})")
    ax.set_title("rnnkit language model")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = str(png_path) + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return True


def _progress(total: int, desc: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


# -- the loop -----------------------------------------------------------------------------------
def train_lm(cfg: TrainConfig, model_cfg: LMConfig | None = None, *, resume: bool = False,
             log=print) -> TrainResult:
    """Train (or resume) a language model; write checkpoint.npz, metrics.jsonl and loss.png in cfg.out."""
    cfg.validate()
    out = Path(cfg.out)
    ckpt_path, metrics_path, png_path = out / "checkpoint.npz", out / "metrics.jsonl", out / "loss.png"
    state = None  # carried recurrent state (char streams)
    if resume:
        if not ckpt_path.exists():
            raise RnnkitError(f"nothing to resume: {ckpt_path} does not exist")
        model, vocab, meta, arrays = load_lm(ckpt_path)
        pos = meta["position"]
        data = prepare_data(cfg, vocab)
        opt = make_optimizer(meta["optim"]["name"], pos["lr"])
        opt.load_state_dict({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")},
                            meta["optim"])
        opt.lr = pos["lr"]
        epoch, batch0, step = pos["epoch"], pos["batch"], pos["step"]
        epoch_rng_state = pos["epoch_rng"]
        prev_valid, best_valid = pos["prev_valid"], pos["best_valid"]
        if any(k.startswith("state/") for k in arrays):
            state = tuple(arrays[f"state/{i}"] for i in range(model.rnn.cell.n_states))
        elapsed0 = pos["elapsed"]
        running, run_n = pos.get("running", 0.0), pos.get("running_n", 0)
        n_lines = pos.get("metrics_lines", 0)
        _trim_metrics(metrics_path, n_lines)
        log(f"resuming from {ckpt_path}: epoch {epoch + 1}, batch {batch0}, step {step}")
    else:
        data = prepare_data(cfg)
        mc = model_cfg or LMConfig(vocab_size=len(data.vocab))
        mc.vocab_size = len(data.vocab)
        model = LanguageModel(mc)
        vocab = data.vocab
        opt = make_optimizer(cfg.optimizer, cfg.lr)
        epoch, batch0, step = 0, 0, 0
        epoch_rng_state = rng_state_to_json(np.random.default_rng(cfg.seed))
        prev_valid = best_valid = None
        elapsed0 = 0.0
        running, run_n, n_lines = 0.0, 0, 0
        out.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("", encoding="utf-8")

    unit_per = "char" if cfg.level == "char" else "word"
    t_start = time.perf_counter()
    elapsed = lambda: elapsed0 + time.perf_counter() - t_start  # noqa: E731
    history: list[dict] = []
    stopped_by = "epochs"

    def checkpoint(ep: int, batch: int, rng_state: dict, st) -> None:
        oa, om = opt.state_dict()
        arrays = {f"optim/{k}": v for k, v in oa.items()}
        if st is not None:
            arrays.update({f"state/{i}": s for i, s in enumerate(st)})
        pos = {"epoch": ep, "batch": batch, "step": step, "epoch_rng": rng_state, "lr": opt.lr,
               "prev_valid": prev_valid, "best_valid": best_valid, "elapsed": elapsed(),
               "running": running, "running_n": run_n, "metrics_lines": n_lines}
        save_lm(ckpt_path, model, vocab, cfg, {"position": pos, "optim": om}, arrays)

    def log_row(row: dict) -> None:
        nonlocal n_lines
        _log(metrics_path, row)
        n_lines += 1

    def do_eval(ep_float: float, schedule: bool = True) -> dict:
        """Held-out loss; with ``schedule`` it also drives the learning-rate halving (the
        evaluation at a time-budget stop does not, so that a resumed run stays exact)."""
        nonlocal prev_valid, best_valid
        nll, n = evaluate(model, cfg, data)
        v = nll / max(n, 1)
        row = {"kind": "eval", "step": step, "epoch": round(ep_float, 4), "valid_loss": v,
               "valid_ppl": math.exp(min(v, 700)), "valid_bits": v / math.log(2), "lr": opt.lr,
               "elapsed": round(elapsed(), 3)}
        if not schedule:
            row["partial_epoch"] = True
        elif cfg.halve_lr and prev_valid is not None and v > prev_valid:
            opt.lr *= 0.5
            row["lr_halved_to"] = opt.lr
        if schedule:
            prev_valid = v
            best_valid = v if best_valid is None else min(best_valid, v)
        log_row(row)
        history.append(row)
        log(f"epoch {ep_float:6.2f}  step {step:6d}  held-out loss {v:.4f}  "
            f"perplexity {row['valid_ppl']:.2f}  bits/{unit_per} {row['valid_bits']:.3f}  "
            f"lr {row['lr']:.3g}" + ("  (lr halved)" if "lr_halved_to" in row else ""))
        plot_metrics(metrics_path, png_path, "nats")
        return row

    next_b = batch0  # the first batch not yet applied: where an interrupt resumes
    interrupt = _DeferredInterrupt()
    try:
        with interrupt:
            while epoch < cfg.epochs:
                rng = rng_from_json(epoch_rng_state)
                batches = epoch_batches(cfg, data, rng, train=True)
                if batch0 == 0 and cfg.level == "char":
                    state = None  # each epoch reads the stream from its start
                bar = _progress(len(batches), f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
                if bar is not None:
                    bar.update(batch0)
                for b in range(batch0, len(batches)):
                    inp, tgt, lengths = batches[b]
                    nll, n, grads, s_n = model.loss_and_grads(inp, tgt, lengths, state, cfg.bptt_truncate)
                    loss = nll / max(n, 1)
                    gnorm = clip_grad_norm(grads, cfg.clip_norm) if cfg.clip_norm else None
                    if not math.isfinite(loss) or (gnorm is not None and not math.isfinite(gnorm)):
                        where = (f"the last good checkpoint is {ckpt_path}" if ckpt_path.exists()
                                 else "no checkpoint was written yet")
                        raise TrainingStopped(f"loss became {loss} at step {step + 1} (epoch {epoch + 1}); "
                                              f"stopped without updating; {where}; try a lower --lr or --clip-norm")
                    if cfg.clip_value:
                        clip_grad_value(grads, cfg.clip_value)
                    opt.step(model.params, grads)
                    step += 1
                    state = s_n if cfg.level == "char" else None
                    next_b = b + 1
                    running, run_n = running + nll, run_n + n
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.3f}")
                        bar.update(1)
                    if step % 50 == 0:
                        log_row({"kind": "train", "step": step, "train_loss": running / run_n,
                                 "lr": opt.lr, "grad_norm": gnorm, "elapsed": round(elapsed(), 3)})
                        running, run_n = 0.0, 0
                    if cfg.time_budget is not None and time.perf_counter() - t_start >= cfg.time_budget:
                        if bar is not None:
                            bar.close()
                        stopped_by = "time_budget"
                        do_eval(epoch + (b + 1) / len(batches), schedule=False)
                        # b + 1 == len(batches) is a valid position too: the epoch's evaluation is due
                        checkpoint(epoch, b + 1, epoch_rng_state, state)
                        raise _BudgetSpent
                    interrupt.check()
                if bar is not None:
                    bar.close()
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                    do_eval(epoch + 1)  # an interrupt here resumes at this evaluation (next_b: all done)
                    epoch, batch0, next_b = epoch + 1, 0, 0
                    epoch_rng_state = rng_state_to_json(rng)
                    checkpoint(epoch, 0, epoch_rng_state, None)
                else:
                    epoch, batch0, next_b = epoch + 1, 0, 0
                    epoch_rng_state = rng_state_to_json(rng)
                interrupt.check()
    except _BudgetSpent:
        pass
    except _HardStop:
        raise KeyboardInterrupt() from None  # mid-step: nothing saved, the last checkpoint stands
    except KeyboardInterrupt:
        # between steps the parameters are consistent: keep the position so --resume continues
        checkpoint(epoch, next_b, epoch_rng_state, state)
        raise

    last = history[-1] if history else _last_eval(metrics_path) or do_eval(epoch)
    return TrainResult(valid_nll=last["valid_loss"], perplexity=last["valid_ppl"],
                       bits_per_token=last["valid_bits"], steps=step, epochs_done=last["epoch"],
                       history=history, checkpoint=str(ckpt_path), stopped_by=stopped_by)


class _BudgetSpent(Exception):
    pass
