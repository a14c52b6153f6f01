"""Sequence classification: one output at the end of the sequence (Deep Learning book 10.2,
figure 10.5)::

    e(t) = E[x(t)]  (token ids)   or   e(t) = x(t)  (feature vectors)
    h(t) = cell(e(t), h(t-1))                  any registered cell, stacked, one or two directions
    f    = h(tau_b)                            the forward state at sequence b's own last step
           [h_fwd(tau_b); h_bwd(1)]            bidirectional: the forward direction's state at the
                                               last step and the backward direction's at the
                                               first, i.e. PyTorch's h_n of both directions
    o    = c + V f                             (10.10), one product for the whole batch
    L    = -sum_b log softmax(o_b)[y_b]        (10.11-10.14), summed over the sequences

Shapes: x (T, B) ids or (T, B, F) floats, lengths (B,) (ragged batches; None: all have length T),
labels (B,) ints in [0, C). Parameters: ``embed.weight`` (V, D) (token inputs only),
``rnn.*`` (PyTorch names), ``out.weight`` (C, D*H), ``out.bias`` (C,).

The final features are gathered from the top layer's outputs y (T, B, D*H); the backward pass
scatters dL/df back into a zero dy at the same positions, and the layer does BPTT from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, check_ids, check_lengths, softmax, softmax_cross_entropy
from ..layers.dense import Embedding, Linear
from ..layers.registry import check_cell, make_recurrent
from ..module import Module
from .lm import check_fits_in_memory
from .protocol import StepOut


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a sequence classifier (stored in checkpoints)."""

    num_classes: int = field(default=0, metadata={"cli": False})  # set from the data
    vocab_size: int = field(default=0, metadata={"cli": False})  # token inputs; 0: features
    input_size: int = field(default=0, metadata={"cli": False})  # feature inputs (digits: 8)
    embed_size: int = field(default=64, metadata={"help": "embedding size (text data)"})
    hidden_size: int = field(default=64, metadata={"help": "hidden units per layer and direction"})
    cell: str = field(default="lstm", metadata={"help": "recurrent cell (any registered one)"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers"})
    bidirectional: bool = field(
        default=False,
        metadata={
            "help": "read each sequence both ways; classify from both directions' final states"
        },
    )
    dropout: float = field(
        default=0.0, metadata={"help": "dropout between stacked layers (training only)"}
    )
    nonlinearity: str = field(
        default="tanh", metadata={"help": "Elman cell: tanh | relu", "choices": ["tanh", "relu"]}
    )
    forget_bias: float = field(default=1.0, metadata={"help": "LSTM forget-gate bias at init"})
    embed_init_std: float = field(
        default=0.1, metadata={"help": "std of the N(0, s^2) embedding init"}
    )
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> ClassifierConfig:
        if self.num_classes < 2:
            raise RnnkitError(f"{self.num_classes} class(es): a classifier needs at least 2")
        if (self.vocab_size > 0) == (self.input_size > 0):
            raise RnnkitError(
                "a classifier reads either token ids (vocab_size > 0) or feature "
                "vectors (input_size > 0), not both or neither"
            )
        check_ints(self, ("embed_size", "hidden_size", "num_layers"))
        check_cell(self.cell)
        as_dtype(self.dtype)
        D, H = (2 if self.bidirectional else 1), self.hidden_size
        n_in = self.embed_size if self.vocab_size else self.input_size
        rec = sum(4 * H * ((n_in if k == 0 else D * H) + H + 2) * D for k in range(self.num_layers))
        check_fits_in_memory(
            self.vocab_size * self.embed_size + rec + self.num_classes * (D * H + 1),
            as_dtype(self.dtype).itemsize,
        )
        return self


def final_index(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """(B,) the last real step of each sequence: lengths - 1 (T - 1 when not ragged)."""
    return np.full(B, T - 1, np.int64) if lengths is None else np.asarray(lengths, np.int64) - 1


class SequenceClassifier(Module):
    """[Embedding ->] recurrent layer(s) -> final state(s) -> Linear -> softmax cross-entropy.

    Children: ``embed`` (token inputs only), ``rnn``, ``out``.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = c = config.validate()
        dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        rnn_seed = int(rng.integers(2**31))
        n_in = c.input_size
        if c.vocab_size:
            self.embed = Embedding(c.vocab_size, c.embed_size, rng, dt, init_std=c.embed_init_std)
            n_in = c.embed_size
        self.rnn = make_recurrent(
            c.cell,
            n_in,
            c.hidden_size,
            num_layers=c.num_layers,
            bidirectional=c.bidirectional,
            dropout=c.dropout,
            seed=rnn_seed,
            dtype=c.dtype,
            nonlinearity=c.nonlinearity,
            forget_bias=c.forget_bias,
        )
        self.out = Linear(self.rnn.output_size, c.num_classes, rng, dt)
        self._dtype = dt

    # -- forward pieces ---------------------------------------------------------------------------
    def _inputs(self, x: np.ndarray, lengths):
        x = np.asarray(x)
        if self.config.vocab_size:
            x = check_ids(x, self.config.vocab_size, "inputs")
            e = self.embed.forward(x)
        else:
            if x.ndim != 3 or x.shape[2] != self.config.input_size or x.shape[0] == 0:
                raise RnnkitError(
                    f"inputs must have shape (T, B, {self.config.input_size}), got {x.shape}"
                )
            e = x.astype(self._dtype, copy=False)
        T, B = x.shape[:2]
        return x, e, check_lengths(lengths, T, B)

    def features(self, x: np.ndarray, lengths=None):
        """f (B, D*H): the final state(s) of each sequence; also returns what backward needs."""
        x, e, lengths = self._inputs(x, lengths)
        y, _ = self.rnn.forward(e, lengths=lengths)
        T, B = y.shape[:2]
        last, cols, H = final_index(lengths, T, B), np.arange(B), self.config.hidden_size
        f = y[last, cols]  # (B, D*H): the forward direction at each sequence's last step
        if self.config.bidirectional:
            f[:, H:] = y[0, :, H:]  # the backward direction ends at the first step
        return f, (x, y.shape, last)

    def logits(self, x: np.ndarray, lengths=None) -> np.ndarray:
        """o (B, C) = c + V f."""
        return self.out.forward(self.features(x, lengths)[0])

    def predict_proba(self, x: np.ndarray, lengths=None) -> np.ndarray:
        """softmax(o) (B, C) in float64."""
        return softmax(self.logits(x, lengths).astype(np.float64))

    # -- the model protocol of the training loop ----------------------------------------------
    def loss_and_grads(self, batch, carry=None) -> StepOut:
        """batch = (x (T, B) or (T, B, F), labels (B,), lengths (B,) or None)."""
        x, labels, lengths = batch
        f, (x, yshape, last) = self.features(x, lengths)
        logits = self.out.forward(f)
        correct = int((logits.argmax(axis=1) == labels).sum())
        loss, n, dlogits = softmax_cross_entropy(logits, self._labels(labels, len(f)), inplace=True)
        df = self.out.backward(f, dlogits)
        dy, cols, H = np.zeros(yshape, self._dtype), np.arange(yshape[1]), self.config.hidden_size
        if self.config.bidirectional:
            dy[last, cols, :H] = df[:, :H]
            dy[0, :, H:] = df[:, H:]
        else:
            dy[last, cols] = df
        de, _ = self.rnn.backward(dy)
        if self.config.vocab_size:
            self.embed.backward(x, de)
        return StepOut(loss, n, self.named_grads(), extra={"correct": correct, "total": n})

    def evaluate(self, batch, carry=None) -> StepOut:
        x, labels, lengths = batch
        logits = self.logits(x, lengths)
        correct = int((logits.argmax(axis=1) == labels).sum())
        loss, n, _ = softmax_cross_entropy(logits, self._labels(labels, len(logits)), inplace=True)
        return StepOut(loss, n, None, extra={"correct": correct, "total": n})

    def _labels(self, labels, B: int) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.shape != (B,) or not np.issubdtype(labels.dtype, np.integer):
            raise RnnkitError(f"labels must be ({B},) integers, got {labels.shape} {labels.dtype}")
        return labels
