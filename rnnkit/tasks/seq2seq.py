"""The sequence-to-sequence task on your own pairs: ``rnnkit train seq2seq --pairs FILE``.

FILE holds one ``source<TAB>target`` pair per line (UTF-8), read as characters (``--level char``)
or whitespace-separated words (``--level word``). The pairs are shuffled with the seed and
``--valid-fraction`` of them held out; the vocabularies come from the training pairs (a token seen
only in held-out pairs reads as ``<unk>``). Targets end with ``</s>``; the feedback form's decoder
starts from ``<s>``. Example files:
``python -m rnnkit.data.addition --pairs rev.tsv --kind reverse`` (string reversal) or
``--kind dates`` (date normalisation).

This module also holds what every encoder-decoder task shares (:class:`PairTask`): batching of
padded (T, B) id arrays with lengths, the accuracy metrics ``per_char`` (per target token, the end
token included) and ``exact`` (whole targets), the samples shown after training and ``predict``
(one output per input, in batches; an input the model cannot take gets an error note and an empty
row, and the exit status is 1 if any input failed).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from ..data.addition import read_pairs
from ..errors import RnnkitError, shown
from ..models.seq2seq import Batch, Seq2Seq, Seq2SeqConfig
from .base import Task
from .registry import register_task
from .results import Decoded, Predictions, PredictOptions, Summary

PAD, UNK, GO, EOS = "<pad>", "<unk>", "<s>", "</s>"


@dataclass
class PairSummary(Summary):
    """An encoder-decoder's end of training: held-out (source, output, expected) examples."""

    examples: list[tuple[str, str, str]] = field(default_factory=list)


def pad_ids(seqs: list[np.ndarray], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """N id arrays -> (T, N) padded ids (time-major) and (N,) lengths."""
    lens = np.array([len(s) for s in seqs], np.int64)
    out = np.full((max(int(lens.max()), 1), len(seqs)), pad, np.int64)
    for i, s in enumerate(seqs):
        out[: len(s), i] = s
    return out, lens


def take_batch(data: tuple, idx: np.ndarray) -> Batch:
    """Columns ``idx`` of (src (T, N), src_len (N,) or None, tgt, tgt_len) trimmed to the batch's
    longest sequences; lengths None when nothing in the batch is padded."""
    out = []
    for ids, lens in ((data[0], data[1]), (data[2], data[3])):
        if lens is None:
            out += [ids[:, idx], None]
            continue
        ln = lens[idx]
        T = int(ln.max())
        out += [ids[:T, idx], None if (ln == T).all() else ln]
    return Batch(*out)


class PairTask(Task):
    """What the encoder-decoder tasks share; subclasses fill ``self.train_data``/``valid_data``
    (tuples as :func:`take_batch` reads), ``self.src_itos``/``tgt_itos``, ``self.out_len`` and
    implement ``_encode_input`` and ``_show``."""

    ModelConfig = Seq2SeqConfig
    loss_label = "loss per target token (nats)"
    eval_batch = 1000
    go: str = GO
    eos: str | None = EOS  # None: the targets have no end token
    # filled by the subclasses' __init__ (the data stays None without load_data)
    src_itos: list[str]
    tgt_itos: list[str]
    out_len: int
    train_data: tuple | None
    valid_data: tuple | None

    def build_model(self, mcfg: Seq2SeqConfig, seed: int = 0) -> Seq2Seq:
        mcfg.src_vocab, mcfg.tgt_vocab = len(self.src_itos), len(self.tgt_itos)
        mcfg.out_len = self.out_len
        mcfg.go_id = self.tgt_itos.index(self.go)
        mcfg.eos_id = (
            self.tgt_itos.index(self.eos)
            if self.eos is not None and self.eos in self.tgt_itos
            else None
        )
        mcfg.seed = seed
        return Seq2Seq(mcfg)

    def batches(self, split: str, rng):
        data = self.train_data if split == "train" else self.valid_data
        if data is None:
            raise RnnkitError(f"no {split} data: the task was built without loading it")
        n = data[0].shape[1]
        if split == "train":
            order, B = rng.permutation(n), self.cfg.batch_size
        else:
            order, B = np.arange(n), self.eval_batch
        return [take_batch(data, order[i : i + B]) for i in range(0, n, B)]

    def summarize(self, loss_sum, count, extra):
        return {
            "loss": loss_sum / max(count, 1),
            "per_char": extra.get("char_correct", 0) / max(extra.get("char_total", 0), 1),
            "exact": extra.get("seq_correct", 0) / max(extra.get("seq_total", 0), 1),
        }

    def check_model_config(self, mcfg: dict, shapes: dict) -> None:
        w = shapes.get("out.weight")
        if (
            not isinstance(w, list)
            or len(w) != 2
            or w != [mcfg.get("tgt_vocab"), mcfg.get("hidden_size")]
        ):
            raise RnnkitError(
                f"malformed checkpoint: out.weight {w} does not match model_config "
                f"(tgt_vocab {mcfg.get('tgt_vocab')}, hidden_size {mcfg.get('hidden_size')})"
            )

    # -- text <-> ids -----------------------------------------------------------------------------
    def _encode_input(self, text: str, notes: list[str]) -> np.ndarray:
        """One input -> source ids (T,); RnnkitError (naming the input) if the model cannot take
        it; a warning about it (tokens never seen) goes to ``notes``."""
        raise NotImplementedError

    def _show(self, ids) -> str:
        """Target ids -> text, up to the end token."""
        raise NotImplementedError

    def _source_text(self, col: int, data: tuple) -> str:
        raise NotImplementedError

    def decode_texts(
        self, model: Seq2Seq, srcs: list[np.ndarray], beam: int = 1, batch: int = 1024
    ) -> list[str]:
        """The model's output text for each source id array, in batches."""
        out = []
        for i in range(0, len(srcs), batch):
            ids, lens = pad_ids(srcs[i : i + batch])
            T = (
                max(self.out_len, 2 * ids.shape[0] + 2)
                if model.config.eos_id is not None
                else self.out_len
            )
            pred = model.decode(
                ids, None if (lens == ids.shape[0]).all() else lens, beam=beam, max_len=T
            )
            out += [self._show(pred[:, j]) for j in range(pred.shape[1])]
        return out

    # -- what a person sees ----------------------------------------------------------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> PairSummary:
        """Held-out accuracies and ``samples`` held-out (source, output, expected) triples."""
        out = PairSummary(**Summary.of(result))
        if samples <= 0 or self.valid_data is None:
            return out
        n = self.valid_data[0].shape[1]
        cols = np.random.default_rng(seed).choice(n, size=min(samples, n), replace=False)
        b = take_batch(self.valid_data, cols)
        got = self.decode_texts(
            model,
            [
                b.src[: (b.src.shape[0] if b.src_len is None else b.src_len[j]), j]
                for j in range(len(cols))
            ],
        )
        for j, c in enumerate(cols):
            src = self._source_text(int(c), self.valid_data)
            out.examples.append((src, got[j], self._show(b.tgt[:, j])))
        return out

    def predict(self, model, inputs: list[str], options: PredictOptions) -> Predictions:
        """One row per input (output None for an input that failed, with an error note); the
        failed inputs are counted (exit status 1)."""
        if not inputs:
            raise RnnkitError("give one or more inputs (or lines on stdin)")
        out = Predictions()
        srcs = {}
        for i, text in enumerate(inputs):
            try:
                srcs[i] = self._encode_input(text, out.notes)
            except RnnkitError as exc:
                out.notes.append(f"error: {exc}")
                out.failed += 1
        keys = list(srcs)
        got = dict(zip(keys, self.decode_texts(model, [srcs[k] for k in keys], options.beam)))
        out.rows = [Decoded(got.get(i)) for i in range(len(inputs))]
        return out


# -- the task on a pairs file -------------------------------------------------------------------
@dataclass
class PairsConfig:
    """The data of a sequence-to-sequence task read from a pairs file."""

    pairs: str | None = field(
        default=None,
        metadata={"help": "UTF-8 file of source<TAB>target lines (required)", "metavar": "FILE"},
    )
    level: str = field(
        default="char", metadata={"help": "char | word", "choices": ["char", "word"]}
    )
    lower: bool = field(default=False, metadata={"help": "lower-case both sides"})
    reverse_source: bool = field(
        default=False, metadata={"help": "feed each source backwards (Sutskever et al. 2014)"}
    )
    valid_fraction: float = field(default=0.1, metadata={"help": "held-out share of the pairs"})
    batch_size: int = field(default=32, metadata={"help": "pairs per batch"})
    max_pairs: int | None = field(default=None, metadata={"help": "use at most this many pairs"})
    seed: int = field(default=0, metadata={"cli": False})  # the split; set from --seed
    pairs_hash: str | None = field(default=None, metadata={"cli": False})


def _vocab(seqs: list[list[str]], specials: tuple) -> list[str]:
    seen = dict.fromkeys(specials)
    for s in seqs:
        seen.update(dict.fromkeys(s))
    return list(seen)


@register_task
class Seq2SeqTask(PairTask):
    name = "seq2seq"
    Config = PairsConfig
    description = (
        "Train an encoder-decoder on your own tab-separated source/target pairs "
        "(character or word level), then print held-out accuracy and samples."
    )
    fit_defaults = {"lr": 3e-3, "epochs": 20}

    def __init__(self, cfg: PairsConfig, state=None, load_data: bool = True):
        super().__init__(cfg)
        if cfg.level not in ("char", "word"):
            raise RnnkitError(f"--level must be 'char' or 'word', got {cfg.level!r}")
        if cfg.batch_size < 1:
            raise RnnkitError(f"--batch-size must be >= 1, got {cfg.batch_size}")
        self.train_data = self.valid_data = None
        if state is not None:
            meta = state[1]
            try:
                self.src_itos, self.tgt_itos = list(meta["src_vocab"]), list(meta["tgt_vocab"])
                self.out_len = int(meta["out_len"])
            except (KeyError, TypeError, ValueError):
                raise RnnkitError("malformed checkpoint: the vocabularies are missing") from None
            self._maps()
            if not load_data:
                return
        if cfg.pairs is None:
            raise RnnkitError("give the pairs file: --pairs FILE (one source<TAB>target per line)")
        cfg.pairs = os.path.abspath(cfg.pairs)
        with open(cfg.pairs, "rb") as f:
            h = hashlib.blake2b(f.read(), digest_size=12).hexdigest()
        if cfg.pairs_hash is not None and cfg.pairs_hash != h:
            raise RnnkitError(
                f"the pairs file {cfg.pairs} changed since this run was trained "
                f"(its held-out split would differ); restore it or train anew"
            )
        cfg.pairs_hash = h
        pairs = read_pairs(cfg.pairs)[: cfg.max_pairs]
        if len(pairs) < 2:
            raise RnnkitError(
                f"{cfg.pairs} holds {len(pairs)} pair(s); need at least 2 (one held out)"
            )
        from ..data.addition import split_pairs

        tr, va = split_pairs(len(pairs), cfg.valid_fraction, cfg.seed)
        toks = [(self._tokens(s), self._tokens(t)) for s, t in pairs]
        if state is None:
            self.src_itos = _vocab([toks[i][0] for i in tr], (PAD, UNK))
            self.tgt_itos = _vocab([toks[i][1] for i in tr], (PAD, UNK, GO, EOS))
            self.out_len = max(len(toks[i][1]) for i in tr) + 1
            self._maps()
        self.train_data, self.valid_data = (
            self._arrays([toks[i] for i in idx]) for idx in (tr, va)
        )

    def _maps(self) -> None:
        self.src_stoi = {t: i for i, t in enumerate(self.src_itos)}
        self.tgt_stoi = {t: i for i, t in enumerate(self.tgt_itos)}

    def _tokens(self, text: str) -> list[str]:
        text = text.lower() if self.cfg.lower else text
        return list(text) if self.cfg.level == "char" else text.split()

    def _src_ids(self, toks: list[str]) -> np.ndarray:
        ids = np.array([self.src_stoi.get(t, 1) for t in toks], np.int64)
        return ids[::-1].copy() if self.cfg.reverse_source else ids

    def _arrays(self, toks: list[tuple]) -> tuple:
        src, sl = pad_ids([self._src_ids(s) for s, _ in toks])
        eos = self.tgt_stoi[EOS]
        tgt, tl = pad_ids(
            [np.array([self.tgt_stoi.get(x, 1) for x in t] + [eos], np.int64) for _, t in toks]
        )
        return src, sl, tgt, tl

    def state_dict(self):
        return {}, {"src_vocab": self.src_itos, "tgt_vocab": self.tgt_itos, "out_len": self.out_len}

    def _join(self, toks) -> str:
        return ("" if self.cfg.level == "char" else " ").join(toks)

    def _show(self, ids) -> str:
        out = []
        for i in np.asarray(ids).tolist():
            tok = self.tgt_itos[i]
            if tok == EOS:
                break
            out.append(tok)
        return self._join(out)

    def _source_text(self, col: int, data: tuple) -> str:
        ids = data[0][: data[1][col], col].tolist()
        ids = ids[::-1] if self.cfg.reverse_source else ids
        return self._join(self.src_itos[i] for i in ids)

    def _encode_input(self, text: str, notes: list[str]) -> np.ndarray:
        toks = self._tokens(text)
        if not toks:
            raise RnnkitError(f"input {shown(text)} is empty")
        unknown = sorted({t for t in toks if t not in self.src_stoi})
        if unknown:
            notes.append(
                f"warning: input {shown(text)} has tokens never seen in training, read as "
                f"{UNK}: {' '.join(map(repr, unknown[:10]))}"
            )
        return self._src_ids(toks)
