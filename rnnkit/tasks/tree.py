"""The tree task: a recursive network (plain, RNTN or Tree-LSTM) classifying every node of binary
trees (DL book section 10.6), on a treebank file or on generated arithmetic expressions.

* ``--trees TRAIN`` (one bracketed tree per line, e.g. the Stanford Sentiment Treebank's
  ``train.txt``), held out: ``--dev DEV`` or a seeded random ``--valid-fraction`` of TRAIN. Trees
  are binarised (``rnnkit.trees.binarize``); the vocabulary is TRAIN's words (``--lower``,
  ``--min-count``), the rest read as ``<unk>``.
* no ``--trees``: expressions over single digits with + - * mod 10 (``rnnkit.trees.arith``), a
  label at every subexpression; training trees of depth 1..``--arith-depth``, held-out trees of
  depth 1..``--arith-test-depth`` (deeper than any seen in training), with root accuracy by depth.

Metrics (from summed counts): ``root_accuracy`` (fine-grained, the root label of each tree),
``all_accuracy`` (every labelled node), ``root_binary_accuracy`` (5 classes only: the SST binary
convention, neutral roots left out, see ``rnnkit.trees.model``) and, on arithmetic,
``root_accuracy_d{k}`` for each depth k. Training defaults are the papers': AdaGrad, lr 0.05, L2
1e-4 (``--weight-decay``), batches of 25 (Tree-LSTM, Tai et al. 2015) or 27 (plain net / RNTN,
Socher et al. 2013), no clipping, no learning-rate schedule.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import RnnkitError, check_ints
from ..models.tree import TreeItems, TreeModelConfig, TreeTaskModel
from ..trees import (
    TreeBatch,
    TreeConfig,
    TreeVocab,
    arith_trees,
    arith_vocab,
    binarize,
    expression_depth,
    flatten_tree,
    parse_tree,
    read_trees,
    to_tokens,
    tree_from_sentence,
)
from ..trees.arith import combine
from ..trees.arith import evaluate as arith_value
from ..trees.batch import FlatTree
from ..trees.tree import Tree
from .base import Task
from .registry import register_task
from .results import Predictions, PredictOptions, Summary, TreeLabel

__all__ = [
    "TreeDataConfig",
    "TreeModelConfig",
    "TreeItems",
    "TreeTaskModel",
    "TreeTask",
    "TreeSummary",
    "parse_expression",
]

_EVAL_BATCH = 256  # trees per held-out batch (joined once, kept)


@dataclass
class TreeSummary(Summary):
    """The tree task's end of training: the training depths 1..``train_depth`` (arithmetic; the
    metrics then hold ``root_accuracy_d{k}``), held-out (gold, predicted root label, text)."""

    train_depth: int = 0
    examples: list[tuple[int | None, int, str]] = field(default_factory=list)


@dataclass
class TreeDataConfig:
    """The data of the tree task."""

    trees: str | None = field(
        default=None,
        metadata={
            "help": "training treebank, one bracketed tree per line, e.g. the SST's train.txt; "
            "none: generated arithmetic expressions",
            "metavar": "PATH",
        },
    )
    dev: str | None = field(
        default=None,
        metadata={
            "help": "held-out treebank; none: a seeded random --valid-fraction of --trees",
            "metavar": "PATH",
        },
    )
    lower: bool = field(default=False, metadata={"help": "lower-case every word"})
    min_count: int = field(
        default=1, metadata={"help": "training words seen fewer times are read as <unk>"}
    )
    valid_fraction: float = field(
        default=0.1, metadata={"help": "held-out share of --trees when there is no --dev"}
    )
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "trees per batch; none: the papers', 25 for treelstm, 27 for rnn and rntn"
        },
    )
    arith_train: int = field(default=20000, metadata={"help": "arithmetic: training trees"})
    arith_valid: int = field(
        default=3000,
        metadata={
            "help": "arithmetic: held-out trees (depths drawn uniformly from 1..--arith-test-depth)"
        },
    )
    arith_depth: int = field(
        default=4, metadata={"help": "arithmetic: training depths 1..D", "metavar": "D"}
    )
    arith_test_depth: int = field(
        default=6, metadata={"help": "arithmetic: held-out depths 1..D", "metavar": "D"}
    )
    seed: int = field(default=0, metadata={"cli": False})  # the split and the expressions
    trees_hash: str | None = field(default=None, metadata={"cli": False})
    dev_hash: str | None = field(default=None, metadata={"cli": False})

    def validate(self) -> TreeDataConfig:
        check_ints(
            self, ("min_count", "arith_train", "arith_valid", "arith_depth", "arith_test_depth")
        )
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise RnnkitError(f"--batch-size must be an integer >= 1, got {b!r}")
        if not isinstance(self.valid_fraction, (int, float)) or not 0 < self.valid_fraction < 1:
            raise RnnkitError(
                f"--valid-fraction must lie strictly between 0 and 1, got {self.valid_fraction!r}"
            )
        if self.dev is not None and self.trees is None:
            raise RnnkitError(
                "--dev needs --trees (the arithmetic task makes its own held-out trees)"
            )
        return self

    @property
    def arithmetic(self) -> bool:
        return self.trees is None


def _file_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read(path: str) -> list[Tree]:
    return [binarize(t) for t in read_trees(path)]


def _depths(trees: Sequence[Tree]) -> np.ndarray | None:
    """Each tree's arithmetic depth, or None when some tree is not an arithmetic expression
    (digits, operators, the shape of ``rnnkit.trees.arith``)."""
    try:
        for t in trees:
            arith_value(t)  # raises for anything but an expression
        return np.array([expression_depth(t) for t in trees], np.int64)
    except (AttributeError, ValueError, IndexError, TypeError, KeyError):
        return None


# -- arithmetic expressions typed by a person: "(3 + 4) * 5" --------------------------------------
_EXPR_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*()])|(\S))")


def parse_expression(text: str) -> Tree:
    """An infix expression over single digits with + - * (``*`` binds tighter, left to right,
    brackets as written) as an arithmetic tree (``rnnkit.trees.arith``), its labels the values.

    >>> str(parse_expression("(3 + 4) * 5"))
    '(5 (7 (3 3) (_ (_ +) (4 4))) (_ (_ *) (5 5)))'
    """
    toks: list[str] = []
    for m in _EXPR_TOKEN.finditer(text):
        num, op, bad = m.groups()
        if bad is not None or (num is not None and len(num) > 1):
            raise RnnkitError(
                f"not an arithmetic expression over single digits: {text!r} (at {bad or num!r})"
            )
        toks.append(num or op)
    if not toks:
        raise RnnkitError("empty expression")
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise RnnkitError(f"expression {text!r} ends too early")
        pos += 1
        return toks[pos - 1]

    def factor() -> Tree:
        t = take()
        if t == "(":
            e = expr()
            if take() != ")":
                raise RnnkitError(f"expected ')' in {text!r}")
            return e
        if not t.isdigit():
            raise RnnkitError(f"expected a digit or '(' in {text!r}, found {t!r}")
        return Tree(int(t), word=t)

    def term() -> Tree:
        e = factor()
        while peek() == "*":
            e = combine(e, take(), factor())
        return e

    def expr() -> Tree:
        e = term()
        while peek() in ("+", "-"):
            e = combine(e, take(), term())
        return e

    out = expr()
    if pos != len(toks):
        raise RnnkitError(f"unexpected {toks[pos]!r} in {text!r}")
    return out


@register_task
class TreeTask(Task):
    name = "tree"
    Config = TreeDataConfig
    ModelConfig = TreeModelConfig
    loss_label = "loss per labelled node (nats)"
    description = (
        "Train a recursive network (plain, RNTN or Tree-LSTM) that labels every node of "
        "binary trees: a treebank file (--trees, e.g. the Stanford Sentiment Treebank) "
        "or generated arithmetic expressions (the default)."
    )
    fit_defaults = {
        "optimizer": "adagrad",
        "lr": 0.05,
        "weight_decay": 1e-4,
        "clip_norm": None,
        "halve_lr": False,
    }
    path_fields = ("trees", "dev")
    fit_defaults_shown = {"lr": "0.05; 0.01 with --cell rntn"}

    @classmethod
    def fit_defaults_for(cls, model_cfg, task_cfg=None) -> dict:
        """AdaGrad as in the papers; the RNTN learns only at its paper's rate of 0.01 (at 0.05 it
        stays near chance on the arithmetic task), the others best at 0.05."""
        d = dict(cls.fit_defaults)
        if getattr(model_cfg, "cell", None) == "rntn":
            d["lr"] = 0.01
        return d

    def __init__(self, cfg: TreeDataConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        self.n_classes: int | None = None
        self._data: dict[str, tuple[list[FlatTree], np.ndarray | None]] = {}
        self._valid_batches: list[TreeItems] | None = None
        self.valid_trees: list[Tree] = []
        vocab = None
        if state is not None:
            _, meta = state
            try:
                vocab = TreeVocab.from_json(meta.get("vocab") if isinstance(meta, dict) else None)
            except RnnkitError:
                raise RnnkitError(
                    "malformed checkpoint: the tree vocabulary is missing or bad"
                ) from None
        if not load_data and vocab is not None:
            self.vocab = vocab
            return
        if cfg.arithmetic:
            self.vocab = vocab or arith_vocab()
            self.max_label = 9
            self.valid_trees = arith_trees(
                cfg.arith_valid, range(1, cfg.arith_test_depth + 1), seed=[cfg.seed, 2]
            )
            self._set("valid", self.valid_trees, _depths(self.valid_trees))
            return  # the training trees are made when first asked for (eval does not need them)
        self._load_treebank(vocab)

    def _load_treebank(self, vocab: TreeVocab | None) -> None:
        cfg = self.cfg
        cfg.trees = os.path.abspath(cfg.trees)
        if cfg.dev is not None:
            cfg.dev = os.path.abspath(cfg.dev)
        for attr, path in (("trees_hash", cfg.trees), ("dev_hash", cfg.dev)):
            if path is None:
                continue
            h = _file_hash(path)
            if getattr(cfg, attr) not in (None, h):
                raise RnnkitError(
                    f"the treebank {path} changed since this run was trained; "
                    f"restore it or train anew"
                )
            setattr(cfg, attr, h)
        train = _read(cfg.trees)
        if cfg.dev is not None:
            valid = _read(cfg.dev)
        else:
            if len(train) < 2:
                raise RnnkitError(
                    f"{cfg.trees} holds {len(train)} tree: need at least 2 (one held out), or --dev"
                )
            from ..data import train_valid_split

            train, valid = train_valid_split(train, cfg.valid_fraction, cfg.seed)
        self.vocab = vocab or TreeVocab.build(train, lower=cfg.lower, min_count=cfg.min_count)
        labels = [
            t.label for ts in (train, valid) for x in ts for t in x.nodes() if t.label is not None
        ]
        if not labels:
            raise RnnkitError(f"no labelled node in {cfg.trees}: nothing to learn")
        self.max_label = max(labels)
        self.valid_trees = valid
        self._set("train", train, None)
        self._set("valid", valid, None)

    def _set(self, split: str, trees: Sequence[Tree], depths: np.ndarray | None) -> None:
        self._data[split] = ([flatten_tree(t, self.vocab.ids) for t in trees], depths)
        if split == "valid":
            self._valid_batches = None

    def _split(self, split: str):
        if split == "train" and "train" not in self._data and self.cfg.arithmetic:
            c = self.cfg
            self._set(
                "train",
                arith_trees(c.arith_train, range(1, c.arith_depth + 1), seed=[c.seed, 1]),
                None,
            )
        if split not in self._data:
            raise RnnkitError(f"the tree task has no {split!r} data loaded")
        return self._data[split]

    # -- the task protocol ------------------------------------------------------------------------
    def build_model(self, mcfg: TreeModelConfig, seed: int = 0) -> TreeTaskModel:
        mcfg.vocab_size = len(self.vocab)
        mcfg.seed = seed
        if mcfg.n_classes is None:
            mcfg.n_classes = max(2, self.max_label + 1)
        elif getattr(self, "max_label", -1) >= mcfg.n_classes:
            raise RnnkitError(
                f"the data has label {self.max_label} but --n-classes is {mcfg.n_classes}"
            )
        if self.cfg.batch_size is None:
            self.cfg.batch_size = TreeConfig(1, cell=mcfg.cell).paper_training()["batch_size"]
        self.n_classes = mcfg.n_classes
        return TreeTaskModel(mcfg, self.vocab)

    def batches(self, split: str, rng):
        if split == "train" and rng is not None:
            flats, depths = self._split("train")
            order = rng.permutation(len(flats))
            bs = self.cfg.batch_size or 25
            return [
                TreeItems(
                    [flats[i] for i in order[s : s + bs]],
                    None if depths is None else depths[order[s : s + bs]],
                )
                for s in range(0, len(order), bs)
            ]
        if split == "valid" and self._valid_batches is not None:
            return self._valid_batches
        flats, depths = self._split(split)
        out = [
            TreeItems(
                flats[s : s + _EVAL_BATCH],
                None if depths is None else depths[s : s + _EVAL_BATCH],
                TreeBatch.from_flat(flats[s : s + _EVAL_BATCH]),
            )
            for s in range(0, len(flats), _EVAL_BATCH)
        ]
        if split == "valid":
            self._valid_batches = out
        return out

    def shard(self, batch: TreeItems, rank: int, size: int) -> TreeItems | None:
        """Data parallelism: rank ``rank``'s contiguous block of the batch's trees (None when
        empty); the sums over the blocks are those of the whole batch."""
        n = len(batch)
        lo, hi = n * rank // size, n * (rank + 1) // size
        return batch.part(lo, hi) if hi > lo else None

    def summarize(self, loss_sum, count, extra):
        def ratio(a, b):
            t = extra.get(b, 0)
            return extra.get(a, 0) / t if t else math.nan

        m = {
            "loss": loss_sum / max(count, 1),
            "root_accuracy": ratio("root_correct", "root_total"),
            "all_accuracy": ratio("node_correct", "node_total"),
        }
        if extra.get("binary_total", 0) > 0:
            m["root_binary_accuracy"] = ratio("binary_correct", "binary_total")
        for k in sorted(int(key[len("total_d") :]) for key in extra if key.startswith("total_d")):
            m[f"root_accuracy_d{k}"] = ratio(f"correct_d{k}", f"total_d{k}")
        return m

    def state_dict(self):
        return {}, {"vocab": self.vocab.to_json()}

    def check_model_config(self, mcfg: dict, shapes: dict) -> None:
        emb, cls = shapes.get("embed"), shapes.get("classify.weight")
        if not (
            isinstance(emb, list) and len(emb) == 2 and isinstance(cls, list) and len(cls) == 2
        ):
            raise RnnkitError("malformed checkpoint: embed or classify.weight is missing")
        for key, want in (
            ("vocab_size", emb[0]),
            ("embed_dim", emb[1]),
            ("n_classes", cls[0]),
            ("dim", cls[1]),
        ):
            if mcfg.get(key) != want:
                raise RnnkitError(
                    f"malformed checkpoint: model_config {key} {mcfg.get(key)!r} does not "
                    f"match the stored parameters ({want})"
                )

    # -- another file -----------------------------------------------------------------------------
    def evaluate_file(self, model, path: str) -> dict:
        """The held-out metrics on every tree of ``path`` (one bracketed tree per line,
        binarised, words read with the run's vocabulary), plus ``trees`` (how many) and
        ``unknown_words`` (leaves read as <unk>). Arithmetic runs also get accuracy by depth when
        the file's trees are arithmetic expressions."""
        from ..fit import evaluate

        trees = _read(path)
        top = max((t.label for x in trees for t in x.nodes() if t.label is not None), default=-1)
        if top < 0:
            raise RnnkitError(f"no labelled node in {path}: nothing to evaluate")
        if top >= model.config.n_classes:
            raise RnnkitError(
                f"{path} has label {top} but the model has {model.config.n_classes} classes"
            )
        self._set("file", trees, _depths(trees) if self.cfg.arithmetic else None)
        r = evaluate(self, model, "file")
        words = [w for t in trees for w in t.leaves()]
        r["trees"] = len(trees)
        r["unknown_words"] = int((self.vocab.ids(words) == self.vocab.unk_id).sum())
        return r

    # -- what a person sees ----------------------------------------------------------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> TreeSummary:
        """Held-out accuracies (by depth on arithmetic) and ``samples`` held-out trees' roots."""
        out = TreeSummary(**Summary.of(result), train_depth=self.cfg.arith_depth)
        if samples > 0 and self.valid_trees:
            pick = np.random.default_rng(seed).permutation(len(self.valid_trees))[:samples]
            trees = [self.valid_trees[i] for i in pick]
            pred, _ = model.predict(trees)
            for t, p in zip(trees, pred):
                text = (
                    " ".join(to_tokens(t, outer=False))
                    if self.cfg.arithmetic
                    else " ".join(t.leaves())
                )
                out.examples.append((t.label, int(p), text))
        return out

    def parse_input(self, text: str) -> tuple[Tree, str | None]:
        """A tree for one ``predict`` input, and a note for stderr (or None): a bracketed tree
        is read as it is (then binarised); an arithmetic run reads an infix expression; anything
        else is tokenised and given a balanced binary tree."""
        s = text.strip()
        if not s:
            raise RnnkitError("empty input")
        if s.startswith("("):
            try:
                return binarize(parse_tree(s)), None
            except RnnkitError as exc:
                tree_error = exc
        else:
            tree_error = None
        if self.cfg.arithmetic:
            try:
                return parse_expression(s), None
            except RnnkitError:
                if tree_error is not None:
                    raise tree_error from None
        elif tree_error is not None:
            raise tree_error
        from ..data import tokenize_words

        words = tokenize_words(s, lower=False) or s.split()
        note = (
            f"no brackets: read {s[:40]!r} as {len(words)} tokens under a balanced binary tree "
            "(give a bracketed tree for a parse)"
        )
        return tree_from_sentence(words, how="balanced"), note

    def _unknown_note(self, words: list[str]) -> str | None:
        unk = sorted(
            {
                w
                for w, i in zip(words, self.vocab.ids(words))
                if i == self.vocab.unk_id and w != self.vocab.vocab.itos[0]
            }
        )
        if not unk:
            return None
        listed = ", ".join(repr(w) for w in unk[:10]) + (" ..." if len(unk) > 10 else "")
        return f"note: {len(unk)} unknown word(s) read as <unk>: {listed}"

    def predict(self, model, inputs, options: PredictOptions) -> Predictions:
        """For each input: the root label, every class's probability, and the gold root label
        when the input has one."""
        if not inputs:
            raise RnnkitError(
                "give one or more sentences, trees or expressions (or lines on stdin)"
            )
        out = Predictions()
        for text in inputs:
            tree, note = self.parse_input(text)
            unknown = self._unknown_note(tree.leaves())
            out.notes += [f"note: {n}" for n in (note,) if n] + ([unknown] if unknown else [])
            flat = flatten_tree(tree, self.vocab.ids)
            flat = replace(flat, label=np.full_like(flat.label, -1))  # gold labels play no part
            label, p = model.predict([flat])
            out.rows.append(TreeLabel(text, int(label[0]), p[0].tolist(), tree.label))
        return out
