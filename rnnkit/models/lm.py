"""A recurrent language model: next word or next character.

    e(t) = E[x(t)]                               embedding, a row gather     (V, D) table
    h(t) = cell(e(t), h(t-1))                    Elman (10.8-10.9), LSTM or GRU
    o(t) = c + V h(t)                            (10.10), all steps in one product
    yhat(t) = softmax(o(t))                      (10.11)
    L = -(1/N) sum_t log yhat(t)[y(t)]           (10.12-10.14), averaged over the N real tokens

Shapes: inputs and targets (T, B) token ids, lengths (B,) for padded sentence batches. The model's
parameters are one flat dict: ``embed.weight`` (V, D), ``rnn.weight_ih_l0`` ... (PyTorch names
of the recurrent layer), ``out.weight`` (V, H), ``out.bias`` (V,). The arrays are shared with the
recurrent layer, so an optimizer that updates ``model.params`` in place updates the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RnnkitError
from ..functional import as_dtype, check_ids, softmax_cross_entropy
from ..layers.dense import embedding_backward, embedding_forward, linear_backward, linear_forward
from ..layers.recurrent import recurrent_backward, recurrent_forward
from ..layers.registry import CELLS, make_recurrent
from ..layers.stepper import Stepper


@dataclass
class LMConfig:
    """Everything needed to rebuild the model (stored in checkpoints)."""

    vocab_size: int
    embed_size: int = 64
    hidden_size: int = 128
    cell: str = "rnn"  # rnn | lstm | gru
    nonlinearity: str = "tanh"  # Elman only
    forget_bias: float = 1.0  # LSTM only
    dtype: str = "float32"
    seed: int = 0

    def validate(self) -> "LMConfig":
        if self.vocab_size < 2:
            raise RnnkitError(f"vocabulary of {self.vocab_size} token(s): a language model needs at least 2")
        for name in ("embed_size", "hidden_size"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.cell not in CELLS:
            raise RnnkitError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        as_dtype(self.dtype)
        return self


class LanguageModel:
    """Embedding -> recurrent layer -> affine output -> softmax cross-entropy."""

    def __init__(self, config: LMConfig):
        self.config = c = config.validate()
        dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        self.rnn = make_recurrent(c.cell, c.embed_size, c.hidden_size, seed=int(rng.integers(2**31)),
                                  dtype=c.dtype, nonlinearity=c.nonlinearity, forget_bias=c.forget_bias)
        k = 1.0 / np.sqrt(c.hidden_size)
        self.params: dict[str, np.ndarray] = {
            "embed.weight": rng.normal(0.0, 0.1, (c.vocab_size, c.embed_size)).astype(dt)}
        self.params.update({f"rnn.{n}": p for n, p in self.rnn.params.items()})
        self.params["out.weight"] = rng.uniform(-k, k, (c.vocab_size, c.hidden_size)).astype(dt)
        self.params["out.bias"] = np.zeros(c.vocab_size, dt)

    def zero_state(self, batch: int) -> tuple:
        return tuple(np.zeros((batch, self.config.hidden_size), self.rnn.dtype)
                     for _ in range(self.rnn.cell.n_states))

    # -- training ---------------------------------------------------------------------------
    def loss_and_grads(self, inputs: np.ndarray, targets: np.ndarray, lengths=None,
                       state0: tuple | None = None, bptt_truncate: int | None = None,
                       ) -> tuple[float, int, dict[str, np.ndarray], tuple]:
        """Forward and BPTT on one batch.

        inputs, targets: (T, B) ids; lengths (B,) or None; state0: tuple of (B, H) (None: zeros).
        Returns (nll_sum, n_tokens, grads of the MEAN nll keyed like ``params``, final state).
        """
        p = self.params
        y, state_n, cache, rows, logits, tgt = self._forward(inputs, targets, lengths, state0)
        nll, n, dlogits = softmax_cross_entropy(logits, tgt, inplace=True)
        dlogits *= 1.0 / max(n, 1)
        drows, dWo, dbo = linear_backward(rows, p["out.weight"], dlogits)
        if cache.mask is None:
            dy = drows.reshape(y.shape)
        else:  # padded steps have no output: their gradient is zero
            dy = np.zeros_like(y)
            dy[cache.mask] = drows
        de, _, g = recurrent_backward(self.rnn.cell, self.rnn.params, cache, dy, None, bptt_truncate)
        grads = {"embed.weight": embedding_backward(p["embed.weight"].shape, inputs, de)}
        grads.update({f"rnn.{k}": v for k, v in g.items()})
        grads["out.weight"], grads["out.bias"] = dWo, dbo
        return nll, n, grads, state_n

    def nll(self, inputs: np.ndarray, targets: np.ndarray, lengths=None,
            state0: tuple | None = None) -> tuple[float, int, tuple]:
        """Forward only: (nll_sum, n_tokens, final state)."""
        _, state_n, _, _, logits, tgt = self._forward(inputs, targets, lengths, state0)
        nll, n, _ = softmax_cross_entropy(logits, tgt, inplace=True)
        return nll, n, state_n

    def _forward(self, inputs, targets, lengths, state0):
        V = self.config.vocab_size
        inputs = check_ids(inputs, V, "inputs")
        targets = check_ids(targets, V, "targets")
        if targets.shape != inputs.shape:
            raise RnnkitError(f"targets {targets.shape} and inputs {inputs.shape} differ in shape")
        e = embedding_forward(self.params["embed.weight"], inputs)  # (T, B, D): a row gather
        y, state_n, cache = recurrent_forward(self.rnn.cell, self.rnn.params, e, state0, lengths,
                                              input_size=self.config.embed_size,
                                              hidden_size=self.config.hidden_size, dtype=self.rnn.dtype)
        # the output layer only at real (unpadded) steps: (N, H) rows, one GEMM for all of them
        if cache.mask is None:
            rows, tgt = y.reshape(-1, y.shape[2]), targets.reshape(-1)
        else:
            rows, tgt = y[cache.mask], targets[cache.mask]
        logits = linear_forward(rows, self.params["out.weight"], self.params["out.bias"])
        return y, state_n, cache, rows, logits, tgt

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, start: np.ndarray, n_steps: int, rng: np.random.Generator, *,
               temperature: float = 1.0, top_k: int | None = None, banned: tuple = (),
               stop_id: int | None = None, prompt: np.ndarray | None = None) -> np.ndarray:
        """Sample B sequences in parallel, one token per step, keeping the state between steps.

        start: (B,) first input ids (e.g. sentence-start); prompt: optional (P, B) ids fed (after
        ``start``) before sampling begins. Each step draws from softmax(o(t) / temperature),
        restricted to the top_k most likely tokens; ``banned`` ids (e.g. the unknown token) get
        probability 0, which is the same as resampling whenever one is drawn. Sequences that
        produced ``stop_id`` keep emitting it. Returns (n_steps, B) ids.
        """
        if temperature <= 0:
            raise RnnkitError(f"temperature must be > 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise RnnkitError(f"top_k must be >= 1, got {top_k}")
        p = self.params
        start = np.asarray(start)
        B = start.shape[0]
        st = Stepper(self.rnn, B, embedding=p["embed.weight"])
        Wo = np.ascontiguousarray(p["out.weight"].T)
        h = st.step(start)
        if prompt is not None:
            for tok in prompt:
                h = st.step(tok)
        out = np.empty((n_steps, B), np.int64)
        done = np.zeros(B, bool)
        banned = list(banned)
        for t in range(n_steps):
            z = (h @ Wo + p["out.bias"]).astype(np.float64) / temperature
            if banned:
                z[:, banned] = -np.inf
            if top_k is not None and top_k < z.shape[1]:
                kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
                z[z < kth] = -np.inf
            z -= z.max(axis=1, keepdims=True)
            pr = np.exp(z)
            pr /= pr.sum(axis=1, keepdims=True)
            # inverse-CDF sampling of all B rows at once
            cdf = pr.cumsum(axis=1)
            tok = (cdf < rng.random((B, 1)) * cdf[:, -1:]).sum(axis=1)
            if stop_id is not None:
                tok[done] = stop_id
                done |= tok == stop_id
            out[t] = tok
            if stop_id is not None and done.all():
                return out[: t + 1]
            h = st.step(tok)
        return out

