"""Training a language model from Python in one call: ``train_lm(TrainConfig(...))``.

A thin wrapper over the one training loop (:func:`rnnkit.fit.fit`) and the language-model task
(:mod:`rnnkit.tasks.lm`): :class:`TrainConfig` takes, by name, every field of the task's data
config (:class:`~rnnkit.tasks.lm.LMDataConfig`) and of the training config
(:class:`~rnnkit.fit.FitConfig`), flat as ``rnnkit train lm`` takes them as flags, and holds them
as those two configs (nothing is declared twice)::

    train_lm(TrainConfig(level="char", epochs=5, out="runs/c"), LMConfig(cell="lstm"))
    train_lm(TrainConfig(out="runs/c"), resume=True)        # continues exactly
    train_lm(TrainConfig(level="char", epochs=1, out=None))  # in memory: no file is written
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import RnnkitError
from .fit import FitConfig, FitResult, TrainingStopped, evaluate_sums, fit, quiet  # noqa: F401
from .models.lm import LanguageModel, LMConfig
from .rundir import RunDir, resume_state
from .tasks.lm import LMDataConfig, LMTask
from .tasks.runs import load_model

_DATA = {f.name for f in fields(LMDataConfig)} - {"corpus_hash"}
_FIT = {f.name for f in fields(FitConfig)}


@dataclass(init=False)
class TrainConfig:
    """The data and training settings of a language model, given flat.

    ``TrainConfig(**options)`` takes any field of :class:`~rnnkit.tasks.lm.LMDataConfig` and of
    :class:`~rnnkit.fit.FitConfig` by name (``seed`` sets both), plus ``out`` (the run folder;
    None: train in memory) and ``progress`` (None: a bar only when stderr is a terminal); they are
    kept as ``data`` and ``fit``, and read back flat too (``cfg.epochs``). ``dataclasses.replace``
    works with the flat names: ``replace(cfg, epochs=4)``."""

    data: LMDataConfig
    fit: FitConfig
    out: str | None
    progress: bool | None

    def __init__(
        self,
        data: LMDataConfig | None = None,
        fit: FitConfig | None = None,
        out: str | None = "runs/lm",
        progress: bool | None = None,
        **options: Any,
    ):
        unknown = sorted(set(options) - _DATA - _FIT)
        if unknown:
            raise RnnkitError(f"TrainConfig has no option {unknown[0]!r}")
        pick = lambda names: {k: v for k, v in options.items() if k in names}  # noqa: E731
        self.data = replace(data or LMDataConfig(), **pick(_DATA))
        self.fit = replace(fit or FitConfig(), **pick(_FIT))
        self.out, self.progress = out, progress

    def __getattr__(self, name: str) -> Any:
        for part in ("data", "fit"):
            cfg = self.__dict__.get(part)
            if cfg is not None and name in {f.name for f in fields(cfg)}:
                return getattr(cfg, name)
        raise AttributeError(f"TrainConfig has no option {name!r}")

    def validate(self) -> TrainConfig:
        self.data.validate()
        self.fit.validate()
        return self

    def split(self) -> tuple[LMDataConfig, FitConfig]:
        """(data, fit) configs, validated copies."""
        return replace(self.data).validate(), replace(self.fit).validate()


class TrainResult(FitResult):
    """A language model's :class:`~rnnkit.fit.FitResult`, its held-out metrics also by name."""

    @classmethod
    def of(cls, res: FitResult) -> TrainResult:
        return cls(**vars(res))

    @property
    def valid_nll(self) -> float:
        """Average negative log-likelihood per token (nats)."""
        return self.metrics["loss"]

    @property
    def perplexity(self) -> float:
        return self.metrics["ppl"]

    @property
    def bits_per_token(self) -> float:
        return self.metrics["bits"]


@dataclass
class Data:
    vocab: Any  # a Vocab
    train: Any  # word: list of (n,) id arrays; char: (N,) id stream
    valid: Any
    task: LMTask  # the task that read them (its batches, its evaluation)


def prepare_data(cfg: TrainConfig, vocab=None) -> Data:
    """The corpus read, split and encoded by the LM task (``vocab``: use this vocabulary)."""
    data, _ = cfg.split()
    task = LMTask(data, None if vocab is None else ({}, {"vocab": vocab.itos}))
    return Data(task.vocab, task.train, task.valid, task)


def evaluate(model: LanguageModel, cfg: TrainConfig, data: Data) -> tuple[float, int]:
    """(nll_sum, n_tokens) on the held-out part (the char stream read as one sequence), as the
    training loop evaluates it; ``cfg`` is the config ``data`` was prepared with."""
    total, count, _ = evaluate_sums(data.task, model, "valid")
    return total, count


def load_lm(path) -> tuple[LanguageModel, object, dict, dict]:
    """(model, vocab, meta, arrays) from a language-model checkpoint or run folder."""
    task, model, meta, arrays = load_model(path, load_data=False)
    if task.name != "lm":
        raise RnnkitError(f"{path} holds a {task.name} model, not a language model")
    return model, task.vocab, meta, arrays


def train_lm(
    cfg: TrainConfig | None = None,
    model_cfg: LMConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = True,
    log=quiet,
    **options: Any,
) -> TrainResult:
    """Train (or resume) a language model; write checkpoint.npz, best.npz, metrics.jsonl and
    loss.png in ``cfg.out`` (None: in memory, nothing written). ``options`` are TrainConfig
    options applied over ``cfg``. With ``resume`` the checkpoint's model and data settings are
    used; the fit settings (epochs, time budget, ...) come from ``cfg``. Ctrl-C or SIGTERM save the
    position and raise :class:`rnnkit.fit.Interrupted`; a NaN loss raises TrainingStopped."""
    cfg = replace(cfg, **options) if cfg is not None else TrainConfig(**options)
    data_cfg, fit_cfg = cfg.split()
    if cfg.out is None:
        if resume:
            raise RnnkitError("resume needs a run folder (out), not an in-memory run")
        task = LMTask(data_cfg)
        model = task.build_model(model_cfg or LMConfig(), seed=fit_cfg.seed)
        return TrainResult.of(fit(task, model, fit_cfg, None, log=log, progress=cfg.progress))
    with RunDir(cfg.out).open(resume=resume, overwrite=overwrite) as run:
        if resume:
            task, model, meta, arrays = load_model(run.checkpoint)
            rs = resume_state(meta, arrays)
        else:
            task = LMTask(data_cfg)
            model = task.build_model(model_cfg or LMConfig(), seed=fit_cfg.seed)
            rs = None
        res = fit(task, model, fit_cfg, run, resume_state=rs, log=log, progress=cfg.progress)
    return TrainResult.of(res)
