"""Vector to sequence (Deep Learning book 10.2.4, figure 10.9): an image captioner.

An encoder turns each image into a fixed vector v; a recurrent language model over the caption's
words is conditioned on v at every step, through its input, its initial state, or both:

    v = tanh(c2 + A2 tanh(c1 + A1 (pixels - 1/2)))        encoder, an MLP         (B, Z)
    e(t) = E[w(t-1)] + P v          ("input", "both")      every step sees v       (T, B, D)
    h(0) = tanh(s + S v)            ("state", "both")      else h(0) = 0          (L, B, H)
    h(t) = cell(e(t), h(t-1))                              any registered cell (10.8-10.9 for rnn)
    o(t) = c + V h(t)                                      (10.10)
    L = -sum_t log softmax(o(t))[w(t)]                     (10.12-10.14)

Training is teacher forcing (w(t-1) the previous word of the reference caption, w(-1) = <s>);
the encoder is trained jointly by backpropagation into v:

    dL/dv = P^T sum_t dL/de(t)  +  S^T (dL/dh(0) * (1 - h(0)^2))

one product each (v is the same at every step, so dL/dP = (sum_t dL/de(t))^T v). Evaluation
decodes greedily (:meth:`Captioner.greedy`), a loop over words.

Shapes: images (B, S, S, 3) floats in [0, 1]; inputs, targets (T, B) word ids; lengths (B,).
Children: ``enc1``, ``enc2`` (Linear), ``embed``, ``cond_in`` (P, no bias), ``cond_state``
(S, s), ``rnn`` (PyTorch names), ``out``; only those the conditioning uses exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, check_ids, lengths_to_mask, softmax_cross_entropy
from ..layers.dense import Embedding, Linear
from ..layers.registry import check_cell, make_recurrent
from ..layers.state import as_public, check_parts
from ..layers.stepper import Stepper
from ..module import Module
from .protocol import StepOut

CONDITIONS = ("input", "state", "both")


@dataclass
class CaptionerConfig:
    """Everything needed to rebuild the model (stored in checkpoints)."""

    image_size: int = field(default=32, metadata={"cli": False})  # set from the data
    vocab_size: int = field(default=0, metadata={"cli": False})
    bos_id: int = field(default=1, metadata={"cli": False})
    eos_id: int = field(default=2, metadata={"cli": False})
    condition: str = field(
        default="both",
        metadata={
            "help": "how the image vector enters the decoder: added to every step's input, as the "
            "initial state, or both",
            "choices": list(CONDITIONS),
        },
    )
    encoder_size: int = field(default=128, metadata={"help": "hidden units of the image MLP"})
    vector_size: int = field(default=64, metadata={"help": "size of the image vector v"})
    embed_size: int = field(default=32, metadata={"help": "word embedding size"})
    hidden_size: int = field(default=64, metadata={"help": "decoder hidden units"})
    cell: str = field(default="rnn", metadata={"help": "decoder cell (any registered one)"})
    num_layers: int = field(default=1, metadata={"help": "stacked decoder layers"})
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> CaptionerConfig:
        if self.condition not in CONDITIONS:
            raise RnnkitError(
                f"--condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}"
            )
        check_ints(
            self,
            (
                "image_size",
                "encoder_size",
                "vector_size",
                "embed_size",
                "hidden_size",
                "num_layers",
            ),
        )
        if self.vocab_size < 3:
            raise RnnkitError(
                f"vocabulary of {self.vocab_size} words: a captioner needs at least 3"
            )
        check_cell(self.cell)
        as_dtype(self.dtype)
        return self


class Captioner(Module):
    """Image MLP -> vector v -> conditioned recurrent language model over caption words."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = c = config.validate()
        self.dt = dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        n_pix = 3 * c.image_size * c.image_size
        self.enc1 = Linear(n_pix, c.encoder_size, rng, dt)
        self.enc2 = Linear(c.encoder_size, c.vector_size, rng, dt)
        self.embed = Embedding(c.vocab_size, c.embed_size, rng, dt, init_std=0.1)
        self.use_input = c.condition in ("input", "both")
        self.use_state = c.condition in ("state", "both")
        if self.use_input:
            self.cond_in = Linear(c.vector_size, c.embed_size, rng, dt, bias=False)
        if self.use_state:
            self.cond_state = Linear(c.vector_size, c.num_layers * c.hidden_size, rng, dt)
        self.rnn = make_recurrent(
            c.cell,
            c.embed_size,
            c.hidden_size,
            num_layers=c.num_layers,
            seed=int(rng.integers(2**31)),
            dtype=c.dtype,
        )
        self.out = Linear(c.hidden_size, c.vocab_size, rng, dt)

    # -- pieces ---------------------------------------------------------------------------------
    def _pixels(self, images: np.ndarray) -> np.ndarray:
        S = self.config.image_size
        a = np.asarray(images)
        if a.ndim != 4 or a.shape[1:] != (S, S, 3):
            raise RnnkitError(f"images must have shape (B, {S}, {S}, 3), got {a.shape}")
        return a.reshape(a.shape[0], -1).astype(self.dt, copy=False)

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, tuple]:
        """v (B, Z) and what the backward pass needs."""
        x = self._pixels(images)
        h1 = np.tanh(self.enc1.forward(x))
        v = np.tanh(self.enc2.forward(h1))
        return v, (x, h1, v)

    def encode_backward(self, tape: tuple, dv: np.ndarray) -> None:
        x, h1, v = tape
        da2 = dv * (1.0 - v * v)
        dh1 = self.enc2.backward(h1, da2)
        self.enc1.backward(x, dh1 * (1.0 - h1 * h1))

    def _state0(self, v: np.ndarray):
        """h(0) (L, B, H) from v (None without state conditioning); LSTM: (h(0), 0)."""
        if not self.use_state:
            return None, None
        c = self.config
        h0 = np.tanh(self.cond_state.forward(v))  # (B, L*H)
        h0_l = np.ascontiguousarray(h0.reshape(-1, c.num_layers, c.hidden_size).transpose(1, 0, 2))
        rest = tuple(np.zeros_like(h0_l) for _ in range(self.rnn.cell.n_states - 1))
        return as_public((h0_l, *rest)), h0

    # -- teacher-forced forward and backward ----------------------------------------------------
    def _forward(self, batch):
        images, inputs, targets, lengths = batch[:4]
        V = self.config.vocab_size
        inputs, targets = check_ids(inputs, V, "inputs"), check_ids(targets, V, "targets")
        if inputs.shape != targets.shape or inputs.shape[1] != len(images):
            raise RnnkitError(
                f"inputs {inputs.shape}, targets {targets.shape} and {len(images)} images disagree"
            )
        v, tape = self.encode(images)
        e = self.embed.forward(inputs)  # (T, B, D)
        if self.use_input:
            e = e + self.cond_in.forward(v)[None]  # + P v at every step
        state0, h0 = self._state0(v)
        y, _ = self.rnn.forward(e, state0, lengths=lengths)
        mask = None if lengths is None else lengths_to_mask(lengths, y.shape[0])
        rows, tgt = (
            (y.reshape(-1, y.shape[2]), targets.reshape(-1))
            if mask is None
            else (y[mask], targets[mask])
        )
        logits = self.out.forward(rows)
        return inputs, v, tape, h0, y, mask, rows, logits, tgt

    def loss_and_grads(self, batch, carry=None) -> StepOut:
        """batch = (images (B, S, S, 3), inputs (T, B), targets (T, B), lengths (B,) or None[,
        group (B,) bool: see :meth:`evaluate`])."""
        inputs, v, tape, h0, y, mask, rows, logits, tgt = self._forward(batch)
        nll, n, dlogits = softmax_cross_entropy(logits, tgt, inplace=True)
        drows = self.out.backward(rows, dlogits)
        if mask is None:
            dy = drows.reshape(y.shape)
        else:
            dy = np.zeros_like(y)
            dy[mask] = drows
        de, dstate0 = self.rnn.backward(dy)
        if mask is not None:
            de = de * mask[:, :, None]
        self.embed.backward(inputs, de)
        dv = np.zeros_like(v)
        if self.use_input:
            dv += self.cond_in.backward(v, de.sum(axis=0))  # sum over steps first
        if self.use_state:
            dh0 = check_parts(dstate0, self.rnn.cell.n_states)[0]  # (L, B, H)
            dh0 = dh0.transpose(1, 0, 2).reshape(h0.shape)
            dv += self.cond_state.backward(v, dh0 * (1.0 - h0 * h0))
        self.encode_backward(tape, dv)
        return StepOut(nll, n, self.named_grads())

    def nll(self, batch) -> float:
        """The summed teacher-forced negative log-likelihood of a batch (forward only)."""
        *_, logits, tgt = self._forward(batch)
        return softmax_cross_entropy(logits, tgt, inplace=True)[0]

    def evaluate(self, batch, carry=None) -> StepOut:
        """Teacher-forced nll and word accuracy (``tf_correct``); greedy decoding: ``exact``
        captions of ``seqs``, position-wise ``word_correct`` of ``words`` (reference words and
        </s>); with a fifth batch element ``group`` (B,) bool, also ``exact_group`` of ``group``
        (e.g. the images that show attribute pairs never seen in training)."""
        images, _, targets, lengths = batch[:4]
        *_, logits, tgt = self._forward(batch)
        tf_correct = int((logits.argmax(axis=1) == tgt).sum())
        nll, n, _ = softmax_cross_entropy(logits, tgt, inplace=True)
        T, B = targets.shape
        dec = self.greedy(images, max_len=T)
        mask = np.ones((T, B), bool) if lengths is None else lengths_to_mask(lengths, T)
        hit = (dec[:T] == targets) & mask
        exact = (hit | ~mask).all(axis=0)
        extra = {
            "tf_correct": tf_correct,
            "exact": int(exact.sum()),
            "seqs": B,
            "word_correct": int(hit.sum()),
            "words": int(mask.sum()),
        }
        group = batch[4] if len(batch) > 4 else None
        if group is not None:
            extra["exact_group"], extra["group"] = int(exact[group].sum()), int(np.sum(group))
        return StepOut(nll, n, None, extra=extra)

    # -- decoding -----------------------------------------------------------------------------
    def greedy(self, images: np.ndarray, max_len: int = 12) -> np.ndarray:
        """Greedy captions (max_len, B) word ids: the argmax word is fed back at every step;
        after </s> a sequence keeps emitting </s>."""
        c = self.config
        v, _ = self.encode(images)
        B = v.shape[0]
        state0, _ = self._state0(v)
        cv = self.cond_in.forward(v) if self.use_input else 0.0
        st = Stepper(self.rnn, B, state0=state0)
        Wo, bo, E = np.ascontiguousarray(self.out.weight.T), self.out.bias, self.embed.weight
        tok = np.full(B, c.bos_id, np.int64)
        out = np.full((max_len, B), c.eos_id, np.int64)
        done = np.zeros(B, bool)
        for t in range(max_len):
            h = st.step(E[tok] + cv)
            tok = (h @ Wo + bo).argmax(axis=1)
            tok[done] = c.eos_id
            out[t] = tok
            done |= tok == c.eos_id
            if done.all():
                break
        return out
