"""A recurrent language model: next word or next character.

    e(t) = E[x(t)]                               embedding, a row gather     (V, D) table
    h(t) = cell(e(t), h(t-1))                    Elman (10.8-10.9), LSTM or GRU
    o(t) = c + V h(t)                            (10.10), all steps in one product
    yhat(t) = softmax(o(t))                      (10.11)
    L = -sum_t log yhat(t)[y(t)]                 (10.12-10.14), summed over the real tokens

Shapes: inputs and targets (T, B) token ids, lengths (B,) for padded sentence batches. The model
is a tree of modules: ``embed.weight`` (V, D), ``rnn.weight_ih_l0`` ... (PyTorch names of the
recurrent layer), ``out.weight`` (V, H), ``out.bias`` (V,); each array has one owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..errors import RnnkitError, check_ints, check_memory
from ..functional import as_dtype, check_ids, lengths_to_mask, softmax_cross_entropy
from ..layers.dense import Embedding, Linear
from ..layers.registry import check_cell, make_recurrent
from ..layers.state import as_public, check_parts
from ..layers.stepper import Stepper
from ..module import Module
from .protocol import StepOut


@dataclass
class LMConfig:
    """Everything needed to rebuild the model (stored in checkpoints)."""

    vocab_size: int = field(default=0, metadata={"cli": False})  # set from the data
    embed_size: int = field(default=64, metadata={"help": "embedding size"})
    hidden_size: int = field(default=128, metadata={"help": "hidden units per layer"})
    cell: str = field(default="rnn", metadata={"help": "recurrent cell (any registered one)"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers"})
    dropout: float = field(
        default=0.0, metadata={"help": "dropout between stacked layers (training only)"}
    )
    nonlinearity: str = field(
        default="tanh", metadata={"help": "Elman cell: tanh | relu", "choices": ["tanh", "relu"]}
    )
    # chosen by experiment (benchmarks/lm_quality.py, docs/performance.md): PyTorch's own init,
    # N(0, 1) embeddings and no forget-gate offset, learns fastest at the step counts people run
    forget_bias: float = field(default=0.0, metadata={"help": "LSTM forget-gate bias at init"})
    embed_init_std: float = field(
        default=1.0, metadata={"help": "std of the N(0, s^2) embedding init"}
    )
    init_range: float | None = field(
        default=None,
        metadata={
            "help": "initialise every weight U(-r, r) (Zaremba et al.: 0.1); default: PyTorch's"
        },
    )
    fused_input: bool = field(
        default=True,
        metadata={
            "help": "project through the table E W_ih^T when the vocabulary is smaller "
            "than a batch's positions (same result, fewer operations)"
        },
    )
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> LMConfig:
        if self.vocab_size < 2:
            raise RnnkitError(
                f"vocabulary of {self.vocab_size} token(s): a language model needs at least 2"
            )
        check_ints(self, ("embed_size", "hidden_size", "num_layers"))
        check_cell(self.cell)
        if not (isinstance(self.embed_init_std, (int, float)) and self.embed_init_std > 0):
            raise RnnkitError(f"--embed-init-std must be > 0, got {self.embed_init_std!r}")
        as_dtype(self.dtype)
        check_fits_in_memory(self.param_count(), as_dtype(self.dtype).itemsize)
        return self

    def param_count(self) -> int:
        """Parameters of this configuration (an upper bound for unknown cells: 4 gates)."""
        V, D, H, L = self.vocab_size, self.embed_size, self.hidden_size, self.num_layers
        G = {"rnn": 1, "gru": 3}.get(self.cell, 4)
        rec = sum(G * H * ((D if k == 0 else H) + H + 2) for k in range(L))
        return V * D + rec + V * H + V


def check_fits_in_memory(n_params: int, itemsize: int, factor: int = 6) -> None:
    """A one-line error, before allocating, for sizes that cannot fit (parameters, gradients and
    optimizer state take about ``factor`` times the parameters)."""
    check_memory(
        n_params * itemsize * factor,
        f"the model has {n_params:,} parameters: with gradients and optimizer state",
        "choose smaller sizes",
    )


class LanguageModel(Module):
    """Embedding -> recurrent layer(s) -> affine output -> softmax cross-entropy.

    Children: ``embed`` (``weight`` (V, D)), ``rnn`` (PyTorch names, e.g. ``weight_hh_l0``),
    ``out`` (``weight`` (V, H), ``bias`` (V,)); ``named_parameters()`` gives ``embed.weight``,
    ``rnn.weight_ih_l0``, ..., ``out.bias``.
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = c = config.validate()
        dt = as_dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        rnn_seed = int(rng.integers(2**31))
        self.embed = Embedding(c.vocab_size, c.embed_size, rng, dt, init_std=c.embed_init_std)
        self.rnn = make_recurrent(
            c.cell,
            c.embed_size,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout,
            seed=rnn_seed,
            dtype=c.dtype,
            nonlinearity=c.nonlinearity,
            forget_bias=c.forget_bias,
        )
        self.out = Linear(self.rnn.output_size, c.vocab_size, rng, dt)
        if c.init_range is not None:  # Zaremba et al.: every weight U(-r, r)
            r = float(c.init_range)
            init = np.random.default_rng([c.seed, 2])
            for _, p in self.named_parameters():
                p[...] = init.uniform(-r, r, p.shape)
            if c.cell == "lstm" and c.forget_bias:
                H = c.hidden_size
                for n, p in self.rnn.params.items():
                    if n.startswith("bias_ih_"):
                        p[H : 2 * H] += c.forget_bias

    @property
    def params(self):
        """Read-only view {dotted name: array} of the trainable parameters."""
        return MappingProxyType(self.parameters())

    def zero_state(self, batch: int):
        L = self.rnn.num_layers
        s = tuple(
            np.zeros((L, batch, self.config.hidden_size), self.rnn.dtype)
            for _ in range(self.rnn.cell.n_states)
        )
        return as_public(s)

    # -- the model protocol of the training loop ------------------------------------------------
    def loss_and_grads(self, batch, carry=None, bptt_truncate: int | None = None) -> StepOut:
        """batch = (inputs (T, B), targets (T, B), lengths (B,) or None). Returns the summed
        nll, the token count, gradients of the SUM by dotted name, and the final state."""
        inputs, targets, lengths = batch
        y, state_n, rows, logits, tgt = self._forward(inputs, targets, lengths, carry)
        nll, n, dlogits = softmax_cross_entropy(logits, tgt, inplace=True)
        drows = self.out.backward(rows, dlogits)
        mask = None if lengths is None else lengths_to_mask(lengths, y.shape[0])
        if mask is None or mask.all():
            dy = drows.reshape(y.shape)
        else:  # padded steps have no output: their gradient is zero
            dy = np.zeros_like(y)
            dy[mask] = drows
        de, _ = self.rnn.backward(dy, None, bptt_truncate=bptt_truncate)  # None: the layer's own
        if self._fused:  # the layer gave dL/dE itself
            self.embed.grads["weight"] = de
        else:
            self.embed.backward(inputs, de)
        return StepOut(nll, n, self.named_grads(), carry=state_n)

    def evaluate(self, batch, carry=None) -> StepOut:
        inputs, targets, lengths = batch
        _, state_n, _, logits, tgt = self._forward(inputs, targets, lengths, carry)
        nll, n, _ = softmax_cross_entropy(logits, tgt, inplace=True)
        return StepOut(nll, n, None, carry=state_n)

    def nll(self, inputs: np.ndarray, targets: np.ndarray, lengths=None, state0=None):
        """Forward only: (nll_sum, n_tokens, final state)."""
        r = self.evaluate((inputs, targets, lengths), state0)
        return r.loss_sum, r.count, r.carry

    def _state(self, state0):
        """Accept a state as the layer gives it ((L, B, H), a tuple (h, c) for the LSTM) or as
        one (B, H) array per state kind (a one-layer model)."""
        if state0 is None:
            return None
        parts = check_parts(state0, self.rnn.cell.n_states, what="state0")
        return as_public(tuple(p[None] if np.ndim(p) == 2 else p for p in parts))

    def _forward(self, inputs, targets, lengths, state0):
        state0 = self._state(state0)
        V = self.config.vocab_size
        inputs = check_ids(inputs, V, "inputs")
        targets = check_ids(targets, V, "targets")
        if targets.shape != inputs.shape:
            raise RnnkitError(f"targets {targets.shape} and inputs {inputs.shape} differ in shape")
        # the input projection of all steps: with fewer token types than positions (characters),
        # a gather from the table E W_ih^T (V, G*H); else the embedded rows E[x] times W_ih^T
        self._fused = self.config.fused_input and V < inputs.size
        if self._fused:
            y, state_n = self.rnn.forward(
                inputs, state0, lengths=lengths, embedding=self.embed.weight
            )
        else:
            e = self.embed.forward(inputs)  # (T, B, D): a row gather
            y, state_n = self.rnn.forward(e, state0, lengths=lengths)
        # the output layer only at real (unpadded) steps: (N, H) rows, one GEMM for all of them
        mask = None if lengths is None else lengths_to_mask(lengths, y.shape[0])
        if mask is None or mask.all():
            rows, tgt = y.reshape(-1, y.shape[2]), targets.reshape(-1)
        else:
            rows, tgt = y[mask], targets[mask]
        logits = self.out.forward(rows)
        return y, state_n, rows, logits, tgt

    # -- sampling ---------------------------------------------------------------------------
    def sample(
        self,
        start: np.ndarray,
        n_steps: int,
        rng: np.random.Generator,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        banned: tuple = (),
        stop_id: int | None = None,
        prompt: np.ndarray | None = None,
    ) -> np.ndarray:
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
        start = np.asarray(start)
        B = start.shape[0]
        st = Stepper(self.rnn, B, embedding=self.embed.weight)
        Wo = np.ascontiguousarray(self.out.weight.T)
        bo = self.out.bias
        h = st.step(start)
        if prompt is not None:
            for tok in prompt:
                h = st.step(tok)
        out = np.empty((n_steps, B), np.int64)
        done = np.zeros(B, bool)
        banned_ids = list(banned)
        for t in range(n_steps):
            z = (h @ Wo + bo).astype(np.float64) / temperature
            if banned_ids:
                z[:, banned_ids] = -np.inf
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
