"""The language-model task: next word or next character (Deep Learning book 10.2).

* word level: sentences, each [<s>] + words -> words + [</s>], padded into (T, B) batches with
  lengths; BPTT over the whole sentence, or truncated per output with ``bptt_truncate``.
* char level: the text as one stream cut into B columns and chunks of ``bptt`` steps; the state
  is carried from chunk to chunk but no gradient crosses a chunk boundary.

The checkpoint keeps the vocabulary, the corpus's absolute path and a hash of its text, so
``eval`` and ``--resume`` work from another folder and refuse a corpus edited since.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..data import (Vocab, default_corpus_text, default_sentences, load_text, sentence_batches,
                    split_sentences, stream_batches, tokenize_chars, tokenize_words,
                    train_valid_split)
from ..errors import RnnkitError
from ..models.lm import LanguageModel, LMConfig
from . import register_task
from .base import Task, perplexity_metrics


@dataclass
class LMDataConfig:
    """The data of a language model."""

    level: str = field(default="word", metadata={"help": "word | char", "choices": ["word", "char"]})
    corpus: str | None = field(default=None, metadata={
        "help": "UTF-8 text file (default: the embedded corpus)", "metavar": "PATH"})
    lower: bool = field(default=True, metadata={"help": "word level: lower-case the text"})
    vocab_size: int = field(default=4000, metadata={"help": "vocabulary cap, special tokens included"})
    max_sentences: int | None = field(default=None, metadata={"help": "word level: use at most this many sentences"})
    valid_fraction: float = field(default=0.1, metadata={"help": "held-out share of the corpus"})
    batch_size: int = field(default=32, metadata={"help": "sequences per batch"})
    bptt: int = field(default=64, metadata={
        "help": "char level: chunk length; the state is carried across chunks, the gradient is not"})
    bptt_truncate: int | None = field(default=None, metadata={
        "help": "the gradient from each output flows back at most K steps (default: full BPTT)",
        "metavar": "K"})
    seed: int = field(default=0, metadata={"cli": False})  # the split; set from --seed
    corpus_hash: str | None = field(default=None, metadata={"cli": False})

    def validate(self) -> "LMDataConfig":
        if self.level not in ("word", "char"):
            raise RnnkitError(f"--level must be 'word' or 'char', got {self.level!r}")
        for name in ("batch_size", "bptt", "vocab_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise RnnkitError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        need = 2 if self.level == "char" else 5  # real tokens + <unk> (+ <pad>, <s>, </s>)
        if self.vocab_size < need:
            raise RnnkitError(f"--vocab-size must be >= {need} at {self.level} level, got {self.vocab_size}")
        k = self.bptt_truncate
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise RnnkitError(f"--bptt-truncate must be an integer >= 0, got {k!r}")
        if not isinstance(self.valid_fraction, (int, float)) or not 0 < self.valid_fraction < 1:
            raise RnnkitError(f"--valid-fraction must lie strictly between 0 and 1, got {self.valid_fraction!r}")
        if self.max_sentences is not None and self.max_sentences < 2:
            raise RnnkitError(f"--max-sentences must be >= 2, got {self.max_sentences}")
        return self


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


@register_task
class LMTask(Task):
    name = "lm"
    Config = LMDataConfig
    ModelConfig = LMConfig
    description = ("Train a recurrent language model on a text file or on the embedded corpus "
                   "(CPython's English documentation), then print perplexity and samples.")

    def __init__(self, cfg: LMDataConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        self.carries_state = cfg.level == "char"
        self.loss_label = f"loss per {'char' if cfg.level == 'char' else 'word'} (nats)"
        vocab = None
        if state is not None:
            _, meta = state
            itos = meta.get("vocab") if isinstance(meta, dict) else None
            if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
                raise RnnkitError("malformed checkpoint: the vocabulary is missing or not a list of strings")
            vocab = Vocab(itos)
        if not load_data and vocab is not None:
            self.vocab, self.train, self.valid = vocab, None, None
            return
        if cfg.corpus is not None:
            cfg.corpus = os.path.abspath(cfg.corpus)
        text = default_corpus_text() if cfg.level == "char" and cfg.corpus is None else (
            load_text(cfg.corpus) if cfg.corpus is not None else None)
        if text is not None:
            h = text_hash(text)
            if cfg.corpus_hash is not None and cfg.corpus_hash != h:
                raise RnnkitError(f"the corpus {cfg.corpus} changed since this run was trained "
                                  f"(its held-out split would differ); restore it or train anew")
            cfg.corpus_hash = h
        self._prepare(text, vocab)

    def _prepare(self, text: str | None, vocab: Vocab | None) -> None:
        cfg = self.cfg
        if cfg.level == "char":
            chars = np.array(tokenize_chars(text))
            train, valid = train_valid_split(chars, cfg.valid_fraction, cfg.seed)
            if vocab is None:
                vocab = Vocab.build([train.tolist()], max_size=cfg.vocab_size, specials=("<unk>",))
            self.vocab, self.train, self.valid = vocab, vocab.encode(train.tolist()), vocab.encode(valid.tolist())
            if len(self.train) < 2 * cfg.batch_size or len(self.valid) < 2:
                raise RnnkitError(f"corpus too short: {len(text)} characters for batch size {cfg.batch_size}")
        else:
            sents = (default_sentences(cfg.max_sentences) if text is None
                     else split_sentences(text)[: cfg.max_sentences])
            toks = [t for t in (tokenize_words(s, lower=cfg.lower) for s in sents) if t]
            if len(toks) < 2:
                raise RnnkitError(f"corpus has {len(toks)} sentence(s); need at least 2 (one held out)")
            train, valid = train_valid_split(toks, cfg.valid_fraction, cfg.seed)
            if vocab is None:
                vocab = Vocab.build(train, max_size=cfg.vocab_size)
            self.vocab = vocab
            self.train = [vocab.encode(s) for s in train]
            self.valid = [vocab.encode(s) for s in valid]
        specials = {"<pad>", "<unk>", "<s>", "</s>"} if cfg.level == "word" else {"<unk>"}
        n_real = sum(1 for t in self.vocab.itos if t not in specials)
        if n_real < 2:
            raise RnnkitError(f"vocabulary of {n_real} real token(s): the corpus needs at least 2 distinct tokens")

    # -- the task protocol ------------------------------------------------------------------------
    def build_model(self, mcfg: LMConfig, seed: int = 0) -> LanguageModel:
        mcfg.vocab_size = len(self.vocab)
        mcfg.seed = seed
        model = LanguageModel(mcfg)
        model.rnn.bptt_truncate = self.cfg.bptt_truncate
        return model

    def batches(self, split: str, rng):
        cfg, v = self.cfg, self.vocab
        train = split == "train"
        if cfg.level == "char":
            ids = self.train if train else self.valid
            B = cfg.batch_size if train else 1
            return [(i, t, None) for i, t in stream_batches(ids, B, cfg.bptt if train else 256)]
        sents = self.train if train else self.valid
        return list(sentence_batches(sents, cfg.batch_size, rng if train else None,
                                     v.bos_id, v.eos_id, v.pad_id, bucket=train))

    def summarize(self, loss_sum, count, extra):
        return perplexity_metrics(loss_sum, count)

    def state_dict(self):
        return {}, {"vocab": self.vocab.itos}

    def check_model_config(self, mcfg: dict, shapes: dict) -> None:
        emb = shapes.get("embed.weight")
        if not isinstance(emb, list) or len(emb) != 2:
            raise RnnkitError("malformed checkpoint: embed.weight is missing")
        for key, want in (("vocab_size", emb[0]), ("embed_size", emb[1])):
            if mcfg.get(key) != want:
                raise RnnkitError(f"malformed checkpoint: model_config {key} {mcfg.get(key)!r} "
                                  f"does not match the stored embedding {tuple(emb)}")
        if shapes.get("rnn.weight_hh_l0", [None, mcfg.get("hidden_size")])[-1] != mcfg.get("hidden_size"):
            raise RnnkitError("malformed checkpoint: hidden_size does not match rnn.weight_hh_l0")

    # -- what the CLI shows -----------------------------------------------------------------------
    def after_training(self, model, result, out_dir, samples: int = 5, seed: int = 0) -> None:
        m = result.metrics
        unit = "char" if self.cfg.level == "char" else "word"
        print(f"\nheld-out perplexity {_num(m['ppl'])} ({_num(m['bits'])} bits/{unit}) after "
              f"{result.steps} steps ({result.stopped_by.replace('_', ' ')}); checkpoint {result.checkpoint}")
        if not math.isfinite(m["loss"]) or m["loss"] > 50:
            print("rnnkit: warning: training diverged (held-out loss is not finite or huge); "
                  "try a lower --lr", flush=True)
            return
        if samples > 0:
            from ..generate import sample_text
            print("samples:")
            for line in sample_text(model, self, n=samples, seed=seed):
                print(f"  {line}")

    def predict(self, model, inputs, args) -> int:
        """For each prompt, the likeliest next tokens with their probabilities."""
        if not inputs:
            raise RnnkitError("give one or more prompts (or lines on stdin)")
        for text, cands in zip(inputs, _predict_next(self, model, inputs, args.top)):
            print(f"{text}\t" + "  ".join(f"{t!r} {p:.3f}" for t, p in cands))
        return 0


def _predict_next(task, model, prompts: list[str], top: int) -> list[list[tuple[str, float]]]:
    """The ``top`` likeliest next tokens after each prompt (word models start from <s>)."""
    vocab, cfg = task.vocab, task.cfg
    out = []
    for text in prompts:
        if cfg.level == "char":
            toks = tokenize_chars(text)
            unknown = sorted({t for t in toks if t not in vocab})
            if unknown:
                raise RnnkitError(f"prompt {text!r} has characters the model never saw: {''.join(unknown)!r}")
            ids = vocab.encode(toks) if toks else np.array([vocab.encode(["\n"])[0] if "\n" in vocab else 0])
        else:
            toks = tokenize_words(text, lower=cfg.lower)
            ids = np.concatenate([[vocab.bos_id], vocab.encode(toks)]).astype(np.int64)
        from ..layers.stepper import Stepper
        st = Stepper(model.rnn, 1, embedding=model.embed.weight)
        for i in ids:
            h = st.step(np.array([i]))
        z = (h @ model.out.weight.T + model.out.bias)[0].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        best = np.argsort(-p)[:top]
        out.append([(vocab.itos[j], float(p[j])) for j in best])
    return out


def _num(v: float) -> str:
    return f"{v:.4g}" if (not math.isfinite(v) or abs(v) >= 1e5) else f"{v:.3f}" if v < 100 else f"{v:.2f}"
