"""Recurrence from the output to the hidden layer only (Deep Learning book 10.2.1, figures 10.4
and 10.6), trained with teacher forcing.

    a(t) = b + U x(t) + W z(t-1)                 z(t-1) one-hot of the previous output token
    h(t) = tanh(a(t))
    o(t) = c + V h(t)                            (10.10)
    yhat(t) = softmax(o(t))                      (10.11)
    L = -sum_t log yhat(t)[y(t)]                 (10.12-10.14), summed over the real steps

There is no W h(t-1): the only thing that crosses time is the previous output token z(t-1)
(a start symbol at t = 0, the extra last column of W). Teacher forcing (figure 10.6) feeds the
previous TARGET, z(t-1) = y(t-1), so no step depends on another: training computes every step of
every sequence at once -- one gather for U x(t) (token inputs; one product for features), one
gather for W z(t-1), one product for V h(t) over all N real rows, and the backward pass the same
products transposed. No Python loop over time in training.

At test time the model runs free on its own outputs, z(t-1) = argmax (or a sample of) yhat(t-1):
each step needs the one before, so that loop over time is unavoidable (:meth:`OutputRNN.run`).

Scheduled sampling (Bengio et al. 2015), a training option: at each step, with probability p, the
model's own prediction replaces y(t-1); p rises linearly from 0 to ``final_p`` over
``ramp_steps`` training steps (:class:`ScheduledSampling`). Which token is fed is decided by one
free-running pass without gradients (the same loop as test time, the prediction at t-1 depending
on what was fed at t-2); given those tokens the loss and its gradient are again computed for all
steps at once. As in the paper, no gradient flows through the choice of the fed token. The number
of training steps taken is kept in a frozen parameter ``ss_step`` (saved with the model, so a
resumed run continues the schedule exactly).

Shapes: token inputs (T, B) ids in [0, I), or features (T, B, I); targets (T, B) ids in [0, K);
lengths (B,) for ragged batches. Parameters: ``U`` (H, I), ``W`` (H, K+1), ``b`` (H,),
``V`` (K, H), ``c`` (K,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RnnkitError
from ..functional import (
    as_dtype,
    check_ids,
    lengths_to_mask,
    scatter_add_rows,
    softmax_cross_entropy,
)
from ..module import Module
from .protocol import StepOut


@dataclass
class ScheduledSampling:
    """p(step) = final_p * min(1, step / ramp_steps): the chance that a step is fed the model's
    own previous prediction instead of the previous target. ``greedy``: feed the argmax (else a
    sample from yhat(t-1), as in Bengio et al. 2015)."""

    final_p: float = 0.0
    ramp_steps: int = 1000
    greedy: bool = False

    def __post_init__(self):
        if not isinstance(self.final_p, (int, float)) or not 0 <= self.final_p <= 1:
            raise RnnkitError(
                f"scheduled-sampling probability must lie in [0, 1], got {self.final_p!r}"
            )
        if (
            isinstance(self.ramp_steps, bool)
            or not isinstance(self.ramp_steps, int)
            or self.ramp_steps < 1
        ):
            raise RnnkitError(
                f"scheduled-sampling ramp must be an integer >= 1, got {self.ramp_steps!r}"
            )

    def p(self, step: int) -> float:
        return float(self.final_p) * min(1.0, step / self.ramp_steps)


def shift_right(targets: np.ndarray, start_id: int) -> np.ndarray:
    """Teacher forcing's fed tokens: z(0) = start, z(t) = y(t-1). (T, B) -> (T, B)."""
    z = np.empty_like(targets)
    z[0] = start_id
    z[1:] = targets[:-1]
    return z


class OutputRNN(Module):
    """h(t) = tanh(b + U x(t) + W z(t-1)), o(t) = c + V h(t); z is the previous output token.

    OutputRNN(n_in, hidden_size, n_out, input_ids=True)    # x(t): ids in [0, n_in)
    OutputRNN(n_in, hidden_size, n_out, input_ids=False)   # x(t): (T, B, n_in) features
    """

    def __init__(
        self,
        n_in: int,
        hidden_size: int,
        n_out: int,
        *,
        input_ids: bool = True,
        seed: int = 0,
        dtype: str = "float32",
        sampling: ScheduledSampling | None = None,
    ):
        super().__init__()
        for name, v, lo in (
            ("n_in", n_in, 1),
            ("hidden_size", hidden_size, 1),
            ("n_out", n_out, 2),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise RnnkitError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.n_in, self.H, self.K = int(n_in), int(hidden_size), int(n_out)
        self.input_ids = bool(input_ids)
        self.dtype = dt = as_dtype(dtype)
        self.start_id = self.K  # the extra column of W: "no previous output" at t = 0
        self.sampling = sampling if sampling is not None and sampling.final_p > 0 else None
        self.seed = int(seed)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(self.H)  # PyTorch's RNN and Linear(H, K) ranges
        self.add_param("U", rng.uniform(-k, k, (self.H, self.n_in)).astype(dt))
        self.add_param("W", rng.uniform(-k, k, (self.H, self.K + 1)).astype(dt))
        self.add_param("b", np.zeros(self.H, dt))
        self.add_param("V", rng.uniform(-k, k, (self.K, self.H)).astype(dt))
        self.add_param("c", np.zeros(self.K, dt))
        if self.sampling is not None:  # training steps taken: the schedule's clock (not trained)
            self.add_param("ss_step", np.zeros(1, np.float64))
            self.freeze("ss_step")
        self._cache: tuple | None = None

    # -- checks ---------------------------------------------------------------------------------
    def _check_inputs(self, inputs: np.ndarray) -> np.ndarray:
        if self.input_ids:
            return check_ids(inputs, self.n_in, "inputs")
        x = np.asarray(inputs)
        if x.ndim != 3 or x.shape[2] != self.n_in or x.shape[0] == 0 or x.shape[1] == 0:
            raise RnnkitError(f"inputs must have shape (T, B, {self.n_in}), got {x.shape}")
        return x.astype(self.dtype, copy=False)

    def _mask(self, lengths, T: int, B: int) -> np.ndarray | None:
        if lengths is None:
            return None
        lengths = np.asarray(lengths)
        if (
            lengths.shape != (B,)
            or not np.issubdtype(lengths.dtype, np.integer)
            or lengths.min() < 1
            or lengths.max() > T
        ):
            raise RnnkitError(f"lengths must be (B,) = ({B},) integers in [1, {T}], got {lengths}")
        return None if lengths.min() == T else lengths_to_mask(lengths, T)

    def _input_proj(self, x: np.ndarray) -> np.ndarray:
        """U x(t) for the given rows: ids (...,) -> (..., H) gather; features (..., I) ->
        product."""
        if self.input_ids:
            return np.ascontiguousarray(self.U.T)[x]
        return x @ self.U.T

    # -- teacher-forced forward and backward: all steps at once ---------------------------------
    def forward(self, inputs: np.ndarray, fed: np.ndarray, lengths=None) -> np.ndarray:
        """Logits o(t) (N, K) of the N real steps, in time-major order (t, then b).

        inputs: (T, B) ids or (T, B, I); fed: (T, B) the token z(t-1) given at step t, in
        [0, K] (K: start). Caches what :meth:`backward` needs."""
        x = self._check_inputs(inputs)
        T, B = x.shape[:2]
        fed = check_ids(fed, self.K + 1, "fed tokens")
        if fed.shape != (T, B):
            raise RnnkitError(f"fed tokens {fed.shape} and inputs {(T, B)} differ in shape")
        mask = self._mask(lengths, T, B)
        if mask is None:
            xr, zr = x.reshape(-1, *x.shape[2:]), fed.reshape(-1)
        else:
            xr, zr = x[mask], fed[mask]
        a = self._input_proj(xr)  # U x(t), N rows at once
        a += np.ascontiguousarray(self.W.T)[zr]  # + W z(t-1): a column gather
        a += self.b
        h = np.tanh(a, out=a)
        logits = h @ self.V.T  # (10.10), one product
        logits += self.c
        self._cache = (xr, zr, h, mask, (T, B))
        return logits

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """dL/do (N, K) -> fills ``grads`` (U, W, b, V, c); returns dL/dx (T, B, I) for feature
        inputs (zero at padded steps), None for ids."""
        if self._cache is None:
            raise RnnkitError("backward called before forward")
        xr, zr, h, mask, (T, B) = self._cache
        self._cache = None
        g = self.grads
        g["V"] = dlogits.T @ h  # (10.24)
        g["c"] = dlogits.sum(axis=0)  # (10.22)
        da = dlogits @ self.V
        d = np.multiply(h, h)
        np.subtract(1.0, d, out=d)
        da *= d  # tanh'(a) = 1 - h^2
        g["b"] = da.sum(axis=0)
        g["W"] = _scatter_cols(self.K + 1, zr, da)  # sum_t da(t) z(t-1)^T
        if self.input_ids:
            g["U"] = _scatter_cols(self.n_in, xr, da)
            return None
        g["U"] = da.T @ xr
        dxr = da @ self.U
        if mask is None:
            return dxr.reshape(T, B, self.n_in)
        dx = np.zeros((T, B, self.n_in), dxr.dtype)
        dx[mask] = dxr
        return dx

    # -- free running (test time, and the choice of fed tokens in scheduled sampling) ----------
    def run(
        self,
        inputs: np.ndarray,
        *,
        greedy: bool = True,
        rng: np.random.Generator | None = None,
        temperature: float = 1.0,
        targets: np.ndarray | None = None,
        p_own: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run step by step on the model's own outputs; returns (pred (T, B), fed (T, B)).

        pred(t) is the argmax of yhat(t) (``greedy``) or a sample from softmax(o(t)/temperature).
        Without ``targets`` the next step is fed pred(t). With ``targets`` (scheduled sampling) it
        is fed pred(t) with probability ``p_own``, else y(t). U x(t) for all steps is one product
        before the loop; each step is then a (B, H) x (H, K) product. No gradients."""
        x = self._check_inputs(inputs)
        T, B = x.shape[:2]
        if not greedy and rng is None:
            raise RnnkitError("sampling needs an rng")
        if temperature <= 0:
            raise RnnkitError(f"temperature must be > 0, got {temperature}")
        ux = self._input_proj(x.reshape(-1, *x.shape[2:])).reshape(T, B, self.H) + self.b
        WT, VT, c = np.ascontiguousarray(self.W.T), np.ascontiguousarray(self.V.T), self.c
        own = None
        if targets is not None:
            targets = check_ids(targets, self.K, "targets")
            coin_rng = rng if rng is not None else np.random.default_rng(0)
            own = coin_rng.random((T, B)) < p_own
        draw = rng if rng is not None else np.random.default_rng(0)  # used only when sampling
        pred = np.empty((T, B), np.int64)
        fed = np.empty((T, B), np.int64)
        z = np.full(B, self.start_id, np.int64)
        for t in range(T):
            fed[t] = z
            h = np.tanh(ux[t] + WT[z])
            o = h @ VT + c
            if greedy:
                p = o.argmax(axis=1)
            else:
                s = (o - o.max(axis=1, keepdims=True)) / temperature
                pr = np.exp(s)
                cdf = pr.cumsum(axis=1)
                p = (cdf < draw.random((B, 1)) * cdf[:, -1:]).sum(axis=1)
                p = np.minimum(p, self.K - 1)
            pred[t] = p
            z = p if own is None or targets is None else np.where(own[t], p, targets[t])
        return pred, fed

    def fed_tokens(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """What training feeds at each step: the shifted targets (teacher forcing) or, with
        scheduled sampling, a mix decided by one free-running pass. Advances the schedule."""
        if self.sampling is None or not self.training:
            return shift_right(targets, self.start_id)
        step = int(self.ss_step[0])
        self.ss_step[0] = step + 1
        p = self.sampling.p(step)
        if p == 0.0:
            return shift_right(targets, self.start_id)
        rng = np.random.default_rng([self.seed, step])  # a function of the step: resumes exactly
        _, fed = self.run(inputs, greedy=self.sampling.greedy, rng=rng, targets=targets, p_own=p)
        return fed

    # -- the model protocol of the training loop ------------------------------------------------
    def loss_and_grads(self, batch, carry=None) -> StepOut:
        """batch = (inputs, targets (T, B), lengths (B,) or None): summed nll over the real
        steps, their count, gradients of the SUM by name."""
        inputs, targets, lengths = batch
        targets = check_ids(targets, self.K, "targets")
        logits = self.forward(inputs, self.fed_tokens(inputs, targets), lengths)
        nll, n, dlogits = softmax_cross_entropy(logits, self._rows(targets, lengths), inplace=True)
        self.backward(dlogits)
        return StepOut(nll, n, self.named_grads())

    def evaluate(self, batch, carry=None) -> StepOut:
        """Teacher-forced nll and accuracy (``tf_correct``), and the honest free-running (greedy)
        per-step ``correct`` and whole-sequence ``exact`` counts over ``total`` steps, ``seqs``."""
        inputs, targets, lengths = batch
        targets = check_ids(targets, self.K, "targets")
        logits = self.forward(inputs, shift_right(targets, self.start_id), lengths)
        self._cache = None
        tgt = self._rows(targets, lengths)
        tf_correct = int((logits.argmax(axis=1) == tgt).sum())
        nll, n, _ = softmax_cross_entropy(logits, tgt, inplace=True)
        pred, _ = self.run(inputs)
        extra = sequence_counts(pred, targets, lengths)
        extra["tf_correct"] = tf_correct
        return StepOut(nll, n, None, extra=extra)

    def _rows(self, a: np.ndarray, lengths) -> np.ndarray:
        mask = self._mask(lengths, *a.shape[:2])
        return a.reshape(-1) if mask is None else a[mask]


def sequence_counts(pred: np.ndarray, targets: np.ndarray, lengths=None) -> dict:
    """Summable counts: per-step ``correct`` of ``total`` real steps, and ``exact`` sequences
    (every real step right) of ``seqs``. pred, targets (T, B); lengths (B,) or None."""
    T, B = targets.shape
    mask = np.ones((T, B), bool) if lengths is None else lengths_to_mask(lengths, T)
    ok = (pred == targets) | ~mask
    return {
        "correct": int(((pred == targets) & mask).sum()),
        "total": int(mask.sum()),
        "exact": int(ok.all(axis=0).sum()),
        "seqs": B,
    }


def _scatter_cols(n: int, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(H, n) with column i = sum of rows[j] where ids[j] == i: the gradient of a column gather.

    ids (N,), rows (N, H). For up to 1024 ids it is ONE product with the one-hot matrix,
    rows^T onehot(ids) (N x n): several times faster than ``np.add.at`` (and than a sort and
    ``np.add.reduceat``) at N in the thousands; above that ``np.add.at``, whose cost does not grow
    with n."""
    if n <= 1024:
        onehot = np.zeros((ids.size, n), rows.dtype)
        onehot[np.arange(ids.size), ids] = 1
        return rows.T @ onehot
    return np.ascontiguousarray(scatter_add_rows(n, ids, rows).T)
