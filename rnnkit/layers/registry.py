"""Pick a recurrent layer by name, so every model takes every cell (``--cell rnn|lstm|gru``)."""

from __future__ import annotations

from ..errors import RnnkitError
from .base import RecurrentLayer

CELLS = ("rnn", "lstm", "gru")


def make_recurrent(cell: str, input_size: int, hidden_size: int, *, seed: int | None = None,
                   dtype: str = "float32", nonlinearity: str = "tanh",
                   forget_bias: float = 0.0) -> RecurrentLayer:
    """A one-layer RNN, LSTM or GRU with PyTorch's parameter names."""
    if cell == "rnn":
        from .rnn import RNN
        return RNN(input_size, hidden_size, nonlinearity=nonlinearity, seed=seed, dtype=dtype)
    if cell == "lstm":
        from .lstm import LSTM
        return LSTM(input_size, hidden_size, seed=seed, dtype=dtype, forget_bias=forget_bias)
    if cell == "gru":
        from .gru import GRU
        return GRU(input_size, hidden_size, seed=seed, dtype=dtype)
    raise RnnkitError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
