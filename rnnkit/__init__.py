"""rnnkit: recurrent neural networks from first principles in NumPy.

Every recurrence has a hand-written forward pass and backpropagation through time, checked against
central differences and against PyTorch. Arrays are time-major: (T, B, F).
"""

from .errors import RnnkitError
from .gradcheck import GradcheckResult, gradcheck
from .layers import GRU, LSTM, RNN, Cell, StepFunction, make_recurrent, register_cell
from .module import Module

__version__ = "0.1.0"
__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "Cell",
    "Module",
    "StepFunction",
    "make_recurrent",
    "register_cell",
    "gradcheck",
    "GradcheckResult",
    "RnnkitError",
    "__version__",
]
