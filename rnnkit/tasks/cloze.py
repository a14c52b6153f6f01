"""Fill in the blank (Deep Learning book 10.3): predict each word of a sentence from the words
around it, with a bidirectional model (``--direction both``) or, as a baseline of the same size,
from the words before it only (``--direction forward``).

Data: the embedded corpus (``rnnkit.data.default_sentences()``) or ``--corpus FILE`` (split into
sentences, tokenized into words), a seeded held-out share of the sentences, a capped vocabulary
with ``<pad>``, ``<unk>``, ``<s>``, ``</s>``; each sentence is read as [<s>, words..., </s>].

Metrics, on the held-out sentences: ``loss`` per word position (every word, ``<unk>`` included:
the training objective); ``accuracy`` (top-1) and ``mean_rank`` (1 = the true word scored
highest) over the word positions whose word is in the vocabulary (``<unk>`` positions are left
out: guessing "unknown" is no fill-in).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..data import (
    Vocab,
    default_sentences,
    load_text,
    pad_batch,
    split_sentences,
    tokenize_words,
    train_valid_split,
)
from ..errors import RnnkitError, check_ints, shown
from ..functional import softmax
from ..models.cloze import ClozeConfig, ClozeModel
from .base import Task
from .classify import _batch_order
from .lm import text_hash
from .registry import register_task
from .results import Predictions, PredictOptions, Ranked, Summary

BLANK = re.compile(r"_{3,}")  # "___" (three or more underscores) marks the blank


@dataclass
class ClozeSummary(Summary):
    """A cloze model's end of training: the vocabulary size (the ranks' range), its direction,
    held-out blanks as (sentence with ___, the true word, [(candidate, probability)])."""

    vocab_size: int = 0
    direction: str = "both"
    blanks: list[tuple[str, str, list[tuple[str, float]]]] = field(default_factory=list)


@dataclass
class ClozeDataConfig:
    """The sentences of a fill-in-the-blank model."""

    corpus: str | None = field(
        default=None,
        metadata={"help": "UTF-8 text file (default: the embedded corpus)", "metavar": "PATH"},
    )
    lower: bool = field(default=True, metadata={"help": "lower-case the text"})
    vocab_size: int = field(
        default=4000, metadata={"help": "vocabulary cap, special tokens included"}
    )
    max_sentences: int | None = field(
        default=None, metadata={"help": "use at most this many sentences"}
    )
    valid_fraction: float = field(default=0.1, metadata={"help": "held-out share of the sentences"})
    batch_size: int = field(default=32, metadata={"help": "sentences per batch"})
    seed: int = field(default=0, metadata={"cli": False})  # the split; set from --seed
    corpus_hash: str | None = field(default=None, metadata={"cli": False})

    def validate(self) -> ClozeDataConfig:
        check_ints(self, ("batch_size", "vocab_size"))
        if self.vocab_size < 6:
            raise RnnkitError(
                f"--vocab-size must be >= 6 (4 special tokens and 2 words), got {self.vocab_size}"
            )
        if not isinstance(self.valid_fraction, (int, float)) or not 0 < self.valid_fraction < 1:
            raise RnnkitError(
                f"--valid-fraction must lie strictly between 0 and 1, got {self.valid_fraction!r}"
            )
        if self.max_sentences is not None and self.max_sentences < 2:
            raise RnnkitError(f"--max-sentences must be >= 2, got {self.max_sentences}")
        return self


@register_task
class ClozeTask(Task):
    name = "cloze"
    Config = ClozeDataConfig
    ModelConfig = ClozeConfig
    loss_label = "loss per word (nats)"
    description = (
        "Fill in the blank: predict each word of a sentence from the words on both "
        "sides (or, with --direction forward, the words before it); reports held-out "
        "accuracy and mean rank of the true word."
    )
    # the embedded corpus: about 35 s of one core per epoch for the default bidirectional LSTM
    fit_defaults = {"lr": 3e-3, "epochs": 5}

    def __init__(self, cfg: ClozeDataConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        vocab = None
        if state is not None:
            itos = state[1].get("vocab") if isinstance(state[1], dict) else None
            if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
                raise RnnkitError(
                    "malformed checkpoint: the vocabulary is missing or not a list of strings"
                )
            vocab = Vocab(itos)
        if not load_data and vocab is not None:
            self.vocab, self.train, self.valid = vocab, None, None
            return
        if cfg.corpus is None:
            sents = default_sentences(cfg.max_sentences)
        else:
            cfg.corpus = os.path.abspath(cfg.corpus)
            text = load_text(cfg.corpus)
            h = text_hash(text)
            if cfg.corpus_hash is not None and cfg.corpus_hash != h:
                raise RnnkitError(
                    f"the corpus {cfg.corpus} changed since this run was trained "
                    f"(its held-out split would differ); restore it or train anew"
                )
            cfg.corpus_hash = h
            sents = split_sentences(text)[: cfg.max_sentences]
        toks = [t for t in (tokenize_words(s, lower=cfg.lower) for s in sents) if t]
        if len(toks) < 2:
            raise RnnkitError(f"corpus has {len(toks)} sentence(s); need at least 2 (one held out)")
        train, valid = train_valid_split(toks, cfg.valid_fraction, cfg.seed)
        self.vocab = vocab if vocab is not None else Vocab.build(train, max_size=cfg.vocab_size)
        if self.vocab.num_regular < 2:
            raise RnnkitError(
                f"vocabulary of {self.vocab.num_regular} word(s): "
                "the corpus needs at least 2 distinct words"
            )
        self.train, self.valid = self._encode(train), self._encode(valid)

    def _encode(self, sents: list[list[str]]) -> list[np.ndarray]:
        """Each sentence as ids [<s>, words..., </s>] (tau,)."""
        v = self.vocab
        return [
            np.concatenate([[v.bos_id], v.encode(s), [v.eos_id]]).astype(np.int64) for s in sents
        ]

    # -- the task protocol ------------------------------------------------------------------------
    def build_model(self, mcfg: ClozeConfig, seed: int = 0) -> ClozeModel:
        mcfg.vocab_size = len(self.vocab)
        mcfg.unk_id = self.vocab.unk_id
        mcfg.seed = seed
        return ClozeModel(mcfg)

    def batches(self, split: str, rng):
        sents = self.train if split == "train" else self.valid
        lengths = np.array([len(s) for s in sents])
        out = []
        for idx in _batch_order(lengths, self.cfg.batch_size, rng if split == "train" else None):
            out.append(pad_batch([sents[i] for i in idx], self.vocab.pad_id))
        return out

    def summarize(self, loss_sum, count, extra):
        n = max(extra.get("total", 0), 1)
        return {
            "loss": loss_sum / max(count, 1),
            "accuracy": extra.get("correct", 0) / n,
            "mean_rank": extra.get("rank_sum", 0) / n,
        }

    def state_dict(self):
        return {}, {"vocab": self.vocab.itos}

    def check_model_config(self, mcfg: dict, shapes: dict) -> None:
        emb = shapes.get("embed.weight")
        if not isinstance(emb, list) or len(emb) != 2 or emb[0] != mcfg.get("vocab_size"):
            raise RnnkitError("malformed checkpoint: embed.weight does not match vocab_size")

    # -- what a person sees ----------------------------------------------------------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> ClozeSummary:
        """Held-out accuracy and mean rank; ``samples`` held-out blanks with the top 3 words."""
        out = ClozeSummary(
            **Summary.of(result), vocab_size=len(self.vocab), direction=model.config.direction
        )
        if samples <= 0 or not self.valid:
            return out
        rng = np.random.default_rng(seed)
        for i in rng.permutation(len(self.valid))[:samples]:
            ids = self.valid[i]
            t = int(rng.integers(1, len(ids) - 1))
            words = self.vocab.decode(ids[1:-1])
            cands = self.fill(model, ids, t, 3)
            sentence = " ".join(words[: t - 1] + ["___"] + words[t:])
            out.blanks.append((sentence, words[t - 1], cands))
        return out

    def fill(self, model, ids: np.ndarray, position: int, top: int) -> list[tuple[str, float]]:
        """The ``top`` likeliest words (special tokens left out) for ``position`` of ``ids``,
        with their probabilities under the model's full softmax."""
        p = softmax(model.blank_logits(ids, position).astype(np.float64))
        for tok in self.vocab.specials:
            p[self.vocab.id(tok)] = -1.0
        best = np.argsort(-p, kind="stable")[:top]
        return [(self.vocab.itos[j], float(p[j])) for j in best if p[j] >= 0]

    def predict(self, model, inputs: list[str], options: PredictOptions) -> Predictions:
        """Each input is a sentence with one blank ``___``: its ``options.top`` candidates."""
        if not inputs:
            raise RnnkitError("give one or more sentences with a blank ___ (or lines on stdin)")
        out = Predictions()
        for text in inputs:
            ids, t, unknown = self.encode_blank(text)
            if unknown:
                out.notes.append(
                    f"note: {shown(text)}: unknown words (read as <unk>): {' '.join(unknown[:10])}"
                )
            out.rows.append(Ranked(text, self.fill(model, ids, t, options.top)))
        return out

    def encode_blank(self, text: str) -> tuple[np.ndarray, int, list[str]]:
        """(ids [<s>, ..., </s>], position of the blank, the unknown words, read as <unk>) of a
        sentence with exactly one ``___``."""
        parts = BLANK.split(text)
        if len(parts) != 2:
            raise RnnkitError(
                f"expected exactly one blank ___ in the sentence, found {len(parts) - 1}: {text!r}"
            )
        left, right = (tokenize_words(p, lower=self.cfg.lower) for p in parts)
        unknown = sorted({w for w in left + right if w not in self.vocab})
        v = self.vocab
        ids = np.concatenate([[v.bos_id], v.encode(left), [v.unk_id], v.encode(right), [v.eos_id]])
        return ids.astype(np.int64), len(left) + 1, unknown
