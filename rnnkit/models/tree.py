"""The tree task's model: a recursive network (:class:`~rnnkit.trees.model.TreeNet`) in the
training loop's protocol (``rnnkit.models.protocol``), its configuration as the command line
sees it, and the batch it takes (:class:`TreeItems`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import RnnkitError
from ..functional import softmax_cross_entropy
from ..trees import TreeBatch, TreeConfig, TreeVocab
from ..trees.model import TreeNet
from .protocol import StepOut

__all__ = ["TreeModelConfig", "TreeItems", "TreeTaskModel"]


@dataclass
class TreeModelConfig:
    """The model: what ``rnnkit.trees.TreeConfig`` holds, minus the suggested L2 (``--weight-decay``
    is the training loop's). ``dim``, ``embed_dim`` and ``n_classes`` are filled in when built."""

    vocab_size: int = field(default=0, metadata={"cli": False})  # set from the data
    cell: str = field(
        default="treelstm",
        metadata={
            "help": "composition: rnn (plain recursive net) | rntn (recursive neural tensor net) | "
            "treelstm (binary Tree-LSTM)",
            "choices": ["rnn", "rntn", "treelstm"],
        },
    )
    dim: int | None = field(
        default=None,
        metadata={"help": "node vector size; none: the papers', 30 rnn, 25 rntn, 150 treelstm"},
    )
    embed_dim: int | None = field(
        default=None,
        metadata={"help": "word vector size; none: --dim (rnn and rntn need it equal to --dim)"},
    )
    n_classes: int | None = field(
        default=None,
        metadata={
            "help": "label classes; none: 1 + the largest label in the data (10 for arithmetic)"
        },
    )
    init: str = field(
        default="uniform",
        metadata={
            "help": "uniform | identity (rnn, rntn: a parent starts as the mean of its children)",
            "choices": ["uniform", "identity"],
        },
    )
    embed_scale: float = field(default=0.1, metadata={"help": "word vectors ~ U(-s, s) at init"})
    forget_bias: float = field(default=1.0, metadata={"help": "treelstm: forget-gate bias at init"})
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def tree_config(self) -> TreeConfig:
        if self.n_classes is None:
            raise RnnkitError("n_classes is not set")
        return TreeConfig(
            vocab_size=self.vocab_size,
            cell=self.cell,
            dim=self.dim,
            embed_dim=self.embed_dim,
            n_classes=self.n_classes,
            init=self.init,
            embed_scale=self.embed_scale,
            forget_bias=self.forget_bias,
            dtype=self.dtype,
            seed=self.seed,
        ).validate()


@dataclass
class TreeItems:
    """One batch: B flattened trees, for arithmetic each tree's depth (B,) int64 (else None), and
    optionally the same trees already joined (held-out batches are joined once and kept)."""

    flats: list
    depths: np.ndarray | None = None
    joined: TreeBatch | None = None

    def __len__(self) -> int:
        return len(self.flats)

    def trees(self):
        return self.joined if self.joined is not None else self.flats

    def part(self, lo: int, hi: int) -> TreeItems:
        return TreeItems(self.flats[lo:hi], None if self.depths is None else self.depths[lo:hi])


def _unpack(batch) -> tuple:
    return (batch.trees(), batch.depths) if isinstance(batch, TreeItems) else (batch, None)


class TreeTaskModel(TreeNet):
    """:class:`~rnnkit.trees.model.TreeNet` in the training loop's protocol: ``config`` is the
    task's :class:`TreeModelConfig` (completed), ``loss_and_grads`` / ``evaluate`` take a batch
    (:class:`TreeItems`, or what TreeModel takes) and a ``carry`` (unused) and return a
    :class:`~rnnkit.models.protocol.StepOut`; ``evaluate`` adds root accuracy counts by depth
    (``correct_d{k}``, ``total_d{k}``) when the batch carries depths."""

    def __init__(self, config: TreeModelConfig, vocab: TreeVocab | None = None) -> None:
        super().__init__(config.tree_config(), vocab)
        tc = self.tree_config
        self.config = replace(config, dim=tc.dim, embed_dim=tc.embed_dim)

    def loss_and_grads(self, batch, carry=None) -> StepOut:
        trees, _ = _unpack(batch)
        loss, n, grads, extra = self.tree_loss_and_grads(trees)
        return StepOut(loss, n, grads, None, extra)

    def evaluate(self, batch, carry=None) -> StepOut:
        trees, depths = _unpack(batch)
        b = self.as_batch(trees)
        _, _, rows, _, logits = self._forward(b)
        y = b.labels[rows]
        loss, n, _ = softmax_cross_entropy(logits, y, inplace=False)
        extra = self._counts(b, rows, logits)
        if depths is not None:
            # the root of tree i is row b.roots[i]; its place among the labelled rows (sorted)
            at = np.minimum(np.searchsorted(rows, b.roots), max(rows.size - 1, 0))
            ok = (rows[at] == b.roots) if rows.size else np.zeros(b.n_trees, bool)
            right = ok & (logits[at].argmax(axis=1) == y[at]) if rows.size else ok
            d = np.asarray(depths, np.int64)
            for k in np.unique(d[ok]):
                extra[f"correct_d{k}"] = int(right[d == k].sum())
                extra[f"total_d{k}"] = int((ok & (d == k)).sum())
        return StepOut(loss, n, None, None, extra)
