"""The cell registry: every model takes every registered cell (``--cell NAME``), and the
conformance suite (``tests/test_cell_conformance.py``) checks every registered cell the same way;
for example::

    from rnnkit.layers import Cell, register_cell
    register_cell("minimal", lambda hidden_size, **kw: MinimalRNNCell())

A factory receives ``hidden_size`` and the cell options a model passes along (``nonlinearity``,
``forget_bias``, ...) and returns a :class:`~rnnkit.layers.cell.Cell`; it should ignore options
it does not use (``**kw``). The built-in cells map to PyTorch-compatible layer classes; they are
registered by ``rnnkit/layers/__init__.py`` (this module imports no cell module), so ``import
rnnkit`` registers every cell the package has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RnnkitError
from .base import RecurrentLayer
from .cell import Cell

# name -> factory(hidden_size, **options) -> Cell; insertion order is the order shown to users
CELLS: dict[str, Callable[..., Cell]] = {}
_LAYER_CLASSES: dict[str, Callable[..., RecurrentLayer]] = {}


def register_cell(
    name: str,
    factory: Callable[..., Cell],
    *,
    layer_class: Callable[..., RecurrentLayer] | None = None,
) -> None:
    """Make a cell available by name to every model, the CLI and the conformance suite."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise RnnkitError(f"cell names are letters, digits, '-' and '_', got {name!r}")
    CELLS[name] = factory
    if layer_class is not None:
        _LAYER_CLASSES[name] = layer_class


def cell_names() -> list[str]:
    """The registered cells, in the order shown to users."""
    return list(CELLS)


def check_cell(name: str) -> None:
    """RnnkitError unless ``name`` is a registered cell."""
    if name not in CELLS:
        raise RnnkitError(f"unknown cell {name!r}; choose one of {', '.join(CELLS)}")


def make_cell(name: str, hidden_size: int, **options) -> Cell:
    check_cell(name)
    return CELLS[name](hidden_size, **options)


def make_recurrent(
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    merge: str = "concat",
    bias: bool = True,
    seed: int | None = None,
    dtype: str = "float32",
    nonlinearity: str = "tanh",
    forget_bias: float = 0.0,
    **options,
) -> RecurrentLayer:
    """A recurrent layer of any registered cell; RNN, LSTM and GRU with PyTorch's names."""
    check_cell(cell)
    common: dict[str, Any] = dict(
        num_layers=num_layers,
        bias=bias,
        dropout=dropout,
        bidirectional=bidirectional,
        merge=merge,
        seed=seed,
        dtype=dtype,
    )
    if cell == "rnn":
        return _LAYER_CLASSES["rnn"](input_size, hidden_size, nonlinearity=nonlinearity, **common)
    if cell == "lstm":
        return _LAYER_CLASSES["lstm"](input_size, hidden_size, forget_bias=forget_bias, **common)
    if cell in _LAYER_CLASSES:
        return _LAYER_CLASSES[cell](input_size, hidden_size, **common)
    c = CELLS[cell](hidden_size, nonlinearity=nonlinearity, forget_bias=forget_bias, **options)
    return RecurrentLayer(c, input_size, hidden_size, **common)
