"""The one time loop that every recurrent cell shares, forward and BPTT.

A cell says how one step maps (x-projection, previous state) to the next state and how one step's
gradient flows back (``cell.py``); the runner of a pass (``steps.py``: the generic one on the
cell's ``step`` / ``step_back``, or the cell's fused one) holds the per-pass arrays; everything
else lives here, once:

* the input projection of all steps in one product, xp = X W_ih^T + b  ((T*B, I) x (I, G*H), or a
  row gather of W_ih^T when the inputs are token ids), so that only the recurrence loops in Python;
* ragged batches: a (T, B) mask built from ``lengths``; a padded step copies the state through
  unchanged, gets no gradient and outputs zeros, so each sequence gives what it gives alone;
* BPTT (10.17-10.28): walk the steps in reverse, let the cell turn dL/dh(t) into the gradient of its
  gate pre-activations dG(t), then form each weight gradient as ONE product over the stacked steps::

      dW_ih = sum_t dG_ih(t)^T x(t)        = dG_ih^T X          (10.28 for U)
      dW_hh = sum_t dG_hh(t)^T h(t-1)      = dG_hh^T H[:-1]     (10.27 for W; a gate block
                                                             whose input is gated, f * h(t-1),
                                                             takes those inputs instead)
      db_ih = sum_t dG_ih(t),  db_hh = sum_t dG_hh(t)           (10.22)
      dx(t) = dG_ih(t) W_ih

* truncated BPTT in the form of the classic NumPy tutorial: the gradient of the loss at step t
  reaches the states h(t), h(t-1), ..., h(t-k) and no further (``bptt_truncate=k``).  Run as one
  reverse sweep over k+1 "slots" stacked along a leading axis -- slot j carries the gradient that
  left output t+j, j steps ago -- so it costs one batched cell step per time step, not k.
  k >= T gives exactly full BPTT.  (The other usual form, chunks of k steps with the state carried
  but no gradient across chunk boundaries, is just forward/backward on each chunk: see
  ``rnnkit.train``.)
* memory, like PyTorch's ``retain_graph``: by default a backward consumes the cache -- a fused
  runner may write the step gradients over its cached activations (those of step t are dead once its
  gradient is formed), so BPTT needs no (T, B, G*H) array beyond the cache, and the cache's
  arrays are dropped at the end; a second backward then raises. ``retain_cache=True`` keeps the
  cache intact (fresh gradient arrays) for more backward passes.

Arrays: T steps, B sequences, I input features, H hidden units, G gates (1, 3 or 4). The state is a
tuple (``state.py``): (h,) for Elman and GRU, (h, c) for LSTM; each (B, H). The cache keeps the
stacked states ``S[k]`` of shape (T+1, B, H) with S[k][0] the initial state, so the previous state
of step t is S[k][t] and the stacked previous states of all steps are S[k][:-1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RnnkitError
from ..functional import check_ids, check_sequence, mask_from, scatter_add_rows
from .cell import Cell
from .state import check_parts
from .steps import RecurrentWeights, Steps


@dataclass
class Cache:
    """What the forward pass keeps for BPTT (no hidden per-step caches: all (T, B, .) arrays)."""

    x: np.ndarray  # (T, B, I) floats, or (T, B) token ids
    S: tuple  # per state: (T+1, B, H), S[k][0] = initial state
    mask: np.ndarray | None  # (T, B) bool, None when no sequence is padded
    steps: Steps | None = None  # the cell's runner of this pass, with its own (T, B, .) arrays
    consumed: bool = False  # a backward without retain_cache ran: the arrays are gone

    @property
    def buf(self) -> dict:
        """The runner's arrays by attribute name (for memory accounting); {} once released."""
        if self.steps is None:
            return {}
        return {k: v for k, v in vars(self.steps).items() if isinstance(v, np.ndarray)}

    def release(self) -> None:
        """Drop the arrays (after a consuming backward): the memory is free before the next
        forward pass, not only when the cache object goes."""
        # x becomes None: nothing reads a released cache (``consumed`` says it is gone)
        self.x, self.S, self.steps, self.consumed = None, (), None, True  # type: ignore[assignment]


def make_steps(cell: Cell, w: dict, S: tuple, rw: RecurrentWeights | None = None) -> Steps:
    """The runner of one pass: the cell's fused ``steps_class`` if it has one, else the generic
    one on its ``step`` / ``step_back``."""
    cls = cell.steps_class or Steps
    return cls(cell, w, rw if rw is not None else RecurrentWeights.of(w), S)


def recurrent_forward(
    cell: Cell,
    w: dict,
    x: np.ndarray,
    state0: tuple | None,
    lengths=None,
    mask=None,
    *,
    hidden_size: int,
    dtype,
    rw: RecurrentWeights | None = None,
) -> tuple[np.ndarray, tuple, Cache]:
    """Run a cell over a sequence.

    w: the weights under neutral names -- ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), optionally
    ``b_ih``, ``b_hh`` (G*H,), plus the cell's own parameters (a layer maps its PyTorch names,
    e.g. ``weight_hh_l1_reverse``, onto these). x: (T, B, I) floats of the layer dtype, or
    (T, B) integer ids in [0, I) (a one-hot input whose projection is the row gather
    W_ih^T[ids]); state0: tuple of (B, H) arrays or None (zeros); lengths (B,) or mask (T, B)
    for ragged batches; ``rw``: ``RecurrentWeights.of(w)`` made once by the caller (the
    step-level API), else made here.
    Returns y (T, B, H) (zeros at padded steps), the final states (each (B, H), taken at each
    sequence's last step) and the cache for :func:`recurrent_backward`.
    """
    H, G = hidden_size, cell.gates
    W_ih = w["w_ih"]
    ids = None
    if isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.integer):
        ids = check_ids(x, W_ih.shape[1], "input token ids")
        T, B = ids.shape
    else:
        x = check_sequence(x, W_ih.shape[1], dtype)
        T, B = x.shape[:2]
    m = mask_from(lengths, mask, T, B)
    S = tuple(np.empty((T + 1, B, H), dtype) for _ in range(cell.n_states))
    if state0 is None:
        for s in S:
            s[0] = 0.0
    else:
        for s, s0 in zip(S, check_parts(state0, cell.n_states, (B, H), "initial state")):
            s[0] = s0
    steps = make_steps(cell, w, S, rw)
    # the input projection of all steps (10.8's U x(t) + b), into the array the runner chooses
    xp = steps.projection()
    if ids is not None:  # W_ih^T[ids]: row gather, the one-hot product (ids checked: no wrap)
        np.take(W_ih.T, ids, axis=0, out=xp, mode="wrap")
    else:
        np.matmul(x.reshape(T * B, -1), W_ih.T, out=xp.reshape(T * B, G * H))
    if "b_ih" in w and not steps.adds_bias_ih:
        xp += w["b_ih"]
        if steps.bias_hh_rows is not None:
            xp[..., steps.bias_hh_rows] += w["b_hh"][steps.bias_hh_rows]
    views = list(zip(*S))  # views[t] = (S[0][t], ...): made once, not 2 tuples per step
    if m is None:
        for t, xp_t in enumerate(xp):
            steps.forward(t, xp_t, views[t], views[t + 1])
    else:
        keep = ~m[:, :, None]  # (T, B, 1): padded steps carry the state through
        for t, xp_t in enumerate(xp):
            prev, new = views[t], views[t + 1]
            steps.forward(t, xp_t, prev, new)
            for p, n in zip(prev, new):
                np.copyto(n, p, where=keep[t])
    del xp
    y = S[0][1:] * m[:, :, None] if m is not None else S[0][1:].copy()  # never a view of the cache
    cache = Cache(x=x if ids is None else ids, S=S, mask=m, steps=steps)
    return y, tuple(s[T].copy() for s in S), cache  # copies: S can go with the cache


def recurrent_backward(
    cell: Cell,
    w: dict,
    cache: Cache,
    dy: np.ndarray | None,
    dstate_n: tuple | None = None,
    bptt_truncate: int | None = None,
    *,
    retain_cache: bool = False,
) -> tuple[np.ndarray | None, tuple, dict]:
    """BPTT through a forward pass.

    dy: (T, B, H) dL/dy(t) (None for zeros); dstate_n: tuple of (B, H) gradients of the final
    states (or None). Returns dx (T, B, I) (None for token-id inputs), the gradients of the initial
    states, and the parameter gradients keyed like ``w`` (neutral names).

    Like PyTorch's ``retain_graph``: by default the backward consumes the cache -- it overwrites
    the cached activations with gradients (a step's gate activations are dead once that step's
    gradient is formed, so no second (T, B, G*H) array is needed) and then drops its arrays; a
    second backward on it raises. ``retain_cache=True`` leaves the cache intact for more backward
    passes (at the cost of fresh gradient arrays). dy and dstate_n are never written to.
    """
    dgi_all, groups, dS0, own = bptt(
        cell, cache, dy, dstate_n, bptt_truncate, retain_cache=retain_cache
    )
    dx, grads = weight_grads(w, cache.x, dgi_all, groups)
    grads.update(own)
    if not retain_cache:
        cache.release()
    return dx, dS0, grads


def _final_grads(cell: Cell, dstate_n, B: int, H: int, dtype) -> list:
    """dL/d(final states) as fresh (B, H) arrays of the pass (zeros where None)."""
    if dstate_n is None:
        return [np.zeros((B, H), dtype) for _ in range(cell.n_states)]
    parts = check_parts(dstate_n, cell.n_states, (B, H), "final-state gradient", allow_none=True)
    return [np.zeros((B, H), dtype) if d is None else np.array(d, dtype=dtype) for d in parts]


def bptt(
    cell: Cell,
    cache: Cache,
    dy: np.ndarray | None,
    dstate_n: tuple | None = None,
    bptt_truncate: int | None = None,
    *,
    retain_cache: bool = False,
) -> tuple:
    """The reverse sweep alone: (dgi_all (T, B, G*H), groups, dS0, own grads).

    dgi_all holds dL/d(input pre-activations) of every step; ``groups`` the recurrent side,
    [(rows, V, dZ)] as the runner gives them (``Steps.groups``)."""
    if cache.consumed or cache.steps is None:
        raise RnnkitError(
            "backward called twice after one forward: call forward again, or pass "
            "retain_cache=True to the first backward"
        )
    S, steps = cache.S, cache.steps
    T, B, H = S[0].shape[0] - 1, S[0].shape[1], S[0].shape[2]
    dtype = S[0].dtype
    if dy is not None:
        if dy.shape != (T, B, H):
            raise RnnkitError(f"dy must have the output's shape {(T, B, H)}, got {dy.shape}")
        dy = dy.astype(dtype, copy=False)  # padded steps: masked per step, never a masked copy
    dS_n = _final_grads(cell, dstate_n, B, H, dtype)
    k = bptt_truncate
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0):
        raise RnnkitError(f"bptt_truncate must be an integer >= 0, got {k!r}")
    full = k is None or k >= T
    window = T if k is None else int(k)  # steps a gradient goes back beyond its own
    if not retain_cache:
        cache.consumed = True  # from here on the runner may overwrite the cache
    dgi_all, dgh_all = steps.begin_backward(() if full else (window + 1,), retain_cache)
    if full:
        dS0 = _sweep_full(steps, cache.mask, dy, dS_n, dgi_all, dgh_all)
    else:
        dS0 = _sweep_truncated(steps, cache.mask, dy, dS_n, dgi_all, dgh_all, window)
    return dgi_all, steps.groups(), dS0, steps.own_grads()


def weight_grads(
    w: dict,
    x: np.ndarray,
    dgi_all: np.ndarray,
    groups: list,
    want_dx: bool = True,
) -> tuple[np.ndarray | None, dict]:
    """Every weight gradient as ONE product over the stacked steps (10.22, 10.26-10.28):

        dW_ih = dG_ih^T X,   dW_hh = dG_hh^T V,   db_ih = sum dG_ih,   db_hh = sum dG_hh,
        dx = dG_ih W_ih

    x: (T, B, I) or (T, B) ids; groups: [(rows, V, dZ)], V (T, B, H) the inputs that W_hh's
    ``rows`` multiplied (h(t-1), or a gated input) and dZ their gradients (None: equal to the
    input side's). Once the input side is done, dgi_all takes every dZ, and each run of rows with
    one V is one product. Returns (dx or None, grads keyed w_ih, w_hh, b_ih, b_hh)."""
    T, B, GH = dgi_all.shape
    grads = {}
    dgi2 = dgi_all.reshape(T * B, GH)
    dx = None
    if x.ndim == 2:  # token ids: W_ih^T[ids] was a gather, its gradient a scatter-add
        grads["w_ih"] = scatter_add_rows(w["w_ih"].shape[1], x, dgi2).T.copy()
    else:
        I = x.shape[2]
        grads["w_ih"] = dgi2.T @ x.reshape(T * B, I)
        if want_dx:
            dx = (dgi2 @ w["w_ih"]).reshape(T, B, I)
    if "b_ih" in w:
        grads["b_ih"] = dgi2.sum(axis=0)
    own_rows = False
    for rows, _, dZ in groups:  # the input side is done: its array now takes the recurrent rows
        if dZ is not None:
            dgi_all[..., rows] = dZ
            own_rows = True
    if "w_hh" in w:
        runs = _runs(groups, GH)
        if len(runs) == 1 and runs[0][0] == slice(0, GH):  # one product: h(t-1) of every step
            grads["w_hh"] = dgi2.T @ runs[0][1].reshape(T * B, -1)
        else:
            gW = np.zeros_like(w["w_hh"])
            for rows, V in runs:
                gW[rows] = dgi2[:, rows].T @ V.reshape(T * B, -1)  # with the inputs of each step
            grads["w_hh"] = gW
    if "b_hh" in w:
        if not groups:
            grads["b_hh"] = np.zeros_like(w["b_hh"])
        else:
            grads["b_hh"] = dgi2.sum(axis=0) if own_rows else grads["b_ih"].copy()
    return dx, grads


def _runs(groups: list, GH: int) -> list:
    """[(rows, V)] with consecutive groups of the same V merged: one product per run."""
    out: list = []
    for rows, V, _ in groups:
        a, b, _ = rows.indices(GH)
        if out and out[-1][1] is V and out[-1][0].stop == a:
            out[-1] = (slice(out[-1][0].start, b), V)
        else:
            out.append((slice(a, b), V))
    return out


def _sweep_full(steps: Steps, m, dy, dS_n, dgi_all, dgh_all) -> tuple:
    """Full BPTT: one reverse pass; dS holds dL/dstate(t) as it walks back."""
    dS = list(dS_n)  # arrays of this pass (copies, or the runner's own outputs): updated in place
    for t in range(dgi_all.shape[0] - 1, -1, -1):
        if m is None:
            if dy is not None:
                dS[0] += dy[t]  # (10.20/10.21): from the output at t and from step t+1
            dS = list(steps.backward(t, tuple(dS), dgi_all[t], dgh_all[t]))
        else:
            on = m[t][:, None]
            if dy is not None:  # padded outputs are constant zeros: no gradient
                np.add(dS[0], dy[t], out=dS[0], where=on)
            passed = [np.where(on, 0.0, d) for d in dS]  # padded: state copied through
            inner = tuple(np.where(on, d, 0.0) for d in dS)
            back = steps.backward(t, inner, dgi_all[t], dgh_all[t])
            dS = [b + p for b, p in zip(back, passed)]
    return tuple(dS)


def _sweep_truncated(steps: Steps, m, dy, dS_n, dgi_all, dgh_all, k: int) -> tuple:
    """Truncated BPTT: the gradient from output t reaches h(t), ..., h(t-k) only.

    slots[j] carries the gradient that left output t+j; all slots go through the cell step of t
    together (a batch of (k+1) * B), slot k is then dropped and output t-1 enters as slot 0.
    The step gradients of all slots are summed into dgi_all[t] after step t's backward.
    """
    T, B, GH = dgi_all.shape
    H, dtype = dS_n[0].shape[1], dgi_all.dtype
    n = k + 1
    slots = [np.zeros((n, B, H), dtype) for _ in dS_n]
    # the final-state gradient enters with each sequence's last real output
    last = np.full(B, T - 1) if m is None else m.sum(axis=0) - 1
    dgi = np.empty((n, B, GH), dtype)
    dgh = np.empty((n, B, dgh_all.shape[2]), dtype) if dgh_all is not dgi_all else dgi
    for t in range(T - 1, -1, -1):
        if dy is not None:
            if m is None:
                slots[0][0] += dy[t]
            else:  # padded outputs are constant zeros: no gradient
                np.add(slots[0][0], dy[t], out=slots[0][0], where=m[t][:, None])
        ends = last == t
        if ends.any():
            for s, d in zip(slots, dS_n):
                s[0][ends] += d[ends]
        if m is None:
            back = list(steps.backward(t, tuple(slots), dgi, dgh))
        else:
            on = m[t][:, None]
            passed = [np.where(on, 0.0, d) for d in slots]
            inner = steps.backward(t, tuple(np.where(on, d, 0.0) for d in slots), dgi, dgh)
            back = [b + p for b, p in zip(inner, passed)]
        dgi.sum(axis=0, out=dgi_all[t])
        if dgh is not dgi:
            dgh.sum(axis=0, out=dgh_all[t])
        if t == 0:  # gradient reaching the initial state: from the slots that may go one further
            return tuple(b[: n - 1].sum(axis=0) for b in back)
        for s, b in zip(slots, back):
            s[1:] = b[: n - 1]
            s[0] = 0.0
    raise AssertionError("unreachable")
