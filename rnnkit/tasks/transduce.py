"""The transduce task: one output digit per input digit, by two kinds of recurrence.

    rnnkit train transduce --problem running-sum --model output     # output-to-hidden (10.2.1)
    rnnkit train transduce --problem delay2 --model hidden          # hidden-to-hidden (10.2)

* ``--model output``: :class:`~rnnkit.models.output_rnn.OutputRNN`, trained with teacher forcing
  (optionally scheduled sampling), evaluated FREE-RUNNING: its own greedy outputs are fed back.
* ``--model hidden``: embedding + any registered cell + linear output on every step
  (:class:`rnnkit.models.tagger.HiddenTagger`); its outputs are never fed back, so free-running
  and teacher-forced evaluation coincide.

Held-out metrics: ``accuracy`` (per step) and ``exact`` (whole sequence), free-running;
``tf_accuracy``: per step with the previous TARGETS fed (teacher forcing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.transduce import PROBLEMS, make_sequences, padded_batches, parse_digits
from ..errors import RnnkitError, check_ints
from ..layers.registry import check_cell
from ..models.output_rnn import OutputRNN, ScheduledSampling
from ..models.tagger import HiddenTagger
from .base import Task
from .registry import register_task
from .results import Predictions, PredictOptions, Summary, Transduced

BASE = 10


@dataclass
class TransduceSummary(Summary):
    """The transduce task's end of training: whether the accuracy is free-running (the output
    model) or per step (the hidden one), and held-out sequences transduced."""

    free_running: bool = True
    examples: list[Transduced] = field(default_factory=list)


@dataclass
class TransduceConfig:
    """The generated data."""

    problem: str = field(
        default="running-sum",
        metadata={
            "help": "running-sum: y(t) = (y(t-1) + x(t)) mod 10 | delay2: y(t) = x(t-2)",
            "choices": list(PROBLEMS),
        },
    )
    n_train: int = field(default=2000, metadata={"help": "training sequences"})
    n_valid: int = field(default=500, metadata={"help": "held-out sequences"})
    min_len: int = field(default=5, metadata={"help": "shortest sequence"})
    max_len: int = field(default=20, metadata={"help": "longest sequence"})
    batch_size: int = field(default=32, metadata={"help": "sequences per batch"})
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> TransduceConfig:
        if self.problem not in PROBLEMS:
            raise RnnkitError(
                f"--problem must be one of {', '.join(PROBLEMS)}, got {self.problem!r}"
            )
        check_ints(self, ("n_train", "n_valid", "min_len", "max_len", "batch_size"))
        if self.min_len > self.max_len:
            raise RnnkitError(f"--min-len {self.min_len} exceeds --max-len {self.max_len}")
        return self


@dataclass
class TransduceModelConfig:
    """Either model; the fields of the other one are ignored."""

    model: str = field(
        default="output",
        metadata={
            "help": "output: output-to-hidden recurrence, teacher forcing | "
            "hidden: hidden-to-hidden RNN",
            "choices": ["output", "hidden"],
        },
    )
    hidden_size: int = field(default=64, metadata={"help": "hidden units"})
    cell: str = field(default="rnn", metadata={"help": "hidden model: recurrent cell"})
    embed_size: int = field(default=16, metadata={"help": "hidden model: digit embedding size"})
    scheduled_sampling: float = field(
        default=0.0,
        metadata={
            "help": "output model: final probability of feeding its own previous prediction "
            "(Bengio et al. 2015; 0: pure teacher forcing)",
            "metavar": "P",
        },
    )
    ss_ramp: int = field(
        default=1000,
        metadata={
            "help": "output model: training steps over which that probability rises linearly from 0"
        },
    )
    ss_greedy: bool = field(
        default=False,
        metadata={"help": "output model: feed its argmax (default: a sample of its distribution)"},
    )
    dtype: str = field(
        default="float32", metadata={"help": "float32 | float64", "choices": ["float32", "float64"]}
    )
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> TransduceModelConfig:
        if self.model not in ("output", "hidden"):
            raise RnnkitError(f"--model must be 'output' or 'hidden', got {self.model!r}")
        check_ints(self, ("hidden_size", "embed_size", "ss_ramp"))
        check_cell(self.cell)
        p = self.scheduled_sampling
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise RnnkitError(f"--scheduled-sampling must lie in [0, 1], got {p!r}")
        return self


@register_task
class TransduceTask(Task):
    name = "transduce"
    Config = TransduceConfig
    ModelConfig = TransduceModelConfig
    loss_label = "loss per output step, teacher forced (nats)"
    description = (
        "Map digit sequences to digit sequences (running sum mod 10, or the input two "
        "steps back) with an output-to-hidden recurrence trained by teacher forcing, or "
        "with a hidden-to-hidden RNN; held-out accuracy is measured free-running."
    )
    fit_defaults = {"lr": 1e-2, "epochs": 20}

    def __init__(self, cfg: TransduceConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        if not load_data:
            self.train = self.valid = None
            return
        rng = np.random.default_rng([cfg.seed, 7])
        self.train = make_sequences(cfg.problem, cfg.n_train, cfg.min_len, cfg.max_len, rng, BASE)
        self.valid = make_sequences(cfg.problem, cfg.n_valid, cfg.min_len, cfg.max_len, rng, BASE)

    def build_model(self, mcfg: TransduceModelConfig, seed: int = 0):
        mcfg.seed = seed
        mcfg.validate()
        model: OutputRNN | HiddenTagger
        if mcfg.model == "output":
            ss = ScheduledSampling(mcfg.scheduled_sampling, mcfg.ss_ramp, mcfg.ss_greedy)
            model = OutputRNN(
                BASE,
                mcfg.hidden_size,
                BASE,
                input_ids=True,
                seed=seed,
                dtype=mcfg.dtype,
                sampling=ss,
            )
        else:
            model = HiddenTagger(
                BASE, mcfg.embed_size, mcfg.hidden_size, mcfg.cell, seed, mcfg.dtype
            )
        model.config = mcfg
        return model

    def batches(self, split: str, rng):
        xs, ys = self.train if split == "train" else self.valid
        return padded_batches(xs, ys, self.cfg.batch_size, rng if split == "train" else None)

    def summarize(self, loss_sum, count, extra):
        tot, seqs = max(extra.get("total", 0), 1), max(extra.get("seqs", 0), 1)
        return {
            "loss": loss_sum / max(count, 1),
            "accuracy": extra.get("correct", 0) / tot,
            "exact": extra.get("exact", 0) / seqs,
            "tf_accuracy": extra.get("tf_correct", 0) / tot,
        }

    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> TransduceSummary:
        """Held-out accuracies and the first ``samples`` held-out sequences, transduced."""
        out = TransduceSummary(**Summary.of(result), free_running=model.config.model == "output")
        if samples > 0 and self.valid is not None:
            xs, ys = self.valid
            for x, y in list(zip(xs, ys))[:samples]:
                out.examples.append(Transduced(x, self.transduce(model, x), y))
        return out

    def transduce(self, model, x: np.ndarray) -> np.ndarray:
        """One input sequence (L,) -> the model's output (L,), free-running for the output model."""
        ids = x[:, None]
        if isinstance(model, OutputRNN):
            return model.run(ids)[0][:, 0]
        return model.predict(ids)[:, 0]

    def predict(self, model, inputs, options: PredictOptions) -> Predictions:
        """For each digit string, the model's output sequence (and the right answer)."""
        if not inputs:
            raise RnnkitError(
                "give one or more digit sequences, e.g. '3 1 4 1 5' (or lines on stdin)"
            )
        f = PROBLEMS[self.cfg.problem]
        out = Predictions()
        for text in inputs:
            x = parse_digits(text, BASE)
            out.rows.append(Transduced(x, self.transduce(model, x), f(x, BASE)))
        return out
