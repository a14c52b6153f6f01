"""A recurrent layer of any registered cell with a linear layer on its last state or on every
state: the model of the long-term dependency tasks (``rnnkit.tasks.memory``: adding, copy,
remember-first), with squared error or softmax cross-entropy, summed over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, softmax_cross_entropy
from ..layers import time_cells  # noqa: F401  (registers leaky-fixed, skip and clockwork)
from ..layers.dense import Linear
from ..layers.registry import check_cell, make_recurrent
from ..module import Module
from .protocol import StepOut

__all__ = ["MemoryModelConfig", "SequenceModel"]


@dataclass
class MemoryModelConfig:
    """A recurrent layer and a linear output layer (stored in checkpoints)."""

    cell: str = field(default="lstm", metadata={"help": "recurrent cell (any registered one)"})
    hidden_size: int = field(default=64, metadata={"help": "hidden units per layer"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers"})
    forget_bias: float = field(default=1.0, metadata={"help": "LSTM forget-gate bias at init"})
    nonlinearity: str = field(
        default="tanh", metadata={"help": "Elman cell: tanh | relu", "choices": ["tanh", "relu"]}
    )
    tau_max: float = field(
        default=100.0,
        metadata={
            "help": "leaky cells: the largest time constant (taus spread log-uniformly from 1)"
        },
    )
    delays: str = field(default="1,2,4,8", metadata={"help": "skip cell: the delays d of h(t-d)"})
    periods: str = field(
        default="1,2,4,8,16,32",
        metadata={"help": "clockwork cell: the update periods of the unit groups"},
    )
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    input_size: int = field(default=0, metadata={"cli": False})  # set by the task
    output_size: int = field(default=0, metadata={"cli": False})
    head: str = field(default="last", metadata={"cli": False})  # last | every
    loss: str = field(default="mse", metadata={"cli": False})  # mse | ce
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> MemoryModelConfig:
        check_cell(self.cell)
        check_ints(self, ("hidden_size", "num_layers", "input_size", "output_size"))
        if self.head not in ("last", "every") or self.loss not in ("mse", "ce"):
            raise RnnkitError(f"bad head/loss {self.head!r}/{self.loss!r}")
        if not (isinstance(self.tau_max, (int, float)) and self.tau_max >= 1):
            raise RnnkitError(f"--tau-max must be >= 1, got {self.tau_max!r}")
        as_dtype(self.dtype)
        return self


class SequenceModel(Module):
    """Recurrent layer(s) ``rnn`` then ``out`` (Linear): o = c + V h(t) at the last step or at
    every step; squared error (``loss="mse"``) or softmax cross-entropy (``"ce"``), summed.

    batch = (x, targets): x (T, B, I) floats or (T, B) ids (one-hot inputs); targets (B, O)
    floats (mse, last), (B,) ids (ce, last) or (T, B) ids (ce, every).
    """

    def __init__(self, config: MemoryModelConfig):
        super().__init__()
        self.config = c = config.validate()
        rng = np.random.default_rng(c.seed)
        self.rnn = make_recurrent(
            c.cell,
            c.input_size,
            c.hidden_size,
            num_layers=c.num_layers,
            seed=int(rng.integers(2**31)),
            dtype=c.dtype,
            nonlinearity=c.nonlinearity,
            forget_bias=c.forget_bias,
            tau_max=float(c.tau_max),
            delays=c.delays,
            periods=c.periods,
        )
        self.out = Linear(self.rnn.output_size, c.output_size, rng, as_dtype(c.dtype))

    def layer_input(self, x: np.ndarray) -> np.ndarray:
        """x as the recurrent layer takes it: ids unchanged, floats cast to the model's dtype."""
        x = np.asarray(x)
        return x if x.dtype.kind in "iu" else x.astype(self.rnn.dtype, copy=False)

    def head_loss(
        self, rows: np.ndarray, targets: np.ndarray
    ) -> tuple[float, int, np.ndarray, np.ndarray]:
        """rows (N, H) -> (loss_sum, count, dL/drows (N, H), outputs (N, O)); fills out.grads."""
        o = self.out.forward(rows)
        if self.config.loss == "mse":
            diff = o - targets.reshape(o.shape).astype(o.dtype)
            loss, n, do = float(np.sum(diff.astype(np.float64) ** 2)), o.shape[0], 2.0 * diff
        else:
            loss, n, do = softmax_cross_entropy(o.copy(), targets.reshape(-1))
        return loss, n, self.out.backward(rows, do), o

    def _run(self, batch):
        x, targets = batch
        y, _ = self.rnn.forward(self.layer_input(x))
        rows = y[-1] if self.config.head == "last" else y.reshape(-1, y.shape[-1])
        return y, rows, targets

    def loss_and_grads(self, batch, carry=None) -> StepOut:
        y, rows, targets = self._run(batch)
        loss, n, drows, _ = self.head_loss(rows, targets)
        dy = np.zeros_like(y)
        if self.config.head == "last":
            dy[-1] = drows
        else:
            dy[...] = drows.reshape(y.shape)
        self.rnn.backward(dy)
        return StepOut(loss, n, self.named_grads())

    def evaluate(self, batch, carry=None) -> StepOut:
        y, rows, targets = self._run(batch)
        o = self.out.forward(rows)
        if self.config.loss == "mse":
            diff = (o - targets.reshape(o.shape)).astype(np.float64)
            return StepOut(float(np.sum(diff**2)), o.shape[0])
        loss, n, _ = softmax_cross_entropy(o.copy(), targets.reshape(-1))
        pred = o.argmax(axis=1)
        hit = pred == targets.reshape(-1)
        if self.config.head == "every":  # copy: count the recall steps (the symbol targets) only
            hit = hit[targets.reshape(-1) != 0]
        return StepOut(loss, n, extra={"correct": int(hit.sum()), "total": int(hit.size)})
