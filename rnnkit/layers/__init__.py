"""Layers: recurrent cells run by one shared time loop, plus embedding and linear output layers."""

from .base import RecurrentLayer
from .cell import Cell, sum_rows
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .recurrent import Cache, recurrent_backward, recurrent_forward
from .registry import CELLS, cell_names, make_cell, make_recurrent, register_cell
from .rnn import RNN, ElmanCell
from .stepper import StepFunction, Stepper

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
    "recurrent_forward",
    "recurrent_backward",
    "CELLS",
    "cell_names",
    "make_cell",
    "make_recurrent",
    "register_cell",
    "sum_rows",
    "StepFunction",
    "Stepper",
]
