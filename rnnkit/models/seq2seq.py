"""Encoder-decoder sequence to sequence (Deep Learning book 10.4, figure 10.12).

An encoder reads the source x(1..n_x) into a context C; a decoder produces the target
y(1..n_y) conditioned on C. Two forms:

    encoder   h(t) = cell(x(t), h(t-1)), t = 1..n_x      (each source stops at its OWN length)
    context   C = h(n_x) of the top layer; bidirectional: [h_fwd(n_x); h_bwd(1)]   (B, D*H)

    "repeat"   (Keras' RepeatVector, Cho et al. 2014's context at every step)
               s(t) = cell(C, s(t-1)),  s(0) = 0
    "feedback" (Sutskever et al. 2014)
               s(t) = cell(E[y(t-1)], s(t-1)),  y(0) = <go>
               s(0) = the encoder's final state: every layer, and the LSTM's memory cell too
               (same sizes by construction); bidirectional: s(0) = W [fwd; bwd] + b, one Linear
               per state kind (``bridge0`` for h, ``bridge1`` for c), applied to every layer.
               Training uses teacher forcing: the decoder's inputs are <go> + target[:-1], so the
               whole decoder runs as ONE sequence forward and ONE BPTT. Inference feeds back its
               own predictions, greedily or by beam search, through ``rnnkit.layers.Stepper``.

    o(t) = c + V s(t)  (10.10),  yhat(t) = softmax(o(t))  (10.11)
    L = -sum_t log yhat(t)[y(t)]  (10.12-10.14), summed over the real target steps

Shapes: source ids (T_x, B) with lengths (B,) or None; target ids (T_y, B) with lengths (B,) or
None (targets hold their end token, if any, themselves). Inputs are one-hot (``embed_size`` None:
the embedding is the first layer's input weights, W_ih^T[ids], a row gather) or embedded by an
``Embedding`` (``src_embed``, ``tgt_embed``).

Parameters (dotted names): ``src_embed.weight``, ``encoder.*`` (PyTorch names),
``tgt_embed.weight``, ``bridge0.*``, ``bridge1.*``, ``decoder.*``, ``out.weight`` (V_y, H),
``out.bias`` (V_y,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, check_ids, lengths_to_mask, softmax_cross_entropy
from ..layers.dense import Embedding, Linear
from ..layers.registry import check_cell, make_recurrent
from ..layers.state import as_public, check_parts
from ..layers.stepper import Stepper
from ..module import Module
from .protocol import StepOut

FORMS = ("repeat", "feedback")


class Batch(NamedTuple):
    """src (T_x, B) ids, src_len (B,) or None, tgt (T_y, B) ids, tgt_len (B,) or None."""

    src: np.ndarray
    src_len: np.ndarray | None
    tgt: np.ndarray
    tgt_len: np.ndarray | None


@dataclass
class Seq2SeqConfig:
    """Everything needed to rebuild the model (stored in checkpoints)."""

    src_vocab: int = field(default=0, metadata={"cli": False})  # set from the data
    tgt_vocab: int = field(default=0, metadata={"cli": False})
    form: str = field(
        default="feedback",
        metadata={
            "help": "repeat: the context is the decoder's input at every step "
            "(Keras' RepeatVector); feedback: the context is the decoder's initial state and "
            "the decoder reads its previous output token (teacher forcing in training)",
            "choices": list(FORMS),
        },
    )
    cell: str = field(default="lstm", metadata={"help": "recurrent cell of encoder and decoder"})
    hidden_size: int = field(default=128, metadata={"help": "hidden units per layer"})
    num_layers: int = field(default=1, metadata={"help": "stacked layers in encoder and decoder"})
    bidirectional: bool = field(default=False, metadata={"help": "bidirectional encoder"})
    # 32 by experiment (docs/seq2seq.md): against one-hot inputs it took date normalisation from
    # 0.84 to 0.99 whole-answer accuracy after 2 epochs, and the feedback form on 3-digit
    # addition from 0.995/0.997 to 0.999/0.999 after 10 (seeds 0/1)
    embed_size: int | None = field(
        default=32, metadata={"help": "token embedding size (--no-embed-size: one-hot inputs)"}
    )
    dropout: float = field(
        default=0.0, metadata={"help": "dropout between stacked layers (training only)"}
    )
    forget_bias: float = field(default=1.0, metadata={"help": "LSTM forget-gate bias at init"})
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    out_len: int = field(default=1, metadata={"cli": False})  # decoder steps at inference
    go_id: int = field(default=0, metadata={"cli": False})  # feedback: the first decoder input
    eos_id: int | None = field(default=None, metadata={"cli": False})  # decoding stops after it
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> Seq2SeqConfig:
        for name in ("src_vocab", "tgt_vocab"):
            if getattr(self, name) < 2:
                raise RnnkitError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.form not in FORMS:
            raise RnnkitError(f"--form must be one of {', '.join(FORMS)}, got {self.form!r}")
        check_ints(self, ("hidden_size", "num_layers", "out_len"))
        if self.embed_size is not None and (
            isinstance(self.embed_size, bool)
            or not isinstance(self.embed_size, int)
            or self.embed_size < 1
        ):
            raise RnnkitError(
                f"--embed-size must be an integer >= 1 or none, got {self.embed_size!r}"
            )
        check_cell(self.cell)
        if not 0 <= self.go_id < self.tgt_vocab:
            raise RnnkitError(f"go_id {self.go_id} is not a target token id")
        if self.eos_id is not None and not 0 <= self.eos_id < self.tgt_vocab:
            raise RnnkitError(f"eos_id {self.eos_id} is not a target token id")
        as_dtype(self.dtype)
        return self


class Seq2Seq(Module):
    """Encoder -> context -> decoder -> affine -> softmax (see the module docstring)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config.validate()
        dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        H, L = c.hidden_size, c.num_layers
        self.D = D = 2 if c.bidirectional else 1
        # the keyword arguments encoder and decoder share (Any: make_recurrent's differ in type)
        common: dict[str, Any] = dict(
            num_layers=L, dropout=c.dropout, dtype=c.dtype, forget_bias=c.forget_bias
        )
        enc_in = c.src_vocab
        if c.embed_size:
            self.src_embed = Embedding(c.src_vocab, c.embed_size, rng, dt, init_std=0.1)
            enc_in = c.embed_size
        self.encoder = make_recurrent(
            c.cell,
            enc_in,
            H,
            bidirectional=c.bidirectional,
            seed=int(rng.integers(2**31)),
            **common,
        )
        self.n_states = self.encoder.cell.n_states
        if c.form == "repeat":
            dec_in = D * H
        else:
            dec_in = c.tgt_vocab
            if c.embed_size:
                self.tgt_embed = Embedding(c.tgt_vocab, c.embed_size, rng, dt, init_std=0.1)
                dec_in = c.embed_size
            if D == 2:
                for k in range(self.n_states):
                    setattr(self, f"bridge{k}", Linear(2 * H, H, rng, dt))
        self.decoder = make_recurrent(c.cell, dec_in, H, seed=int(rng.integers(2**31)), **common)
        self.out = Linear(H, c.tgt_vocab, rng, dt)
        self._bridge_x: list | None = None

    # -- pieces -----------------------------------------------------------------------------------
    def _embedded(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Embedded ids (T, B, E), or one-hot rows (T, B, V) without an embedding: at these
        vocabulary sizes the products with one-hot rows are far cheaper than the layer's
        row gather and its scatter-add gradient."""
        emb = self._modules.get(name)
        if emb is not None:
            return emb.forward(ids)
        V = self.config.src_vocab if name == "src_embed" else self.config.tgt_vocab
        return np.eye(V, dtype=self.decoder.dtype)[ids]

    def encode(self, src: np.ndarray, src_len: np.ndarray | None = None):
        """src (T_x, B) ids -> the encoder's final state (L*D, B, H) (LSTM: a pair), each
        sequence's own last step (``src_len``)."""
        src = check_ids(src, self.config.src_vocab, "source")
        _, state = self.encoder.forward(self._embedded("src_embed", src), lengths=src_len)
        return state

    def _parts(self, state) -> tuple:
        return check_parts(state, self.n_states)

    def _pack(self, parts):
        return as_public(tuple(parts))

    def context(self, enc_state) -> np.ndarray:
        """C (B, D*H): the top layer's final hidden state (both directions concatenated)."""
        h = self._parts(enc_state)[0]
        return np.concatenate(list(h[-self.D :]), axis=1)

    def _context_back(self, dC: np.ndarray, enc_state):
        """dL/dC (B, D*H) -> dL/d(encoder final state), zero outside the top layer's h."""
        H, D = self.config.hidden_size, self.D
        d = [np.zeros_like(p) for p in self._parts(enc_state)]
        for j in range(D):
            d[0][d[0].shape[0] - D + j] = dC[:, j * H : (j + 1) * H]
        return self._pack(d)

    def init_state(self, enc_state):
        """Feedback form: the decoder's initial state (L, B, H) (LSTM: a pair)."""
        if self.D == 1:
            self._bridge_x = None
            return enc_state
        L, H = self.config.num_layers, self.config.hidden_size
        xs, out = [], []
        for k, p in enumerate(self._parts(enc_state)):
            B = p.shape[1]
            x = p.reshape(L, 2, B, H).transpose(0, 2, 1, 3).reshape(L * B, 2 * H)  # [fwd; bwd]
            xs.append(x)
            out.append(getattr(self, f"bridge{k}").forward(x).reshape(L, B, H))
        self._bridge_x = xs
        return self._pack(out)

    def _init_state_back(self, ds0):
        if self.D == 1:
            return ds0
        L, H = self.config.num_layers, self.config.hidden_size
        out = []
        for k, (d, x) in enumerate(zip(self._parts(ds0), self._bridge_x)):
            B = d.shape[1]
            dx = getattr(self, f"bridge{k}").backward(x, d.reshape(L * B, H))
            out.append(dx.reshape(L, B, 2, H).transpose(0, 2, 1, 3).reshape(2 * L, B, H))
        return self._pack(out)

    def _decoder_inputs(self, tgt: np.ndarray) -> np.ndarray:
        """Teacher forcing: <go> + target[:-1], (T_y, B) ids."""
        dec = np.empty_like(tgt)
        dec[0] = self.config.go_id
        dec[1:] = tgt[:-1]
        return dec

    def _forward(self, b: Batch):
        """Forward of a batch: (rows (N, H), logits (N, V_y), targets (N,), mask or None, aux)."""
        c = self.config
        tgt = check_ids(b.tgt, c.tgt_vocab, "target")
        if np.ndim(b.src) == 2 and np.shape(b.src)[1] != tgt.shape[1]:
            raise RnnkitError(
                f"source batch of {np.shape(b.src)[1]} sequence(s) but target batch of "
                f"{tgt.shape[1]}: src (T_x, B) and tgt (T_y, B) must have the same B"
            )
        enc_state = self.encode(b.src, b.src_len)
        T, B = tgt.shape
        if c.form == "repeat":
            C = self.context(enc_state)
            x = np.broadcast_to(C, (T,) + C.shape).copy()
            y, _ = self.decoder.forward(x, lengths=b.tgt_len)
            dec_in = None
        else:
            dec_in = self._decoder_inputs(tgt)
            s0 = self.init_state(enc_state)
            y, _ = self.decoder.forward(self._embedded("tgt_embed", dec_in), s0, lengths=b.tgt_len)
        mask = None if b.tgt_len is None else lengths_to_mask(b.tgt_len, T)
        if mask is None or mask.all():
            mask, rows, t = None, y.reshape(T * B, -1), tgt.reshape(-1)
        else:
            rows, t = y[mask], tgt[mask]
        logits = self.out.forward(rows)
        return y, rows, logits, t, mask, (enc_state, dec_in)

    # -- the model protocol of the training loop ------------------------------------------------
    def loss_and_grads(self, batch, carry=None) -> StepOut:
        """The summed nll over the real target steps, their count, and the gradients of the sum
        by dotted name: BPTT through the decoder, then the context, then the encoder."""
        b = Batch(*batch)
        y, rows, logits, t, mask, (enc_state, dec_in) = self._forward(b)
        nll, n, dlogits = softmax_cross_entropy(logits, t, inplace=True)
        drows = self.out.backward(rows, dlogits)
        if mask is None:
            dy = drows.reshape(y.shape)
        else:
            dy = np.zeros_like(y)
            dy[mask] = drows
        dx, ds0 = self.decoder.backward(dy)
        if self.config.form == "repeat":
            d_enc = self._context_back(dx.sum(axis=0), enc_state)
        else:
            if "tgt_embed" in self._modules:
                self.tgt_embed.backward(dec_in, dx)
            d_enc = self._init_state_back(ds0)
        dsrc, _ = self.encoder.backward(None, d_enc)
        if "src_embed" in self._modules:
            self.src_embed.backward(b.src, dsrc)
        return StepOut(nll, n, self.named_grads())

    def loss(self, batch) -> tuple[float, int]:
        """Forward only, teacher-forced: (summed nll over the real target steps, their count)."""
        _, _, logits, t, _, _ = self._forward(Batch(*batch))
        nll, n, _ = softmax_cross_entropy(logits, t, inplace=True)
        return nll, n

    def evaluate(self, batch, carry=None) -> StepOut:
        """Loss (teacher-forced for the feedback form) and the accuracy of what the model really
        outputs (the feedback form decodes greedily): extra = {char_correct, char_total,
        seq_correct, seq_total}, per target step and per whole target."""
        b = Batch(*batch)
        _, _, logits, t, mask, (enc_state, _) = self._forward(b)
        T, B = b.tgt.shape
        if self.config.form == "repeat":
            pred = logits.argmax(axis=1)
            if mask is None:
                pred = pred.reshape(T, B)
            else:
                full = np.zeros((T, B), np.int64)
                full[mask] = pred
                pred = full
        else:
            pred = self._greedy(enc_state, T)
        nll, n, _ = softmax_cross_entropy(logits, t, inplace=True)
        return StepOut(nll, n, None, extra=match_counts(pred, b.tgt, b.tgt_len))

    # -- inference ------------------------------------------------------------------------------
    def decode(
        self,
        src: np.ndarray,
        src_len: np.ndarray | None = None,
        *,
        beam: int = 1,
        max_len: int | None = None,
    ) -> np.ndarray:
        """Predicted target ids (T, B), T = ``max_len`` (default ``config.out_len``) or fewer
        when every sequence has emitted ``eos_id`` (the rest of a row after its end token is
        ``eos_id``). The repeat form's steps do not depend on each other's outputs: its greedy
        decoding is exact and ``beam`` does not apply."""
        if isinstance(beam, bool) or not isinstance(beam, (int, np.integer)) or beam < 1:
            raise RnnkitError(f"beam width must be an integer >= 1, got {beam!r}")
        if max_len is not None and (
            isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1
        ):
            raise RnnkitError(f"max_len must be an integer >= 1, got {max_len!r}")
        T = self.config.out_len if max_len is None else int(max_len)
        was = self.training
        self.eval()
        try:
            enc_state = self.encode(src, src_len)
            if self.config.form == "repeat":
                C = self.context(enc_state)
                y, _ = self.decoder.forward(np.broadcast_to(C, (T,) + C.shape).copy())
                return self.out.forward(y).argmax(axis=2)
            if beam == 1:
                return self._greedy(enc_state, T)
            return self._beam(enc_state, T, int(beam))[0]
        finally:
            self.train(was)

    def _stepper(self, s0, B: int) -> Stepper:
        emb = self._modules.get("tgt_embed")
        table = (
            emb.weight
            if emb is not None
            else np.eye(self.config.tgt_vocab, dtype=self.decoder.dtype)
        )
        return Stepper(self.decoder, B, embedding=table, state0=s0)

    def _greedy(self, enc_state, T: int) -> np.ndarray:
        """Feedback form: feed back the argmax, T steps (fewer when all rows ended)."""
        c = self.config
        s0 = self.init_state(enc_state)
        B = self._parts(s0)[0].shape[1]
        st = self._stepper(s0, B)
        Wo, bo = np.ascontiguousarray(self.out.weight.T), self.out.bias
        tok = np.full(B, c.go_id, np.int64)
        out = np.empty((T, B), np.int64)
        done = np.zeros(B, bool)
        for t in range(T):
            tok = (st.step(tok) @ Wo + bo).argmax(axis=1)
            if c.eos_id is not None:
                tok[done] = c.eos_id
                done |= tok == c.eos_id
            out[t] = tok
            if c.eos_id is not None and done.all():
                return out[: t + 1]
        return out

    def _beam(self, enc_state, T: int, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Feedback form: beam search of width K. Returns the best hypothesis per source (T', B)
        and its log-probability (B,). Each source keeps its K best partial outputs by summed
        log-probability; a finished one (it emitted ``eos_id``) carries on unchanged with
        probability 1. Width 1 is greedy decoding."""
        c = self.config
        s0 = self.init_state(enc_state)
        parts = self._parts(s0)
        B = parts[0].shape[1]
        st = self._stepper(self._pack(np.repeat(p, K, axis=1) for p in parts), B * K)
        Wo, bo = np.ascontiguousarray(self.out.weight.T), self.out.bias
        V = c.tgt_vocab
        score = np.full((B, K), -np.inf)
        score[:, 0] = 0.0  # one live hypothesis at the start: no duplicates in the first step
        tok = np.full(B * K, c.go_id, np.int64)
        done = np.zeros(B * K, bool)
        toks, backs = [], []
        base = (np.arange(B) * K)[:, None]
        for _t in range(T):
            z = (st.step(tok) @ Wo + bo).astype(np.float64)
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            if c.eos_id is not None and done.any():
                logp[done] = -np.inf
                logp[done, c.eos_id] = 0.0
            cand = (score[:, :, None] + logp.reshape(B, K, V)).reshape(B, K * V)
            best = np.argsort(-cand, axis=1, kind="stable")[:, :K]  # ties: the lowest index
            score = np.take_along_axis(cand, best, axis=1)
            src_beam, tok2 = best // V, best % V
            rows = (base + src_beam).reshape(-1)
            _reorder(st, rows)
            done = done[rows]
            tok = tok2.reshape(-1)
            if c.eos_id is not None:
                done |= tok == c.eos_id
            toks.append(tok2)
            backs.append(src_beam)
            if c.eos_id is not None and done.all():
                break
        n = len(toks)
        out = np.empty((n, B), np.int64)
        k = np.zeros(B, np.int64)  # the best final hypothesis (scores are sorted)
        ar = np.arange(B)
        for t in range(n - 1, -1, -1):
            out[t] = toks[t][ar, k]
            k = backs[t][ar, k]
        return out, score[:, 0]


def _reorder(st: Stepper, rows: np.ndarray) -> None:
    """Reorder the B rows of a Stepper's current state (beam search keeps the survivors)."""
    for S in st.S:
        for s in S:
            s[st.cur] = s[st.cur][rows]


def match_counts(pred: np.ndarray, tgt: np.ndarray, tgt_len: np.ndarray | None) -> dict:
    """Summable accuracy counts of predicted ids against targets, both (T, B) (pred may be
    shorter: an early stop counts as wrong): per target step within each length and per whole
    target (every step right)."""
    T, B = tgt.shape
    p = np.full((T, B), -1, np.int64)
    n = min(T, pred.shape[0])
    p[:n] = pred[:n]
    mask = np.ones((T, B), bool) if tgt_len is None else lengths_to_mask(tgt_len, T)
    right = (p == tgt) | ~mask
    return {
        "char_correct": int((right & mask).sum()),
        "char_total": int(mask.sum()),
        "seq_correct": int(right.all(axis=0).sum()),
        "seq_total": int(B),
    }
