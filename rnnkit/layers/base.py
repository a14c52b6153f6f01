"""The public layer API shared by RNN, LSTM and GRU, shaped like PyTorch's ``nn.RNNBase``.

    y, h_n = layer.forward(x, h0=None, lengths=None)      # x (T, B, I); y (T, B, H); h (1, B, H)
    dx, dh0 = layer.backward(dy, dh_n=None)               # fills layer.grads
    dx, dh0 = layer.backward(dy, retain_cache=True)       # keep the cache for another backward
    y, (h_n, c_n) = lstm.forward(x, (h0, c0))             # LSTM: state is a pair

Parameters are PyTorch's (``weight_ih_l0`` (G*H, I), ``weight_hh_l0`` (G*H, H), ``bias_ih_l0``,
``bias_hh_l0``), so ``{k: v.numpy() for k, v in torch_layer.state_dict().items()}`` loads as it is.
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from ..functional import as_dtype
from .recurrent import Cache, Cell, recurrent_backward, recurrent_forward


class RecurrentLayer:
    """A cell run over time, with its parameters, gradients and the cache of the last forward."""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, *, bias: bool = True,
                 seed: int | None = None, dtype: str = "float32", bptt_truncate: int | None = None):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise RnnkitError(f"{name} must be a positive integer, got {v!r}")
        self.cell = cell
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        self.dtype = as_dtype(dtype)
        self.bptt_truncate = bptt_truncate
        rng = np.random.default_rng(seed)
        G, H, k = cell.gates, hidden_size, 1.0 / np.sqrt(hidden_size)
        shapes = {"weight_ih_l0": (G * H, input_size), "weight_hh_l0": (G * H, H)}
        if bias:
            shapes.update(bias_ih_l0=(G * H,), bias_hh_l0=(G * H,))
        self.params = {n: rng.uniform(-k, k, s).astype(self.dtype) for n, s in shapes.items()}
        self.grads = {n: np.zeros_like(p) for n, p in self.params.items()}
        self._cache: Cache | None = None

    # -- parameters ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch-named copies of the parameters."""
        return {n: p.copy() for n, p in self.params.items()}

    def load_state_dict(self, d: dict) -> None:
        """Load PyTorch-named arrays (any float dtype; cast to the layer's). Keys must match."""
        missing, extra = set(self.params) - set(d), set(d) - set(self.params)
        if missing or extra:
            raise RnnkitError(f"state dict keys differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for n, p in self.params.items():
            v = np.asarray(d[n])
            if v.shape != p.shape:
                raise RnnkitError(f"{n} has shape {v.shape}, expected {p.shape}")
            p[...] = v

    # -- state conversion (PyTorch's (1, B, H)) ----------------------------------------------
    def _state_in(self, h0) -> tuple | None:
        if h0 is None:
            return None
        parts = h0 if self.cell.n_states == 2 else (h0,)
        if self.cell.n_states == 2 and not (isinstance(h0, tuple) and len(h0) == 2):
            raise RnnkitError("LSTM initial state must be a pair (h0, c0)")
        out = []
        for s in parts:
            s = np.asarray(s)
            if s.ndim != 3 or s.shape[0] != 1:
                raise RnnkitError(f"initial state must have shape (1, B, {self.hidden_size}), got {s.shape}")
            out.append(s[0].astype(self.dtype, copy=False))
        return tuple(out)

    def _state_out(self, states: tuple):
        s = tuple(v[None].copy() for v in states)
        return s if self.cell.n_states == 2 else s[0]

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, x: np.ndarray, h0=None, lengths=None, mask=None):
        """x (T, B, I) floats (or (T, B) ids as one-hot inputs); h0 (1, B, H) or None (zeros);
        lengths (B,) or mask (T, B) for ragged batches. Returns y (T, B, H) and h_n (1, B, H)
        (for the LSTM the pair (h_n, c_n)); y is zero at padded steps. The cache of the previous
        forward is dropped first (not kept alive while the new one is built)."""
        self._cache = None
        y, s_n, self._cache = recurrent_forward(
            self.cell, self.params, x, self._state_in(h0), lengths, mask,
            input_size=self.input_size, hidden_size=self.hidden_size, dtype=self.dtype)
        return y, self._state_out(s_n)

    __call__ = forward

    def backward(self, dy: np.ndarray | None, dh_n=None, bptt_truncate: int | None = None,
                 retain_cache: bool = False):
        """BPTT through the last forward. dy (T, B, H) = dL/dy; dh_n like h_n (or None).
        Fills ``self.grads`` and returns (dx, dh0) with dx (T, B, I) (None for id inputs) and
        dh0 shaped like h0. ``bptt_truncate`` overrides the layer's setting for this call.

        Like PyTorch's ``retain_graph``: by default the backward consumes the forward's cache
        (it reuses the cached activations' memory for the gradients and then frees it), so a
        second backward after one forward raises; ``retain_cache=True`` keeps the cache for
        another backward. dy and dh_n are not modified."""
        if self._cache is None:
            raise RnnkitError("backward called before forward")
        k = self.bptt_truncate if bptt_truncate is None else bptt_truncate
        dx, ds0, grads = recurrent_backward(self.cell, self.params, self._cache, dy,
                                            self._state_in(dh_n), k, retain_cache=retain_cache)
        self.grads = grads
        return dx, self._state_out(ds0)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
                f"bias={self.bias}, dtype={self.dtype.name})")
