"""Layers: recurrent cells run by one shared time loop, plus embedding and linear output layers.

Importing this package registers every built-in cell (``cell_names()``), in this order: the
classic three with PyTorch-compatible layers, then the cells of ``extra_cells.py`` and
``time_cells.py``.
"""

from .base import RecurrentLayer
from .cell import Cell, sum_rows
from .extra_cells import DeepTransitionCell, LeakyCell
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .recurrent import Cache, recurrent_backward, recurrent_forward
from .registry import CELLS, cell_names, make_cell, make_recurrent, register_cell
from .rnn import RNN, ElmanCell
from .state import as_public, check_parts
from .stepper import StepFunction, Stepper
from .steps import Steps
from .time_cells import ClockworkCell, FixedLeakyCell, SkipCell

register_cell("rnn", lambda h, nonlinearity="tanh", **kw: ElmanCell(nonlinearity), layer_class=RNN)
register_cell("lstm", lambda h, **kw: LSTMCell(), layer_class=LSTM)
register_cell("gru", lambda h, **kw: GRUCell(), layer_class=GRU)
register_cell("leaky", lambda h, tau_min=1.0, tau_max=100.0, **kw: LeakyCell(tau_min, tau_max))
register_cell("deep", lambda h, depth=2, shortcut=True, **kw: DeepTransitionCell(depth, shortcut))
register_cell(
    "leaky-fixed", lambda h, tau_min=1.0, tau_max=100.0, **kw: FixedLeakyCell(h, tau_min, tau_max)
)
register_cell("skip", lambda h, delays=(1, 2, 4, 8), **kw: SkipCell(delays))
register_cell("clockwork", lambda h, periods=(1, 2, 4, 8, 16, 32), **kw: ClockworkCell(h, periods))

__all__ = [
    "RNN",
    "ElmanCell",
    "LSTM",
    "LSTMCell",
    "GRU",
    "GRUCell",
    "RecurrentLayer",
    "Cell",
    "Cache",
    "Steps",
    "recurrent_forward",
    "recurrent_backward",
    "CELLS",
    "cell_names",
    "make_cell",
    "make_recurrent",
    "register_cell",
    "sum_rows",
    "check_parts",
    "as_public",
    "StepFunction",
    "Stepper",
]
