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
from typing import Any

import numpy as np

from ..data import (
    Vocab,
    default_corpus_text,
    default_sentences,
    load_text,
    sentence_batches,
    stream_batches,
    tokenize_chars,
    tokenize_words,
    train_valid_split,
)
from ..data.formats import read_sentences
from ..errors import RnnkitError, check_ints, shown
from ..models.lm import LanguageModel, LMConfig
from .base import Task, perplexity_metrics
from .generation import sample_text
from .registry import register_task
from .results import GenerateOptions, NextTokens, Predictions, PredictOptions, Samples, Summary


@dataclass
class LMDataConfig:
    """The data of a language model."""

    level: str = field(
        default="word", metadata={"help": "word | char", "choices": ["word", "char"]}
    )
    corpus: str | None = field(
        default=None,
        metadata={"help": "UTF-8 text file (default: the embedded corpus)", "metavar": "PATH"},
    )
    format: str = field(
        default="auto",
        metadata={
            "help": "word level: lines (one sentence per line), tokens (pre-tokenized, e.g. Penn "
            "Treebank files: split on spaces only), text (raw prose), auto (detect)",
            "choices": ["auto", "lines", "tokens", "text"],
        },
    )
    unk_token: str = field(
        default="<unk>",
        metadata={"help": "the corpus's own unknown-word token, read as rnnkit's <unk>"},
    )
    valid: str | None = field(
        default=None,
        metadata={"help": "held-out file (replaces the random split)", "metavar": "PATH"},
    )
    test: str | None = field(
        default=None,
        metadata={
            "help": "test file: its perplexity is reported at the end and by eval --split test",
            "metavar": "PATH",
        },
    )
    batching: str = field(
        default="sentences",
        metadata={
            "help": "word level: sentences (padded batches) or stream (sentences joined with </s>, "
            "cut into columns and chunks of --bptt, state carried: most published LMs)",
            "choices": ["sentences", "stream"],
        },
    )
    disk_stream: bool = field(
        default=False,
        metadata={
            "help": "word streams larger than memory: count the vocabulary in one pass and read "
            "token ids from a memory-mapped file beside the run (reused while the corpus is "
            "unchanged)"
        },
    )
    lower: bool = field(
        default=True,
        metadata={
            "help": "lower-case raw text (word level; pre-tokenized corpora are kept as they are)"
        },
    )
    vocab_size: int = field(
        default=4000, metadata={"help": "vocabulary cap, special tokens included"}
    )
    max_sentences: int | None = field(
        default=None, metadata={"help": "word level: use at most this many sentences"}
    )
    valid_fraction: float = field(default=0.1, metadata={"help": "held-out share of the corpus"})
    batch_size: int = field(default=32, metadata={"help": "sequences per batch"})
    bptt: int = field(
        default=64,
        metadata={
            "help": "char level: chunk length; the state is carried across chunks, "
            "the gradient is not"
        },
    )
    bptt_truncate: int | None = field(
        default=None,
        metadata={
            "help": "the gradient from each output flows back at most K steps (default: full BPTT)",
            "metavar": "K",
        },
    )
    seed: int = field(default=0, metadata={"cli": False})  # the split; set from --seed
    corpus_hash: str | None = field(default=None, metadata={"cli": False})
    work_dir: str | None = field(default=None, metadata={"cli": False})  # the run folder

    def validate(self) -> LMDataConfig:
        if self.level not in ("word", "char"):
            raise RnnkitError(f"--level must be 'word' or 'char', got {self.level!r}")
        check_ints(self, ("batch_size", "bptt", "vocab_size"))
        need = 2 if self.level == "char" else 5  # real tokens + <unk> (+ <pad>, <s>, </s>)
        if self.vocab_size < need:
            raise RnnkitError(
                f"--vocab-size must be >= {need} at {self.level} level, got {self.vocab_size}"
            )
        k = self.bptt_truncate
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise RnnkitError(f"--bptt-truncate must be an integer >= 0, got {k!r}")
        if not isinstance(self.valid_fraction, (int, float)) or not 0 < self.valid_fraction < 1:
            raise RnnkitError(
                f"--valid-fraction must lie strictly between 0 and 1, got {self.valid_fraction!r}"
            )
        if self.max_sentences is not None and self.max_sentences < 2:
            raise RnnkitError(f"--max-sentences must be >= 2, got {self.max_sentences}")
        if self.format not in ("auto", "lines", "tokens", "text"):
            raise RnnkitError(f"--format must be auto, lines, tokens or text, got {self.format!r}")
        if self.batching not in ("sentences", "stream"):
            raise RnnkitError(f"--batching must be sentences or stream, got {self.batching!r}")
        if self.disk_stream and (
            self.level != "word" or self.batching != "stream" or self.corpus is None
        ):
            raise RnnkitError(
                "--disk-stream needs --level word, --batching stream and a --corpus file"
            )
        if (self.valid or self.test) and self.corpus is None:
            raise RnnkitError("--valid and --test need a --corpus file to train on")
        return self

    @property
    def streams(self) -> bool:
        return self.level == "char" or self.batching == "stream"


@dataclass
class LMSummary(Summary):
    """A language model's end of training: ``unit`` (word or char), the test metrics when there
    is a test file, whether training diverged (then no samples), the sampled texts."""

    unit: str = "word"
    test: dict | None = None
    diverged: bool = False
    samples: list[str] = field(default_factory=list)


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


@register_task
class LMTask(Task):
    name = "lm"
    Config = LMDataConfig
    ModelConfig = LMConfig

    fit_defaults_shown = {"lr": "0.002 with --level word, 0.003 with char"}

    @classmethod
    def fit_defaults_for(cls, model_cfg, task_cfg=None) -> dict:
        """Adam at 3e-3 for characters, 2e-3 for words: on the README's 60 s word job 2e-3 ended
        0.04-0.06 nats lower than 3e-3 (seeds 0 and 1), at character level 3e-3 0.01 lower."""
        d = dict(cls.fit_defaults)
        if getattr(task_cfg, "level", None) == "word" and "lr" not in d:
            d["lr"] = 2e-3
        return d

    # Zaremba, Sutskever & Vinyals (2014), "small": 2 x LSTM 200, batch 20, 35 steps, weights
    # U(-0.1, 0.1), 13 epochs, SGD at 1 halved after each epoch from the 4th, clip 5. Their
    # gradient is of the loss summed over the 35 steps (mean over the batch); rnnkit's is per token,
    # 35 times smaller, so lr 35 and clip 5/35 give exactly their update.
    presets = {
        "zaremba-small": {
            "num_layers": 2,
            "hidden_size": 200,
            "embed_size": 200,
            "init_range": 0.1,
            "forget_bias": 0.0,
            "dropout": 0.0,
            "cell": "lstm",
            "level": "word",
            "batching": "stream",
            "batch_size": 20,
            "bptt": 35,
            "vocab_size": 10003,
            "optimizer": "sgd",
            "lr": 35.0,
            "clip_norm": 5.0 / 35.0,
            "lr_decay": 0.5,
            "lr_decay_start": 4,
            "halve_lr": False,
            "epochs": 13,
        }
    }
    description = (
        "Train a recurrent language model on a text file or on the embedded corpus "
        "(CPython's English documentation), then print perplexity and samples."
    )

    def __init__(self, cfg: LMDataConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        self.carries_state = cfg.streams
        self.test_data: Any = None
        self.loss_label = f"loss per {'char' if cfg.level == 'char' else 'word'} (nats)"
        vocab = None
        if state is not None:
            _, meta = state
            itos = meta.get("vocab") if isinstance(meta, dict) else None
            if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
                raise RnnkitError(
                    "malformed checkpoint: the vocabulary is missing or not a list of strings"
                )
            vocab = Vocab(itos)
        if not load_data and vocab is not None:
            self.vocab, self.train, self.valid = vocab, None, None
            return
        for name in ("corpus", "valid", "test"):
            if getattr(cfg, name) is not None:
                setattr(cfg, name, os.path.abspath(getattr(cfg, name)))
        if cfg.disk_stream:
            self._prepare_disk(vocab)
            return
        text = (
            default_corpus_text()
            if cfg.level == "char" and cfg.corpus is None
            else (load_text(cfg.corpus) if cfg.corpus is not None else None)
        )
        if text is not None:
            h = text_hash(text)
            if cfg.corpus_hash is not None and cfg.corpus_hash != h:
                raise RnnkitError(
                    f"the corpus {cfg.corpus} changed since this run was trained "
                    f"(its held-out split would differ); restore it or train anew"
                )
            cfg.corpus_hash = h
        self._prepare(text, vocab)

    def _prepare(self, text: str | None, vocab: Vocab | None) -> None:
        cfg = self.cfg
        if cfg.level == "char":
            if text is None:  # unreachable: char level defaults to the embedded corpus's text
                raise RnnkitError("char level needs a corpus")
            chars: np.ndarray = np.array(tokenize_chars(text))
            ctrain, cvalid = train_valid_split(chars, cfg.valid_fraction, cfg.seed)
            if vocab is None:
                vocab = Vocab.build([ctrain.tolist()], max_size=cfg.vocab_size, specials=("<unk>",))
            self.vocab, self.train, self.valid = (
                vocab,
                vocab.encode(ctrain.tolist()),
                vocab.encode(cvalid.tolist()),
            )
            if len(self.train) < 2 * cfg.batch_size or len(self.valid) < 2:
                raise RnnkitError(
                    f"corpus too short: {len(text)} characters for batch size {cfg.batch_size}"
                )
        else:
            toks = self._sentences(text)
            if cfg.valid is not None:
                train, valid = toks, self._sentences(load_text(cfg.valid))
                if not valid:
                    raise RnnkitError(f"no sentences in --valid {cfg.valid}")
            else:
                if len(toks) < 2:
                    raise RnnkitError(
                        f"corpus has {len(toks)} sentence(s); need at least 2 (one held out)"
                    )
                train, valid = train_valid_split(toks, cfg.valid_fraction, cfg.seed)
            if vocab is None:
                vocab = Vocab.build(train, max_size=cfg.vocab_size)
            self.vocab = vocab
            self.train = [vocab.encode(s) for s in train]
            self.valid = [vocab.encode(s) for s in valid]
            if cfg.test is not None:
                self.test_data = [vocab.encode(s) for s in self._sentences(load_text(cfg.test))]
            if cfg.batching == "stream":
                self.train, self.valid = self._join(self.train), self._join(self.valid)
                if self.test_data is not None:
                    self.test_data = self._join(self.test_data)
                if len(self.train) < 2 * cfg.batch_size:
                    raise RnnkitError(
                        f"corpus too short: {len(self.train)} tokens "
                        f"for batch size {cfg.batch_size}"
                    )
        n_real = self.vocab.num_regular
        if n_real < 2:
            raise RnnkitError(
                f"vocabulary of {n_real} real token(s): the corpus needs at least 2 distinct tokens"
            )

    def _sentences(self, text: str | None) -> list[list[str]]:
        """Sentences of tokens: the embedded corpus, or a file in its format (``--format``)."""
        cfg = self.cfg
        if text is None:
            sents = default_sentences(cfg.max_sentences)
            return [t for t in (tokenize_words(s, lower=cfg.lower) for s in sents) if t]
        toks = read_sentences(
            text, cfg.format, lower=None if cfg.lower else False, unk_token=cfg.unk_token or None
        )
        return toks[: cfg.max_sentences]

    def _join(self, sents: list) -> np.ndarray:
        """Sentences joined into one stream, each followed by </s> (word-level streams)."""
        eos = np.array([self.vocab.eos_id], np.int64)
        return np.concatenate([np.concatenate([s, eos]) for s in sents]) if sents else eos

    def _prepare_disk(self, vocab) -> None:
        """Word streams from disk: the vocabulary counted in one pass, ids memory-mapped."""
        from ..data.bigcorpus import count_vocab, encode_to_memmap

        cfg = self.cfg
        lower = None if cfg.lower else False
        unk = cfg.unk_token or None
        if vocab is None:
            vocab = count_vocab(
                cfg.corpus, cfg.format, lower, max_size=cfg.vocab_size, unk_token=unk
            )
        work = cfg.work_dir or os.path.dirname(cfg.corpus)
        ids = encode_to_memmap(cfg.corpus, vocab, cfg.format, work, lower=lower, unk_token=unk)
        self.vocab = vocab
        if cfg.valid is not None:
            self.train = ids
            self.valid = np.asarray(
                encode_to_memmap(cfg.valid, vocab, cfg.format, work, lower=lower, unk_token=unk)
            )
        else:  # the last share of the stream is held out
            n_valid = max(2, int(len(ids) * cfg.valid_fraction))
            self.train, self.valid = ids[:-n_valid], np.asarray(ids[-n_valid:])
        if cfg.test is not None:
            self.test_data = np.asarray(
                encode_to_memmap(cfg.test, vocab, cfg.format, work, lower=lower, unk_token=unk)
            )

    def set_eval_text(self, text: str, name: str) -> None:
        """Evaluate on this text (``eval --corpus``): read like the training data."""
        v = self.vocab
        if self.cfg.level == "char":
            self.valid = v.encode(tokenize_chars(text))
            return
        sents = [v.encode(t) for t in self._sentences(text)]
        if not sents:
            raise RnnkitError(f"no sentences in {name}")
        self.valid = self._join(sents) if self.cfg.streams else sents

    # -- the task protocol ------------------------------------------------------------------------
    def build_model(self, mcfg: LMConfig, seed: int = 0) -> LanguageModel:
        mcfg.vocab_size = len(self.vocab)
        mcfg.seed = seed
        model = LanguageModel(mcfg)
        model.rnn.bptt_truncate = self.cfg.bptt_truncate
        return model

    def _split(self, split: str):
        if split == "test":
            if self.test_data is None:
                raise RnnkitError("this run has no test set: train with --test FILE")
            return self.test_data
        return self.train if split == "train" else self.valid

    def batches(self, split: str, rng):
        cfg, v = self.cfg, self.vocab
        train = split == "train"
        data = self._split(split)
        if cfg.streams:
            B = cfg.batch_size if train else 1
            if cfg.disk_stream and train:
                from ..data.bigcorpus import StreamBatches

                sb = StreamBatches(data, B, cfg.bptt)
                return _Lazy(len(sb), lambda i: (*sb[i], None))
            return [
                (i, t, None)
                for i, t in stream_batches(np.asarray(data), B, cfg.bptt if train else 256)
            ]
        sents = data
        return list(
            sentence_batches(
                sents,
                cfg.batch_size,
                rng if train else None,
                v.bos_id,
                v.eos_id,
                v.pad_id,
                bucket=train,
            )
        )

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
                raise RnnkitError(
                    f"malformed checkpoint: model_config {key} {mcfg.get(key)!r} "
                    f"does not match the stored embedding {tuple(emb)}"
                )
        if shapes.get("rnn.weight_hh_l0", [None, mcfg.get("hidden_size")])[-1] != mcfg.get(
            "hidden_size"
        ):
            raise RnnkitError("malformed checkpoint: hidden_size does not match rnn.weight_hh_l0")

    # -- what a person sees ----------------------------------------------------------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> LMSummary:
        """Held-out (and test) perplexity; ``samples`` sentences unless training diverged."""
        m = result.metrics
        test = None
        if self.test_data is not None:
            from ..fit import evaluate

            test = evaluate(self, model, "test")
        diverged = not math.isfinite(m["loss"]) or m["loss"] > 50
        lines = []
        if samples > 0 and not diverged:
            lines = sample_text(model, self, GenerateOptions(n=samples, seed=seed)).lines
        unit = "char" if self.cfg.level == "char" else "word"
        return LMSummary(
            **Summary.of(result), unit=unit, test=test, diverged=diverged, samples=lines
        )

    def generate(self, model, options: GenerateOptions) -> Samples:
        return sample_text(model, self, options)

    def predict(self, model, inputs, options: PredictOptions) -> Predictions:
        """For each prompt, the likeliest next tokens with their probabilities."""
        if not inputs:
            raise RnnkitError("give one or more prompts (or lines on stdin)")
        return Predictions(
            [
                NextTokens(t, c)
                for t, c in zip(inputs, _predict_next(self, model, inputs, options.top))
            ]
        )

    def shard(self, batch, rank: int, size: int):
        """This rank's share of a global batch (data parallelism, ``mpirun -n K``).

        Streams (char level, ``--batching stream``): the (T, B) chunk's contiguous block of columns
        :func:`rnnkit.parallel.block` (a contiguous slice of the stream; the default
        ``shard_carry`` cuts the carried state the same way). Sentences: every ``size``-th
        sentence from ``rank`` (batches are sorted by length inside a bucket, so a strided share
        balances the ranks' tokens), padded only to its own longest. None: nothing for this rank.
        """
        from ..parallel import block

        inputs, targets, lengths = batch
        if lengths is None:
            lo, hi = block(inputs.shape[1], rank, size)
            if lo == hi:
                return None
            return (
                np.ascontiguousarray(inputs[:, lo:hi]),
                np.ascontiguousarray(targets[:, lo:hi]),
                None,
            )
        cols = np.arange(rank, inputs.shape[1], size)
        if cols.size == 0:
            return None
        ln = lengths[cols]
        T = int(ln.max())
        return (
            np.ascontiguousarray(inputs[:T, cols]),
            np.ascontiguousarray(targets[:T, cols]),
            np.ascontiguousarray(ln),
        )


def _predict_next(task, model, prompts: list[str], top: int) -> list[list[tuple[str, float]]]:
    """The ``top`` likeliest next tokens after each prompt (word models start from <s>)."""
    vocab, cfg = task.vocab, task.cfg
    out = []
    for text in prompts:
        if cfg.level == "char":
            toks = tokenize_chars(text)
            unknown = sorted({t for t in toks if t not in vocab})
            if unknown:
                raise RnnkitError(
                    f"prompt {shown(text)} has characters the model never saw: {''.join(unknown)!r}"
                )
            ids = (
                vocab.encode(toks)
                if toks
                else np.array([vocab.encode(["\n"])[0] if "\n" in vocab else 0])
            )
        else:
            toks = tokenize_words(text, lower=cfg.lower)
            start = vocab.eos_id if cfg.streams else vocab.bos_id
            ids = np.concatenate([[start], vocab.encode(toks)]).astype(np.int64)
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


class _Lazy:
    """An indexable sequence whose items are made on demand (batches read from disk)."""

    def __init__(self, n: int, get):
        self.n, self.get = n, get

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.get(i)
