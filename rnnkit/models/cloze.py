"""Fill in the blank with a bidirectional RNN (Deep Learning book 10.3, figure 10.11).

A sentence s = [<s>, w(1), ..., w(n), </s>] (length tau = n + 2) is read by two unidirectional
recurrent stacks over one shared embedding:

    e(t)     = E[s(t)]
    h(t)     = cell_f(e(t), h(t-1))              left to right: h(t) summarises s(0..t)
    g(t)     = cell_b(e(t), g(t+1))              right to left: g(t) summarises s(t..tau-1)
    o(t)     = c + V [h(t-1); g(t+1)]            for t = 1..n: the word w(t) itself is never read
    L        = -sum_t log softmax(o(t))[w(t)]    (10.11-10.14), summed over the word positions

``direction="forward"`` is the left-to-right baseline: o(t) = c + V h(t-1), the same recurrent
stack and output layer without g (a next-word language model scored on the same positions).

Two separate stacks (not one bidirectional layer) keep the word hidden from its own prediction
at every depth: in a stacked bidirectional layer the upper forward direction reads the lower
backward direction, which has seen w(t). The right-to-left stack reads each sequence reversed
within its own length (ragged batches), and its outputs are put back in time order.

Shapes: ids (T, B) with T = max tau, lengths (B,) = n + 2. Parameters: ``embed.weight`` (V, D),
``fwd.*`` and ``bwd.*`` (PyTorch names of each stack), ``out.weight`` (V, K*H) with K = 2
(bidirectional) or 1, ``out.bias`` (V,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, check_ids, check_lengths, lengths_to_mask, softmax_cross_entropy
from ..layers.base import reverse_index
from ..layers.dense import Embedding, Linear
from ..layers.registry import check_cell, make_recurrent
from ..module import Module
from .lm import check_fits_in_memory
from .protocol import StepOut

DIRECTIONS = ("both", "forward")


@dataclass
class ClozeConfig:
    """Everything needed to rebuild a fill-in-the-blank model (stored in checkpoints)."""

    vocab_size: int = field(default=0, metadata={"cli": False})  # set from the data
    unk_id: int | None = field(default=None, metadata={"cli": False})  # left out of the metrics
    direction: str = field(
        default="both",
        metadata={
            "help": "both: the states on both sides of the blank; forward: the left-to-right "
            "baseline (the state before the blank only)",
            "choices": list(DIRECTIONS),
        },
    )
    embed_size: int = field(default=64, metadata={"help": "embedding size"})
    hidden_size: int = field(default=128, metadata={"help": "hidden units per layer and direction"})
    cell: str = field(default="lstm", metadata={"help": "recurrent cell (any registered one)"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers per direction"})
    dropout: float = field(
        default=0.0, metadata={"help": "dropout between stacked layers (training only)"}
    )
    nonlinearity: str = field(
        default="tanh", metadata={"help": "Elman cell: tanh | relu", "choices": ["tanh", "relu"]}
    )
    # as the language model's, by experiment (docs/classify_cloze.md): after 2 epochs held-out
    # loss 3.606 against 3.628 with N(0, 0.1) embeddings and forget bias 1, mean rank 136 vs 141
    forget_bias: float = field(default=0.0, metadata={"help": "LSTM forget-gate bias at init"})
    embed_init_std: float = field(
        default=1.0, metadata={"help": "std of the N(0, s^2) embedding init"}
    )
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> ClozeConfig:
        if self.vocab_size < 2:
            raise RnnkitError(f"vocabulary of {self.vocab_size} token(s): need at least 2")
        if self.direction not in DIRECTIONS:
            raise RnnkitError(
                f"--direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}"
            )
        check_ints(self, ("embed_size", "hidden_size", "num_layers"))
        check_cell(self.cell)
        as_dtype(self.dtype)
        V, D, H, K = self.vocab_size, self.embed_size, self.hidden_size, self.sides
        rec = sum(4 * H * ((D if k == 0 else H) + H + 2) for k in range(self.num_layers)) * K
        check_fits_in_memory(V * D + rec + V * (K * H + 1), as_dtype(self.dtype).itemsize)
        return self

    @property
    def sides(self) -> int:
        """How many states feed the output layer: 2 (both sides of the blank) or 1."""
        return 2 if self.direction == "both" else 1


def reverse_within(a: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """a (T, B, ...) with each column reversed within its length; ``idx`` from
    :func:`rnnkit.layers.base.reverse_index` (its own inverse; None: no padding, all of a
    reversed)."""
    if idx is None:
        return np.ascontiguousarray(a[::-1])
    return np.take_along_axis(a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=0)


class ClozeModel(Module):
    """Predict every word of a sentence from its left context (and, for ``direction="both"``,
    its right context). Children: ``embed``, ``fwd``, ``bwd`` (bidirectional only), ``out``."""

    def __init__(self, config: ClozeConfig):
        super().__init__()
        self.config = c = config.validate()
        dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        seeds = [int(s) for s in rng.integers(2**31, size=2)]
        self.embed = Embedding(c.vocab_size, c.embed_size, rng, dt, init_std=c.embed_init_std)
        kw: dict[str, Any] = dict(
            num_layers=c.num_layers,
            dropout=c.dropout,
            dtype=c.dtype,
            nonlinearity=c.nonlinearity,
            forget_bias=c.forget_bias,
        )
        self.fwd = make_recurrent(c.cell, c.embed_size, c.hidden_size, seed=seeds[0], **kw)
        if c.sides == 2:
            self.bwd = make_recurrent(c.cell, c.embed_size, c.hidden_size, seed=seeds[1], **kw)
        self.out = Linear(c.sides * c.hidden_size, c.vocab_size, rng, dt)
        self._dtype = dt

    def _check(self, ids, lengths):
        ids = check_ids(ids, self.config.vocab_size, "inputs")
        T, B = ids.shape
        if T < 3:
            raise RnnkitError(f"sentences need at least 3 steps (<s> word </s>), got T={T}")
        lengths = check_lengths(np.full(B, T) if lengths is None else lengths, T, B)
        if lengths.min() < 3:
            raise RnnkitError(
                f"sentences need at least 3 steps (<s> word </s>), got a length {lengths.min()}"
            )
        return ids, lengths

    def context(self, ids: np.ndarray, lengths=None):
        """The features of every word position: c (T-2, B, K*H), row t-1 for position t:
        [h(t-1); g(t+1)] (or h(t-1)); and ``mask`` (T-2, B), True at real word positions."""
        ids, lengths = self._check(ids, lengths)
        T, B = ids.shape
        e = self.embed.forward(ids)
        hf, _ = self.fwd.forward(e, lengths=lengths)
        parts = [hf[: T - 2]]
        ridx = None
        if self.config.sides == 2:
            ridx = reverse_index(T, lengths, B)
            gr, _ = self.bwd.forward(reverse_within(e, ridx), lengths=lengths)
            parts.append(reverse_within(gr, ridx)[2:])
        c = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        mask = lengths_to_mask(lengths - 2, T - 2)
        return c, mask, (ids, lengths, ridx)

    def _scores(self, batch):
        ids, lengths = batch
        c, mask, saved = self.context(ids, lengths)
        rows = c[mask]  # (N, K*H): the real word positions, in (t, b) order
        tgt = saved[0][1:-1][mask]  # (N,) the words w(t)
        return rows, tgt, c.shape, mask, saved, self.out.forward(rows)

    # -- the model protocol of the training loop ----------------------------------------------
    def loss_and_grads(self, batch, carry=None) -> StepOut:
        """batch = (ids (T, B), lengths (B,)); every word position is a target."""
        rows, tgt, cshape, mask, (ids, lengths, ridx), logits = self._scores(batch)
        extra = rank_counts(logits, tgt, self.config.unk_id)
        nll, n, dlogits = softmax_cross_entropy(logits, tgt, inplace=True)
        drows = self.out.backward(rows, dlogits)
        dc = np.zeros(cshape, self._dtype)
        dc[mask] = drows
        T, B, H = ids.shape[0], ids.shape[1], self.config.hidden_size
        dh = np.zeros((T, B, H), self._dtype)
        dh[: T - 2] = dc[..., :H]
        de, _ = self.fwd.backward(dh)
        if self.config.sides == 2:
            dg = np.zeros((T, B, H), self._dtype)
            dg[2:] = dc[..., H:]
            deb, _ = self.bwd.backward(reverse_within(dg, ridx))
            de = de + reverse_within(deb, ridx)
        self.embed.backward(ids, de)
        return StepOut(nll, n, self.named_grads(), extra=extra)

    def evaluate(self, batch, carry=None) -> StepOut:
        _, tgt, _, _, _, logits = self._scores(batch)
        extra = rank_counts(logits, tgt, self.config.unk_id)
        nll, n, _ = softmax_cross_entropy(logits, tgt, inplace=True)
        return StepOut(nll, n, None, extra=extra)

    def blank_logits(self, ids: np.ndarray, position: int) -> np.ndarray:
        """o(position) (V,) for one sentence ids (tau,) = [<s>, ..., </s>]; whatever id sits at
        ``position`` is never read."""
        ids = np.asarray(ids, np.int64)[:, None]
        if not 1 <= position <= ids.shape[0] - 2:
            raise RnnkitError(
                f"the blank must be a word position 1..{ids.shape[0] - 2}, got {position}"
            )
        c, _, _ = self.context(ids, None)
        return self.out.forward(c[position - 1, 0])


def rank_counts(logits: np.ndarray, targets: np.ndarray, skip: int | None = None) -> dict:
    """Summable metrics: ``correct`` (argmax == target), ``rank_sum`` (rank of the target: 1 +
    the number of strictly higher scores) and ``total``, over the positions whose target is not
    ``skip``. logits (N, V), targets (N,)."""
    keep = np.ones(len(targets), bool) if skip is None else targets != skip
    lg, tg = logits[keep], targets[keep]
    true = lg[np.arange(len(tg)), tg][:, None]
    rank = 1 + (lg > true).sum(axis=1)
    return {
        "correct": int((rank == 1).sum()),
        "rank_sum": int(rank.sum()),
        "total": int(keep.sum()),
    }
