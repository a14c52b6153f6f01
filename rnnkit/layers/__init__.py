"""Layers: recurrent cells run by one shared time loop, plus embedding and linear output layers."""

from .base import RecurrentLayer
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .recurrent import Cache, Cell, recurrent_backward, recurrent_forward
from .rnn import RNN, ElmanCell

__all__ = ["RNN", "ElmanCell", "LSTM", "LSTMCell", "GRU", "GRUCell", "RecurrentLayer", "Cell",
           "Cache", "recurrent_forward", "recurrent_backward"]
