"""A recursive (tree-structured) classifier with a softmax at every node (DL book section 10.6).

    e         = E[word]                              leaves: a row gather of the (V, D) table
    S(node)   = composition(S(left), S(right))       plain net, RNTN or Tree-LSTM (compose.py)
    yhat      = softmax(W_s h(node) + b_s)           at every node (DL book 6.2.2.3 / 10.11)
    L         = -sum over labelled nodes log yhat[label]                 (10.12-10.14, summed)

computed for a whole batch of trees level by level (levels.py): one product per level forward,
one per level back, and one product per weight over the whole batch. Nodes whose label is None
(binarisation helpers, arithmetic operators) have no loss term but pass gradients on.

Batches: a :class:`~rnnkit.trees.batch.TreeBatch`, or a list of :class:`FlatTree` (flattened
once, joined per batch: the cheap way to feed a training loop), or a list of :class:`Tree`
(encoded with ``model.vocab``, which must then be set).

Metrics (``extra``, summable counts): ``root_correct/root_total`` (fine-grained root accuracy),
``node_correct/node_total`` (every labelled node), and with 5 classes the SST binary root accuracy
``binary_correct/binary_total``: roots labelled 0-1 (negative) or 3-4 (positive), neutral (2) left
out, as in Socher et al. (2013) and Tai et al. (2015); the prediction is "positive" when
p(3) + p(4) > p(0) + p(1) under the fine-grained softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import cast

import numpy as np

from ..errors import RnnkitError
from ..functional import as_dtype, softmax, softmax_cross_entropy
from ..module import Module
from .batch import FlatTree, TreeBatch, flatten_tree
from .compose import COMPOSITIONS, make_composition
from .levels import backward_levels, forward_levels
from .tree import Tree
from .vocab import TreeVocab

__all__ = ["TreeConfig", "TreeNet", "TreeModel", "Classifier", "embedding_grad"]

_DEFAULT_DIM = {"rnn": 30, "rntn": 25, "treelstm": 150}
# what the papers trained with: AdaGrad, minibatch, L2 on the MEAN loss (optimizer weight_decay)
_PAPER_TRAINING = {
    "rnn": {"optimizer": "adagrad", "lr": 0.01, "batch_size": 27, "weight_decay": 1e-4},
    "rntn": {"optimizer": "adagrad", "lr": 0.01, "batch_size": 27, "weight_decay": 1e-4},
    "treelstm": {"optimizer": "adagrad", "lr": 0.05, "batch_size": 25, "weight_decay": 1e-4},
}


@dataclass
class TreeConfig:
    """Everything needed to rebuild the model (stored in checkpoints).

    dim: size of the node vectors h (None: the papers' choice, 30 for "rnn", 25 for "rntn" --
    Socher et al. 2013 found 25-35 best -- and 150 for "treelstm", Tai et al. 2015).
    embed_dim: word-vector size (None: = dim; the plain net and the RNTN require = dim since the
    leaf vector IS the embedding; Tai et al. used 300-d GloVe vectors for the Tree-LSTM).
    init: "uniform" (W ~ U(+-1/sqrt(fan_in))) or "identity" (plain net / RNTN: W = [I I]/2 + that
    noise, i.e. a parent starts as the average of its children). embed_scale: embeddings ~
    U(+-embed_scale). forget_bias: added to the Tree-LSTM forget gates' initial bias.
    weight_decay: a SUGGESTED L2 strength for the training loop, applied by the optimizer to the
    mean gradient (g + wd * p); Tai et al. used 1e-4 (and AdaGrad, lr 0.05, batches of 25);
    Socher's RNTN code 1e-3 on the composition weights and 1e-4 on words and classifier (AdaGrad,
    lr 0.01, batches of 27). See ``paper_training()``.
    """

    vocab_size: int
    cell: str = "rnn"  # rnn | rntn | treelstm
    dim: int | None = None
    embed_dim: int | None = None
    n_classes: int = 5
    init: str = "uniform"
    embed_scale: float = 0.1
    forget_bias: float = 1.0
    weight_decay: float = 1e-4
    dtype: str = "float32"
    seed: int = 0

    def validate(self) -> TreeConfig:
        """Check, and fill in dim / embed_dim; returns the completed copy."""
        if self.cell not in COMPOSITIONS:
            raise RnnkitError(
                f"unknown tree cell {self.cell!r}; choose one of {', '.join(COMPOSITIONS)}"
            )
        if self.vocab_size < 1:
            raise RnnkitError(f"vocab_size must be >= 1, got {self.vocab_size}")
        if self.n_classes < 2:
            raise RnnkitError(f"n_classes must be >= 2, got {self.n_classes}")
        if self.init not in ("uniform", "identity"):
            raise RnnkitError(f"init must be 'uniform' or 'identity', got {self.init!r}")
        if self.embed_scale < 0 or self.weight_decay < 0:
            raise RnnkitError("embed_scale and weight_decay must be >= 0")
        as_dtype(self.dtype)
        dim = _DEFAULT_DIM[self.cell] if self.dim is None else self.dim
        emb = dim if self.embed_dim is None else self.embed_dim
        if dim < 1 or emb < 1:
            raise RnnkitError(f"dim and embed_dim must be >= 1, got {dim} and {emb}")
        return replace(self, dim=dim, embed_dim=emb)

    def paper_training(self) -> dict:
        """The papers' optimizer settings for this cell (a suggestion for the training loop)."""
        return dict(_PAPER_TRAINING[self.cell])

    def to_dict(self) -> dict:
        return asdict(self)


def embedding_grad(n_rows: int, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """dL/dE (n_rows, D): out[w] = sum of rows[j] with ids[j] == w, the gradient of the gather
    E[ids]. A word repeats, so this is a real scatter-add: sort the ids, sum each run of equal
    ids with one ``np.add.reduceat`` (2-3x faster than ``np.add.at``), write the sums once."""
    out = np.zeros((n_rows, rows.shape[1]), rows.dtype)
    if ids.size:
        order = np.argsort(ids, kind="stable")
        s = ids[order]
        starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
        out[s[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


class Classifier(Module):
    """o = h W^T + b for the rows h (n, d): ``weight`` (C, d), ``bias`` (C,)."""

    def __init__(self, dim: int, n_classes: int, rng: np.random.Generator, dtype) -> None:
        super().__init__()
        r = 1.0 / np.sqrt(dim)
        self.add_param("weight", rng.uniform(-r, r, (n_classes, dim)).astype(dtype))
        self.add_param("bias", np.zeros(n_classes, dtype))

    def forward(self, h: np.ndarray) -> np.ndarray:
        o = h @ self.weight.T
        o += self.bias
        return o


class TreeNet(Module):
    """Embeddings at the leaves, a composition up the tree, a softmax classifier at every node:
    the parameters and the computation, shared by :class:`TreeModel` and the tree task's model
    (``rnnkit.models.tree.TreeTaskModel``), which differ only in what their ``loss_and_grads``
    and ``evaluate`` return.

    Parameters: ``embed`` (V, D); ``cell.*`` (see compose.py); ``classify.weight`` (C, d),
    ``classify.bias`` (C,). ``vocab`` (optional :class:`TreeVocab`) encodes raw Trees;
    ``tree_config`` is the (validated) :class:`TreeConfig`.
    """

    def __init__(self, config: TreeConfig, vocab: TreeVocab | None = None) -> None:
        super().__init__()
        self.tree_config = c = config.validate()
        dt = as_dtype(c.dtype)
        if vocab is not None and len(vocab) != c.vocab_size:
            raise RnnkitError(f"vocabulary of {len(vocab)} words but vocab_size={c.vocab_size}")
        self.vocab = vocab
        dim, embed_dim = cast(int, c.dim), cast(int, c.embed_dim)  # validate() filled both
        rng = np.random.default_rng(c.seed)
        self.add_param(
            "embed",
            rng.uniform(-c.embed_scale, c.embed_scale, (c.vocab_size, embed_dim)).astype(dt),
        )
        kw = (
            {"forget_bias": c.forget_bias}
            if c.cell == "treelstm"
            else {"identity_init": c.init == "identity"}
        )
        self.cell = make_composition(c.cell, dim, embed_dim, rng, dt, **kw)
        self.classify = Classifier(dim, c.n_classes, rng, dt)

    # -- batches --------------------------------------------------------------------------------
    def flatten(self, trees: Sequence[Tree]) -> list[FlatTree]:
        """Flatten trees once (with ``model.vocab``) for repeated batching."""
        if self.vocab is None:
            raise RnnkitError(
                "the model has no vocabulary: pass a TreeBatch or FlatTrees, or "
                "build it with TreeModel(config, vocab)"
            )
        return [flatten_tree(t, self.vocab.ids) for t in trees]

    def as_batch(self, batch) -> TreeBatch:
        """A TreeBatch from a TreeBatch, a list of FlatTree or a list of Tree; checked."""
        if not isinstance(batch, TreeBatch):
            items = list(batch)
            if not items:
                raise RnnkitError("empty batch: no trees")
            if all(isinstance(t, Tree) for t in items):
                items = self.flatten(items)
            elif not all(isinstance(t, FlatTree) for t in items):
                raise RnnkitError("a batch must be a TreeBatch or a list of Tree or of FlatTree")
            batch = TreeBatch.from_flat(items)
        c = self.tree_config
        if batch.words.size and (batch.words.min() < 0 or batch.words.max() >= c.vocab_size):
            raise RnnkitError(
                f"word id out of range [0, {c.vocab_size}): "
                f"{batch.words.min()}..{batch.words.max()}"
            )
        if batch.labels.max(initial=-1) >= c.n_classes:
            raise RnnkitError(
                f"label {batch.labels.max()} out of range for n_classes={c.n_classes}"
            )
        return batch

    # -- forward / backward ----------------------------------------------------------------------
    def _forward(self, b: TreeBatch):
        S, caches = forward_levels(self.cell, b, self.embed[b.words])
        rows = np.flatnonzero(b.labels >= 0)  # labelled nodes
        h = S[rows, : self.tree_config.dim]
        return S, caches, rows, h, self.classify.forward(h)

    def tree_loss_and_grads(self, batch) -> tuple[float, int, dict[str, np.ndarray], dict]:
        """Forward and backpropagation through structure on one batch of trees.

        Returns (loss_sum over the labelled nodes, their count, gradients of the SUM by dotted
        parameter name -- trainable ones only --, extra metric counts)."""
        b = self.as_batch(batch)
        S, caches, rows, h, logits = self._forward(b)
        extra = self._counts(b, rows, logits)
        loss, n, dz = softmax_cross_entropy(logits, b.labels[rows])
        d = self.tree_config.dim
        dS = np.zeros_like(S)
        dS[rows, :d] = dz @ self.classify.weight
        de, gcell = backward_levels(self.cell, b, caches, dS)
        grads = {"classify.weight": dz.T @ h, "classify.bias": dz.sum(axis=0)}
        grads.update({f"cell.{k}": v for k, v in gcell.items()})
        keep = self.trainable_names()
        if "embed" in keep:
            grads["embed"] = embedding_grad(self.tree_config.vocab_size, b.words, de)
        return loss, n, {k: v for k, v in grads.items() if k in keep}, extra

    def tree_evaluate(self, batch) -> tuple[float, int, dict]:
        """(loss_sum, number of labelled nodes, extra metric counts); no gradients."""
        b = self.as_batch(batch)
        _, _, rows, _, logits = self._forward(b)
        loss, n, _ = softmax_cross_entropy(logits, b.labels[rows], inplace=False)
        return loss, n, self._counts(b, rows, logits)

    def predict(self, trees) -> tuple[np.ndarray, np.ndarray]:
        """Root predictions: (labels (B,) int64, probabilities (B, C)) in the order given."""
        b = self.as_batch(trees)
        S, _ = forward_levels(self.cell, b, self.embed[b.words])
        p = softmax(self.classify.forward(S[b.roots, : self.tree_config.dim]).astype(np.float64))
        return p.argmax(axis=1), p

    def _counts(self, b: TreeBatch, rows: np.ndarray, logits: np.ndarray) -> dict:
        y = b.labels[rows]
        pred = logits.argmax(axis=1)
        is_root = np.zeros(b.n_nodes, bool)
        is_root[b.roots] = True
        r = is_root[rows]
        out = {
            "node_correct": int((pred == y).sum()),
            "node_total": int(rows.size),
            "root_correct": int((pred[r] == y[r]).sum()),
            "root_total": int(r.sum()),
            "binary_correct": 0,
            "binary_total": 0,
        }
        if self.tree_config.n_classes == 5:
            yr = y[r]
            keep = yr != 2
            p = softmax(logits[r][keep].astype(np.float64))
            pos = p[:, 3:].sum(axis=1) > p[:, :2].sum(axis=1)
            out["binary_correct"] = int((pos == (yr[keep] > 2)).sum())
            out["binary_total"] = int(keep.sum())
        return out


class TreeModel(TreeNet):
    """A :class:`TreeNet` whose ``loss_and_grads`` and ``evaluate`` return plain tuples
    (``config`` is its :class:`TreeConfig`).

    Parameters: ``embed`` (V, D); ``cell.*`` (see compose.py); ``classify.weight`` (C, d),
    ``classify.bias`` (C,). ``vocab`` (optional :class:`TreeVocab`) encodes raw Trees.
    """

    def __init__(self, config: TreeConfig, vocab: TreeVocab | None = None) -> None:
        super().__init__(config, vocab)
        self.config = self.tree_config

    def loss_and_grads(self, batch) -> tuple[float, int, dict[str, np.ndarray], dict]:
        """Forward and backpropagation through structure on one batch of trees.

        Returns (loss_sum over the labelled nodes, their count, gradients of the SUM by dotted
        parameter name -- trainable ones only --, extra metric counts)."""
        return self.tree_loss_and_grads(batch)

    def evaluate(self, batch) -> tuple[float, int, dict]:
        """(loss_sum, number of labelled nodes, extra metric counts); no gradients."""
        return self.tree_evaluate(batch)
