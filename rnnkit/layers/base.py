"""The public recurrent layer, shaped like PyTorch's ``nn.RNNBase``: stacked, bidirectional.

    y, h_n = layer.forward(x, h0=None, lengths=None)   # x (T, B, I); y (T, B, D*H); h (L*D, B, H)
    dx, dh0 = layer.backward(dy, dh_n=None)            # fills layer.grads
    dx, dh0 = layer.backward(dy, retain_cache=True)    # keep the cache for another backward
    y, (h_n, c_n) = lstm.forward(x, (h0, c0))          # LSTM: state is a pair

Parameters follow PyTorch, generated in a loop over layers k and directions: ``weight_ih_l{k}``
(G*H, I_k), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), and the same
with ``_reverse`` for the backward direction (I_0 = input size, I_k = D*H after), so
``{k: v.numpy() for k, v in torch_layer.state_dict().items()}`` loads as it is. A cell's own
parameters get the same suffixes (``tau_l0``). Each (layer, direction) runs the shared time loop
(``recurrent.py``) on neutral names; this file only maps names, stacks layers, reverses sequences
and applies dropout between layers.

Deep RNNs (Deep Learning book 10.5, figure 10.13a): layer k reads layer k-1's outputs.
Bidirectional RNNs (10.3): the reverse direction reads each sequence backwards from its OWN last
step (as PyTorch's packed sequences do), and its outputs are put back in time order; the two
directions are merged by concatenation (PyTorch), or by ``merge="sum" | "mean" | "product"``
(Keras' merge modes), at every layer.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..errors import RnnkitError
from ..functional import as_dtype, mask_from
from ..module import Module
from .cell import Cell
from .recurrent import recurrent_backward, recurrent_forward
from .state import as_public, check_parts

MERGES = ("concat", "sum", "mean", "product")
_NEUTRAL = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}


def _check_size(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise RnnkitError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def reverse_index(T: int, lengths: np.ndarray | None, B: int) -> np.ndarray | None:
    """(T, B) time index that reverses each sequence within its length (padding stays put);
    None when no sequence is padded (then plain x[::-1]). It is its own inverse."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    L = np.asarray(lengths)[None, :]
    return np.where(t < L, L - 1 - t, t)


def _reverse(a: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    if idx is None:
        return np.ascontiguousarray(a[::-1])
    if a.ndim == 2:
        return np.take_along_axis(a, idx, axis=0)
    return np.take_along_axis(a, idx[:, :, None], axis=0)


class RecurrentLayer(Module):
    """A cell run over time: ``num_layers`` stacked layers, one or two directions."""

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge: str = "concat",
        seed: int | None = None,
        dtype: str = "float32",
        bptt_truncate: int | None = None,
    ):
        super().__init__()
        self.cell = cell
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = H = _check_size("hidden_size", hidden_size)
        self.num_layers = L = _check_size("num_layers", num_layers)
        if (
            not isinstance(dropout, (int, float))
            or isinstance(dropout, bool)
            or not 0 <= dropout < 1
        ):
            raise RnnkitError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if merge not in MERGES:
            raise RnnkitError(f"merge must be one of {', '.join(MERGES)}, got {merge!r}")
        self.bias, self.dropout, self.merge = bool(bias), float(dropout), merge
        self.bidirectional = bool(bidirectional)
        self.num_directions = D = 2 if bidirectional else 1
        self.dtype = as_dtype(dtype)
        self.bptt_truncate = bptt_truncate
        rng = np.random.default_rng(seed)
        self._drop_rng = np.random.default_rng(None if seed is None else [seed, 1])
        G, k = cell.gates, 1.0 / np.sqrt(H)
        self.output_size = D * H if merge == "concat" else H
        self._names: list[list[dict]] = []  # [layer][direction]: neutral name -> PyTorch name
        for layer in range(L):
            I = self.input_size if layer == 0 else self.output_size
            per_dir = []
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes: dict[str, tuple[int, ...]] = {"weight_ih": (G * H, I)}
                if cell.uses_recurrent_weight:
                    shapes["weight_hh"] = (G * H, H)
                if bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                names = {}
                for n, s in shapes.items():  # PyTorch's order and distribution
                    self.add_param(n + sfx, rng.uniform(-k, k, s).astype(self.dtype))
                    names[_NEUTRAL[n]] = n + sfx
                for n, s in cell.own_params(I, H).items():
                    self.add_param(n + sfx, cell.init_own(n, tuple(s), rng, self.dtype))
                    names[n] = n + sfx
                per_dir.append(names)
            self._names.append(per_dir)
        self._cache: list | None = None

    def extra_state(self) -> dict:
        """The dropout random stream, so that a resumed run draws the same masks."""
        if not self.dropout:
            return {}
        from ..checkpoint import rng_state_to_json

        return {"dropout_rng": rng_state_to_json(self._drop_rng)}

    def load_extra_state(self, state: dict) -> None:
        if "dropout_rng" in state:
            from ..checkpoint import rng_from_json

            self._drop_rng = rng_from_json(state["dropout_rng"])

    # -- parameters -----------------------------------------------------------------------------
    @property
    def params(self):
        """Read-only view {PyTorch name: array} of this layer's parameters (the arrays
        themselves: update them in place; rebinding is impossible)."""
        return MappingProxyType(self._params)

    def weights(self, layer: int = 0, direction: int = 0) -> dict:
        """The arrays of one (layer, direction) under the engine's neutral names."""
        return {n: self._params[p] for n, p in self._names[layer][direction].items()}

    def last_cache(self, layer: int = 0, direction: int = 0):
        """The engine's cache of one (layer, direction) from the last forward (for inspection)."""
        if self._cache is None:
            raise RnnkitError("no forward pass yet")
        return self._cache[0][layer][0][direction]

    def _grads_named(self, layer: int, direction: int, g: dict) -> dict:
        names = self._names[layer][direction]
        return {names[n]: v for n, v in g.items()}

    # -- state conversion (PyTorch's (L*D, B, H)) ---------------------------------------------
    def state_parts(self, state, what: str = "state") -> tuple:
        """A public state (one (L*D, B, H) array, or a tuple of them) -> a tuple of arrays."""
        LD = self.num_layers * self.num_directions
        return check_parts(state, self.cell.n_states, (LD, None, self.hidden_size), what)

    def public_state(self, parts) -> object:
        """A tuple of (L*D, B, H) arrays -> the public state (the array itself for one state)."""
        return as_public(tuple(parts))

    def _state_in(self, h0, what: str = "initial state") -> list | None:
        """h0 (L*D, B, H) (LSTM: a pair) -> per (layer*D + direction): tuple of (B, H)."""
        if h0 is None:
            return None
        out = [s.astype(self.dtype, copy=False) for s in self.state_parts(h0, what)]
        return [tuple(p[i] for p in out) for i in range(self.num_layers * self.num_directions)]

    def _state_out(self, states: list):
        return self.public_state(
            np.stack([st[k] for st in states]) for k in range(self.cell.n_states)
        )

    # -- forward / backward -----------------------------------------------------------------------
    def forward(self, x: np.ndarray, h0=None, lengths=None, mask=None, embedding=None):
        """x (T, B, I) floats (or (T, B) ids as one-hot inputs); h0 (L*D, B, H) or None (zeros);
        lengths (B,) or mask (T, B) for ragged batches. Returns y (T, B, D*H) (H for the merges
        other than concat) and h_n (L*D, B, H) (LSTM: the pair (h_n, c_n)); y is zero at padded
        steps. The cache of the previous forward is dropped first.

        ``embedding`` (V, I) with x as (T, B) ids: the inputs are the rows E[x], and the input
        projection of all steps is a row gather of the table P = E W_ih^T (V, G*H), computed
        once -- cheaper than projecting the T*B embedded rows when V < T*B (e.g. characters);
        ``backward`` then returns dL/dE (V, I) in place of dx."""
        self._cache = None
        if embedding is not None:
            if not (
                isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.integer)
            ):
                raise RnnkitError("with an embedding table the input must be (T, B) token ids")
            if embedding.ndim != 2 or embedding.shape[1] != self.input_size:
                raise RnnkitError(
                    f"embedding must have shape (V, {self.input_size}), got {embedding.shape}"
                )
        s0 = self._state_in(h0)
        D, H = self.num_directions, self.hidden_size
        if not isinstance(x, np.ndarray) or x.ndim not in (2, 3):
            raise RnnkitError(
                f"input must be a numpy array of shape (T, B, {self.input_size}) or "
                f"(T, B) token ids, got {getattr(x, 'shape', type(x).__name__)}"
            )
        T, B = x.shape[:2]
        if mask is not None:  # validated once, then passed on as lengths
            m = mask_from(lengths, mask, T, B)
            lengths, mask = (None if m is None else m.sum(axis=0)), None
        ridx = reverse_index(T, lengths, B) if D == 2 else None
        caches, finals, inp = [], [], x
        for layer in range(self.num_layers):
            outs, lc = [], []
            for d in range(D):
                i = layer * D + d
                xi = _reverse(inp, ridx) if d else inp
                w = self.weights(layer, d)
                if layer == 0 and embedding is not None:  # P = E W_ih^T, gathered by id
                    w["w_ih"] = (embedding @ w["w_ih"].T).T
                y, s_n, cache = recurrent_forward(
                    self.cell,
                    w,
                    xi,
                    None if s0 is None else s0[i],
                    lengths,
                    hidden_size=H,
                    dtype=self.dtype,
                )
                outs.append(_reverse(y, ridx) if d else y)
                lc.append(cache)
                finals.append(s_n)
            y = self._merge(outs)
            drop = None
            if self.dropout and self.training and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                drop = (self._drop_rng.random(y.shape) < keep).astype(self.dtype) / self.dtype.type(
                    keep
                )
                y = y * drop
            caches.append(
                (lc, outs if self.merge == "product" else None, drop, inp.shape if layer else None)
            )
            inp = y
        self._cache = [caches, ridx, (T, B), embedding]
        return inp, self._state_out(finals)

    __call__ = forward

    def _merge(self, outs: list) -> np.ndarray:
        if len(outs) == 1:
            return outs[0]
        a, b = outs
        if self.merge == "concat":
            return np.concatenate([a, b], axis=-1)
        if self.merge == "sum":
            return a + b
        if self.merge == "mean":
            return (a + b) * self.dtype.type(0.5)
        return a * b

    def _unmerge(self, dy: np.ndarray, outs) -> list:
        if self.num_directions == 1:
            return [dy]
        H = self.hidden_size
        if self.merge == "concat":
            return [dy[..., :H], dy[..., H:]]
        if self.merge == "sum":
            return [dy, dy]
        if self.merge == "mean":
            half = dy * self.dtype.type(0.5)
            return [half, half]
        return [dy * outs[1], dy * outs[0]]

    def backward(
        self,
        dy: np.ndarray | None,
        dh_n=None,
        bptt_truncate: int | None = None,
        retain_cache: bool = False,
    ):
        """BPTT through the last forward. dy (T, B, D*H) = dL/dy; dh_n like h_n (or None).
        Fills ``self.grads`` (PyTorch names) and returns (dx, dh0): dx (T, B, I) (None for id
        inputs), dh0 shaped like h0. ``bptt_truncate`` overrides the layer's setting for this call.

        Like PyTorch's ``retain_graph``: by default the backward consumes the forward's cache;
        ``retain_cache=True`` keeps it for another backward. dy and dh_n are not modified."""
        if self._cache is None:
            raise RnnkitError("backward called before forward")
        caches, ridx, (T, B), embedding = self._cache
        k = self.bptt_truncate if bptt_truncate is None else bptt_truncate
        ds_n = self._state_in(dh_n, "final-state gradient")
        D = self.num_directions
        grads: dict[str, np.ndarray] = {}
        dstate0: list = [None] * (self.num_layers * D)
        if dy is not None:
            want = (T, B, self.output_size)
            if dy.shape != want:
                raise RnnkitError(f"dy must have the output's shape {want}, got {dy.shape}")
        dcur = dy
        for layer in range(self.num_layers - 1, -1, -1):
            lc, outs, drop, in_shape = caches[layer]
            if dcur is not None and drop is not None:
                dcur = dcur * drop
            parts = self._unmerge(dcur, outs) if dcur is not None else [None] * D
            dx = None
            for d in range(D):
                i = layer * D + d
                dyd = parts[d]
                if d and dyd is not None:
                    dyd = _reverse(dyd, ridx)
                elif dyd is not None:
                    dyd = np.ascontiguousarray(dyd)
                w = self.weights(layer, d)
                fused = layer == 0 and embedding is not None
                if fused:
                    W_ih = w["w_ih"]
                    w["w_ih"] = (embedding @ W_ih.T).T
                dxd, ds0, g = recurrent_backward(
                    self.cell,
                    w,
                    lc[d],
                    dyd,
                    None if ds_n is None else ds_n[i],
                    k,
                    retain_cache=retain_cache,
                )
                if fused:  # dP (G*H, V) -> dW_ih = dP E, dE = dP^T W_ih
                    dP = g["w_ih"]
                    g["w_ih"] = dP @ embedding
                    dxd = dP.T @ W_ih  # the embedding's gradient: no time axis to reverse
                    dx = dxd if dx is None else dx + dxd
                    dxd = None
                grads.update(self._grads_named(layer, d, g))
                dstate0[i] = ds0
                if dxd is not None:
                    dxd = _reverse(dxd, ridx) if d else dxd
                    dx = dxd if dx is None else dx + dxd
            dcur = dx
        self.grads = grads
        return dcur, self._state_out(dstate0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True" + (
                f", merge={self.merge!r}" if self.merge != "concat" else ""
            )
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + f", bias={self.bias}, dtype={self.dtype.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
