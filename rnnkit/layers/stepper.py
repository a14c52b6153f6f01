"""A recurrent layer one step at a time: forward only (sampling), or forward AND backward.

Everything that does not change between steps is prepared once, when the stepper is made: each
cell's runner (``Steps``: W_hh's transpose, scratch buffers) and, for token inputs, the table of
input projections of every token P = E W_ih^T + b (V, G*H). Make a new stepper after the weights
change (e.g. after an optimizer step).

* :class:`Stepper` -- sampling and greedy decoding: ``h = st.step(ids)``, the state kept inside.
* :class:`StepFunction` -- step-level forward AND backward, for models whose next input depends on
  the previous output (a decoder feeding back its predictions, scheduled sampling) or whose steps
  form no chain (a tree node): ``y, state, tape = f.forward(x_t, state)`` then, in any order that
  respects the dependencies, ``dx_t, dstate = f.backward(tape, dy_t, dstate)``; ``f.grads()`` forms
  each weight gradient as ONE product over all the steps taken back (not one per step).

Both run every layer of a unidirectional stack (``num_layers``); states are PyTorch-shaped
(num_layers, B, H), a tuple (h, c) for the LSTM.
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from .base import RecurrentLayer
from .recurrent import Cache, bptt, make_steps, recurrent_forward, weight_grads
from .state import as_public, check_parts
from .steps import RecurrentWeights, Steps


def _input_bias(steps: Steps, w: dict, dtype) -> np.ndarray:
    """b_ih plus the rows of b_hh that the runner folds into the input projection."""
    bias = np.zeros(w["w_ih"].shape[0], dtype)
    if "b_ih" in w and not steps.adds_bias_ih:
        bias += w["b_ih"]
        if steps.bias_hh_rows is not None:
            bias[steps.bias_hh_rows] += w["b_hh"][steps.bias_hh_rows]
    return bias


def _states(layer: RecurrentLayer, state, B: int, what: str) -> list:
    """state -> per layer a tuple of (B, H) arrays; accepts (L, B, H) arrays or, for a one-layer
    stack, (B, H) arrays; None gives zeros."""
    n, L, H = layer.cell.n_states, layer.num_layers, layer.hidden_size
    if state is None:
        return [tuple(np.zeros((B, H), layer.dtype) for _ in range(n)) for _ in range(L)]
    out = check_parts(state, n, (L, B, H), what, dtype=layer.dtype, lead1=L == 1)
    return [tuple(p[k] for p in out) for k in range(L)]


def _check_unidirectional(layer: RecurrentLayer) -> None:
    if layer.num_directions != 1:
        raise RnnkitError(
            "a bidirectional layer cannot run one step at a time (the reverse "
            "direction needs the whole sequence)"
        )


class Stepper:
    """Incremental forward of ``layer`` for B parallel sequences.

    stepper = Stepper(layer, B, embedding=E)   # E (V, I): inputs are token ids
    h = stepper.step(ids)                      # ids (B,) -> top layer's h(t) (B, H)
    stepper.state                              # tuple of (L, B, H) arrays (h, [c])
    """

    def __init__(
        self, layer: RecurrentLayer, batch: int, embedding: np.ndarray | None = None, state0=None
    ):
        _check_unidirectional(layer)
        cell, H, dt = layer.cell, layer.hidden_size, layer.dtype
        self.cell, self.H, self.L = cell, H, layer.num_layers
        self.layers: list = []
        # ping-pong state buffers (2, B, H) per layer and state: step t reads one, writes the other
        s0 = _states(layer, state0, batch, "initial state")
        self.S = [tuple(np.zeros((2, batch, H), dt) for _ in range(cell.n_states)) for _ in s0]
        for S, st in zip(self.S, s0):
            for s, v in zip(S, st):
                s[0] = v
        for k, S in enumerate(self.S):
            w = layer.weights(k)
            steps = make_steps(cell, w, S)  # a one-step pass, run again at every step
            bias, W_ihT = _input_bias(steps, w, dt), np.ascontiguousarray(w["w_ih"].T)
            # token inputs: the projection of every token at once, a (V, G*H) table
            table = embedding @ W_ihT + bias if (k == 0 and embedding is not None) else None
            self.layers.append((W_ihT, bias, table, steps))
        self.cur = 0

    @property
    def state(self) -> tuple:
        """The current state: a tuple (h, [c]) of (L, B, H) arrays (copies)."""
        return tuple(np.stack([S[k][self.cur] for S in self.S]) for k in range(self.cell.n_states))

    def step(self, x: np.ndarray) -> np.ndarray:
        """x: (B,) token ids (with an embedding) or (B, I) features. Returns the top layer's
        h(t) (B, H) (a view that the next step overwrites: copy it to keep it)."""
        a, b = self.cur, 1 - self.cur
        inp = x
        for (W_ihT, bias, table, steps), S in zip(self.layers, self.S):
            xp = table[inp] if table is not None else inp @ W_ihT + bias
            new = tuple(s[b] for s in S)
            steps.forward(0, xp, tuple(s[a] for s in S), new)
            inp = new[0]
        self.cur = b
        return inp


class StepFunction:
    """Step-level forward and backward through a unidirectional ``layer`` (all its layers).

        f = StepFunction(layer)                      # W_hh^T etc. prepared here, once
        y1, s1, tape1 = f.forward(x1, None)          # x (B, I) floats or (B,) ids; state None: 0
        y2, s2, tape2 = f.forward(x2, s1)
        dx2, ds1 = f.backward(tape2, dy2, None)      # dy (B, H) of the top layer; dstate like s
        dx1, ds0 = f.backward(tape1, dy1 + ..., ds1)
        grads = f.grads()                            # {PyTorch name: array}, summed over steps

    Each step is the layer's own loop run for one step (the same cell code, so it agrees with
    the sequence forward/backward to round-off); a tape may be taken back once. ``grads()``
    stacks the steps taken back and forms each weight gradient in one product, then starts anew.
    """

    def __init__(self, layer: RecurrentLayer):
        _check_unidirectional(layer)
        self.layer = layer
        self.rw = [RecurrentWeights.of(layer.weights(k)) for k in range(layer.num_layers)]
        self._records: list[list] = [[] for _ in range(layer.num_layers)]

    def forward(self, x_t: np.ndarray, state=None):
        """One step: x_t (B, I) floats or (B,) token ids; state as (L, B, H) arrays or None.
        Returns (y_t (B, H), new state shaped like ``state``, tape)."""
        lay = self.layer
        x_t = np.asarray(x_t)
        if x_t.ndim not in (1, 2):
            raise RnnkitError(f"x_t must have shape (B, I) or (B,) ids, got {x_t.shape}")
        B = x_t.shape[0]
        prev = _states(lay, state, B, "state")
        inp, caches, new = x_t[None], [], []
        for k in range(lay.num_layers):
            y, s_n, cache = recurrent_forward(
                lay.cell,
                lay.weights(k),
                inp,
                prev[k],
                hidden_size=lay.hidden_size,
                dtype=lay.dtype,
                rw=self.rw[k],
            )
            caches.append(cache)
            new.append(s_n)
            inp = y
        out = tuple(np.stack([s[i] for s in new]) for i in range(lay.cell.n_states))
        return inp[0], as_public(out), caches

    def backward(self, tape: list, dy_t: np.ndarray | None, dstate=None):
        """Take one step back: dy_t (B, H) = dL/dy_t of the top layer, dstate = dL/d(new state)
        ((L, B, H) arrays, or None). Returns (dx_t (B, I) or None for ids, dL/d(previous state)
        shaped like the state)."""
        lay = self.layer
        if not isinstance(tape, list) or not tape or not isinstance(tape[0], Cache):
            raise RnnkitError("backward needs a tape returned by StepFunction.forward")
        B = tape[0].S[0].shape[1] if tape[0].S else 0
        if tape[0].consumed:
            raise RnnkitError("this step was already taken back")
        ds = _states(lay, dstate, B, "state gradient")
        dcur = None if dy_t is None else np.asarray(dy_t, dtype=lay.dtype)[None]
        dprev: list = [None] * lay.num_layers
        for k in range(lay.num_layers - 1, -1, -1):
            cache = tape[k]
            x = cache.x
            dgi, groups, ds0, own = bptt(lay.cell, cache, dcur, ds[k])
            w = lay.weights(k)
            dx = None if x.ndim == 2 else dgi.reshape(-1, dgi.shape[-1]) @ w["w_ih"]
            self._records[k].append((x, dgi, groups, own))
            cache.release()
            dprev[k] = ds0
            dcur = None if dx is None else dx.reshape(1, B, -1)
        out = tuple(np.stack([d[i] for d in dprev]) for i in range(lay.cell.n_states))
        return (None if dcur is None else dcur[0]), as_public(out)

    def grads(self) -> dict:
        """{PyTorch name: gradient} summed over every step taken back since the last call."""
        lay, out = self.layer, {}
        for k, recs in enumerate(self._records):
            if not recs:
                continue
            x = np.concatenate([r[0] for r in recs], axis=0)
            dgi = np.concatenate([r[1] for r in recs], axis=0)
            _, g = weight_grads(lay.weights(k), x, dgi, _stack_groups(recs), want_dx=False)
            for r in recs:
                for n, v in r[3].items():
                    g[n] = g[n] + v if n in g else v.copy()
            out.update(lay._grads_named(k, 0, g))
        self._records = [[] for _ in range(lay.num_layers)]
        return out


def _stack_groups(recs: list) -> list:
    """The recurrent groups of every step taken back, stacked along time: one per block, with an
    input V shared by several blocks stacked once (so that they stay one product)."""
    out, stacked = [], {}
    for i, (rows, V, dZ) in enumerate(recs[0][2]):
        if id(V) not in stacked:
            stacked[id(V)] = np.concatenate([r[2][i][1] for r in recs], axis=0)
        dZs = None if dZ is None else np.concatenate([r[2][i][2] for r in recs], axis=0)
        out.append((rows, stacked[id(V)], dZs))
    return out
