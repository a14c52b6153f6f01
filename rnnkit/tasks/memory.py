"""Long-term dependency tasks (Deep Learning book 10.7): ``rnnkit train adding | copy |
remember-first --length T --cell C``.

* ``adding`` (Hochreiter & Schmidhuber 1997): inputs (T, B, 2) = (value, marker); the target is
  the sum of the two marked values, predicted from the last state by a linear layer::

      yhat = c + V h(T),   L = sum_b (yhat_b - y_b)^2            (squared error, summed)

  held-out metric ``mse``; predicting 1 always scores 1/6 ~ 0.167 (``baseline_mse``).
* ``copy`` (Arjovsky et al. 2016): 10 ids (blank, 8 symbols, delimiter) as one-hot inputs; at
  every step a softmax over the same 10 ids (10.10-10.14), L = -sum_t log yhat(t)[y(t)]. After T
  blanks and the delimiter the 10 symbols of the start are due again. Metrics: ``accuracy`` on
  those 10 recall steps, cross-entropy per step ``loss`` and ``relative_loss`` = loss over the
  memoryless ``baseline`` (10 ln 8 / (T + 20)); below 1 means something was remembered.
* ``remember-first``: the class of the first token, asked for after T - 2 distractors: a softmax
  over the classes from the last state; ``accuracy`` (chance 1 / classes), ``relative_loss``
  against ln(classes).

The data come from ``rnnkit.data.synthetic``. Each epoch draws ``--train-size`` fresh sequences
from the loop's epoch generator (so ``--resume`` regenerates the same ones); the held-out set is
drawn once from ``--seed`` and is the same in every run with that seed.

The model (:class:`SequenceModel`): recurrent layer(s) of any registered cell, then a linear layer
on the last state (``head="last"``) or on every state (``head="every"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.synthetic import adding_problem, copy_baseline, copy_memory, remember_first
from ..errors import RnnkitError, check_ints
from ..functional import as_dtype, softmax_cross_entropy
from ..layers.dense import Linear
from ..layers.registry import check_cell, make_recurrent
from ..models.protocol import StepOut
from ..module import Module
from . import register_task
from .base import Task

ADDING_BASELINE = 1.0 / 6.0  # MSE of always answering 1 (the mean of U(0,1) + U(0,1))


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


# -- task configurations ------------------------------------------------------------------------
@dataclass
class AddingConfig:
    length: int = field(default=50, metadata={"help": "T, steps per sequence (the lag)"})
    train_size: int = field(default=5000, metadata={"help": "fresh training sequences per epoch"})
    valid_size: int = field(default=1000, metadata={"help": "held-out sequences (fixed by --seed)"})
    batch_size: int = field(default=50, metadata={"help": "sequences per batch"})
    seed: int = field(default=0, metadata={"cli": False})


@dataclass
class CopyConfig:
    length: int = field(
        default=50, metadata={"help": "T, blanks between the symbols and their recall"}
    )
    symbols: int = field(default=8, metadata={"help": "alphabet size"})
    recall: int = field(default=10, metadata={"help": "symbols to remember"})
    train_size: int = field(default=5000, metadata={"help": "fresh training sequences per epoch"})
    valid_size: int = field(default=1000, metadata={"help": "held-out sequences (fixed by --seed)"})
    batch_size: int = field(default=50, metadata={"help": "sequences per batch"})
    seed: int = field(default=0, metadata={"cli": False})


@dataclass
class RememberConfig:
    length: int = field(default=50, metadata={"help": "T, steps per sequence"})
    classes: int = field(default=4, metadata={"help": "classes of the first token"})
    distractors: int = field(default=16, metadata={"help": "distractor tokens"})
    train_size: int = field(default=5000, metadata={"help": "fresh training sequences per epoch"})
    valid_size: int = field(default=1000, metadata={"help": "held-out sequences (fixed by --seed)"})
    batch_size: int = field(default=50, metadata={"help": "sequences per batch"})
    seed: int = field(default=0, metadata={"cli": False})


# -- tasks --------------------------------------------------------------------------------------
class MemoryTask(Task):
    """Shared by the three tasks: generated data, fixed held-out set, the model above."""

    ModelConfig = MemoryModelConfig
    fit_defaults = {"lr": 1e-2, "epochs": 20, "clip_norm": 1.0, "halve_lr": False}
    resume_overridable = Task.resume_overridable + ("halve_lr",)
    min_length = 1
    head, loss = "last", "ce"
    _extra_ints: tuple = ()  # the Config's own integer fields, checked like length

    def __init__(self, cfg, state=None, load_data: bool = True):
        super().__init__(cfg)
        check_ints(
            cfg,
            ("length", "train_size", "valid_size", "batch_size") + self._extra_ints,
            {"length": self.min_length, "symbols": 2, "classes": 2},
        )
        self.valid = (
            self.make_data(cfg.valid_size, np.random.default_rng([cfg.seed, 1]))
            if load_data
            else None
        )

    def make_data(self, n: int, rng: np.random.Generator) -> tuple:
        """n sequences: (inputs, targets) as the model's batch takes them."""
        raise NotImplementedError

    def sizes(self) -> tuple[int, int]:
        """(input size, output size) of the model."""
        raise NotImplementedError

    def build_model(self, mcfg: MemoryModelConfig, seed: int = 0) -> SequenceModel:
        mcfg.input_size, mcfg.output_size = self.sizes()
        mcfg.head, mcfg.loss, mcfg.seed = self.head, self.loss, seed
        return SequenceModel(mcfg)

    def batches(self, split: str, rng):
        if split == "train":
            x, y = self.make_data(self.cfg.train_size, rng)
        else:
            x, y = self.valid
        bs = self.cfg.batch_size
        return [
            (
                x[:, i : i + bs],
                y[i : i + bs] if y.ndim < 2 or self.head == "last" else y[:, i : i + bs],
            )
            for i in range(0, x.shape[1], bs)
        ]

    def summarize(self, loss_sum, count, extra):
        loss = loss_sum / max(count, 1)
        base = self.baseline()
        m = {"loss": loss}
        if "total" in extra:
            m["accuracy"] = extra["correct"] / max(extra["total"], 1)
        m.update(baseline=base, relative_loss=loss / base)
        return m

    def baseline(self) -> float:
        raise NotImplementedError

    def after_training(self, model, result, out_dir, samples: int = 5, seed: int = 0) -> None:
        m = result.metrics
        shown = "  ".join(f"{k} {v:.4g}" for k, v in m.items() if k != "loss")
        print(
            f"\nheld-out {self.name} (T={self.cfg.length}): loss {m['loss']:.4g}  {shown}  after "
            f"{result.steps} steps ({result.stopped_by.replace('_', ' ')}); checkpoint "
            f"{result.checkpoint}"
        )
        if samples > 0:
            self.show(model, samples)

    def show(self, model, n: int) -> None:
        """Print n held-out examples with the model's answers."""


@register_task
class AddingTask(MemoryTask):
    name = "adding"
    Config = AddingConfig
    head, loss = "last", "mse"
    min_length = 2
    loss_label = "squared error per sequence"
    description = (
        "The adding problem: sum the two marked numbers of a sequence of T steps, read "
        "from the last state (always answering 1 scores MSE 0.167)."
    )

    def make_data(self, n, rng):
        x, y = adding_problem(n, self.cfg.length, rng)
        return x.astype(np.float32), y

    def sizes(self):
        return 2, 1

    def baseline(self):
        return ADDING_BASELINE

    def summarize(self, loss_sum, count, extra):
        mse = loss_sum / max(count, 1)
        return {
            "loss": mse,
            "mse": mse,
            "baseline": ADDING_BASELINE,
            "relative_loss": mse / ADDING_BASELINE,
        }

    def show(self, model, n):
        x, y = self.valid[0][:, :n], self.valid[1][:n]
        yh = model.out.forward(model.rnn.forward(model.layer_input(x))[0][-1])
        for b in range(x.shape[1]):
            marked = " + ".join(f"{v:.3f}" for v in x[x[:, b, 1] == 1, b, 0])
            print(f"  {marked} = {y[b, 0]:.3f}   model: {float(yh[b, 0]):.3f}")


@register_task
class CopyTask(MemoryTask):
    name = "copy"
    Config = CopyConfig
    head, loss = "every", "ce"
    loss_label = "cross-entropy per step (nats)"
    description = (
        "The copy-memory task: reproduce 10 symbols after T blanks and a delimiter, "
        "one softmax per step (the memoryless baseline is 10 ln 8 / (T + 20) nats)."
    )
    _extra_ints = ("symbols", "recall")

    def make_data(self, n, rng):
        c = self.cfg
        return copy_memory(n, c.length, rng, n_symbols=c.symbols, length=c.recall)

    def sizes(self):
        return self.cfg.symbols + 2, self.cfg.symbols + 2

    def baseline(self):
        c = self.cfg
        return copy_baseline(c.length, c.symbols, c.recall)

    def show(self, model, n):
        x = self.valid[0][:, :n]
        o = model.out.forward(model.rnn.forward(x)[0])
        r = self.cfg.recall
        for b in range(x.shape[1]):
            print(
                f"  {' '.join(map(str, x[:r, b]))}  ->  {' '.join(map(str, o[-r:, b].argmax(-1)))}"
            )


@register_task
class RememberFirstTask(MemoryTask):
    name = "remember-first"
    Config = RememberConfig
    head, loss = "last", "ce"
    min_length = 2
    loss_label = "cross-entropy per sequence (nats)"
    description = (
        "Remember the first token: name its class after T - 2 distractor tokens "
        "(chance is 1 / classes)."
    )
    _extra_ints = ("classes", "distractors")

    def make_data(self, n, rng):
        c = self.cfg
        return remember_first(n, c.length, rng, n_classes=c.classes, n_distractors=c.distractors)

    def sizes(self):
        return self.cfg.classes + self.cfg.distractors + 1, self.cfg.classes

    def baseline(self):
        return math.log(self.cfg.classes)
