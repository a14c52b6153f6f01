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

The model (:class:`rnnkit.models.sequence.SequenceModel`): recurrent layer(s) of any registered
cell, then a linear layer on the last state (``head="last"``) or on every state
(``head="every"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.synthetic import adding_problem, copy_baseline, copy_memory, remember_first
from ..errors import check_ints
from ..models.sequence import MemoryModelConfig, SequenceModel
from .base import Task
from .registry import register_task
from .results import Summary

ADDING_BASELINE = 1.0 / 6.0  # MSE of always answering 1 (the mean of U(0,1) + U(0,1))


# -- what the tasks report ----------------------------------------------------------------------
@dataclass
class AddingExample:
    """One adding problem: the two marked values, their sum, the model's answer."""

    marked: list[float]
    target: float
    answer: float


@dataclass
class CopyExample:
    """One copy problem: the symbols given at the start and the ones the model recalled."""

    given: list[int]
    recalled: list[int]


@dataclass
class MemorySummary(Summary):
    """A memory task's end of training: the task's name and T, held-out examples."""

    task: str = ""
    length: int = 0
    examples: list[AddingExample | CopyExample] = field(default_factory=list)


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

    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> MemorySummary:
        """The held-out metrics and ``samples`` held-out examples with the model's answers."""
        out = MemorySummary(**Summary.of(result), task=self.name, length=self.cfg.length)
        if samples > 0:
            out.examples = list(self.examples(model, samples))
        return out

    def examples(self, model, n: int) -> Sequence[AddingExample | CopyExample]:
        """n held-out examples with the model's answers (none by default)."""
        return []


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

    def examples(self, model, n) -> list[AddingExample]:
        x, y = self.valid[0][:, :n], self.valid[1][:n]
        yh = model.out.forward(model.rnn.forward(model.layer_input(x))[0][-1])
        return [
            AddingExample(x[x[:, b, 1] == 1, b, 0].tolist(), float(y[b, 0]), float(yh[b, 0]))
            for b in range(x.shape[1])
        ]


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

    def examples(self, model, n) -> list[CopyExample]:
        x = self.valid[0][:, :n]
        o = model.out.forward(model.rnn.forward(x)[0])
        r = self.cfg.recall
        return [
            CopyExample(x[:r, b].tolist(), o[-r:, b].argmax(-1).tolist()) for b in range(x.shape[1])
        ]


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
