"""Training a language model from Python: ``train_lm(TrainConfig(...))``.

A thin layer over the one training loop (:func:`rnnkit.fit.fit`) and the language-model task
(:mod:`rnnkit.tasks.lm`), kept for its flat config:

    train_lm(TrainConfig(level="char", epochs=5, out="runs/c"), LMConfig(cell="lstm"))
    train_lm(TrainConfig(out="runs/c"), resume=True)        # continues exactly
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import RnnkitError
from .fit import FitConfig, FitResult, TrainingStopped, fit, plot_metrics  # noqa: F401
from .models.lm import LanguageModel, LMConfig
from .rundir import RunDir, load_model, resume_state
from .tasks.lm import LMDataConfig, LMTask

_DATA = {f.name for f in fields(LMDataConfig)} - {"seed", "corpus_hash"}
_FIT = {f.name for f in fields(FitConfig)}


@dataclass
class TrainConfig:
    """Data and training settings of a language model in one flat dataclass."""

    level: str = "word"  # word | char
    corpus: str | None = None  # a UTF-8 text file; None: the embedded corpus
    lower: bool = True  # word level: lower-case before tokenising
    vocab_size: int = 4000  # cap, special tokens included
    max_sentences: int | None = None  # word level: use at most this many sentences
    valid_fraction: float = 0.1
    batch_size: int = 32
    bptt: int = 64  # char level: chunk length (state carried across chunks, no gradient)
    bptt_truncate: int | None = None  # gradient from each output flows back at most k steps
    optimizer: str = "adam"  # sgd | adagrad | rmsprop | adam
    lr: float = 3e-3
    clip_norm: float | None = 5.0
    clip_value: float | None = None
    epochs: int = 20
    time_budget: float | None = None  # seconds; stop (and checkpoint) when spent
    eval_every: int = 1  # epochs
    halve_lr: bool = True  # halve the learning rate when the held-out loss went up
    seed: int = 0
    out: str = "runs/lm"
    progress: bool | None = None  # None: a bar only when stderr is a terminal

    def validate(self) -> TrainConfig:
        self.split()
        return self

    def split(self) -> tuple[LMDataConfig, FitConfig]:
        d = asdict(self)
        data = LMDataConfig(**{k: d[k] for k in _DATA if k in d}, seed=self.seed).validate()
        fitc = FitConfig(**{k: d[k] for k in _FIT if k in d}).validate()
        return data, fitc


@dataclass
class TrainResult:
    valid_nll: float  # average negative log-likelihood per token (nats)
    perplexity: float
    bits_per_token: float
    steps: int
    epochs_done: float
    history: list = field(default_factory=list)
    checkpoint: str = ""
    stopped_by: str = "epochs"  # epochs | time_budget
    best: dict | None = None  # the evaluation row of the lowest held-out loss (in best.npz)
    best_checkpoint: str = ""


@dataclass
class Data:
    vocab: Any  # a Vocab
    train: Any  # word: list of (n,) id arrays; char: (N,) id stream
    valid: Any


def prepare_data(cfg: TrainConfig, vocab=None) -> Data:
    """The corpus read, split and encoded as the LM task does it."""
    data, _ = cfg.split()
    task = LMTask(data, None if vocab is None else ({}, {"vocab": vocab.itos}))
    return Data(task.vocab, task.train, task.valid)


def evaluate(model: LanguageModel, cfg: TrainConfig, data: Data) -> tuple[float, int]:
    """(nll_sum, n_tokens) on the held-out part; the char stream is read as one sequence."""
    total, count, state = 0.0, 0, None
    task = LMTask.__new__(LMTask)
    task.cfg, task.vocab, task.train, task.valid = (
        cfg.split()[0],
        data.vocab,
        data.train,
        data.valid,
    )
    for inp, tgt, lengths in task.batches("valid", None):
        nll, n, s = model.nll(inp, tgt, lengths, state)
        total, count = total + nll, count + n
        state = s if cfg.level == "char" else None
    return total, count


def load_lm(path) -> tuple[LanguageModel, object, dict, dict]:
    """(model, vocab, meta, arrays) from a language-model checkpoint or run folder."""
    task, model, meta, arrays = load_model(path, load_data=False)
    if task.name != "lm":
        raise RnnkitError(f"{path} holds a {task.name} model, not a language model")
    return model, task.vocab, meta, arrays


def train_lm(
    cfg: TrainConfig,
    model_cfg: LMConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = True,
    log=print,
) -> TrainResult:
    """Train (or resume) a language model; write checkpoint.npz, metrics.jsonl and loss.png in
    ``cfg.out``. With ``resume`` the checkpoint's model and data settings are used; the fit
    settings (epochs, time budget, ...) come from ``cfg``."""
    data_cfg, fit_cfg = cfg.split()
    with RunDir(cfg.out).open(resume=resume, overwrite=overwrite) as run:
        if resume:
            task, model, meta, arrays = load_model(run.checkpoint)
            rs = resume_state(meta, arrays)
        else:
            task = LMTask(data_cfg)
            model = task.build_model(model_cfg or LMConfig(), seed=fit_cfg.seed)
            rs = None
        res: FitResult = fit(
            task, model, fit_cfg, run, resume_state=rs, log=log, progress=cfg.progress
        )
    m = res.metrics
    return TrainResult(
        valid_nll=m["loss"],
        perplexity=m["ppl"],
        bits_per_token=m["bits"],
        steps=res.steps,
        epochs_done=res.epochs_done,
        history=res.history,
        checkpoint=res.checkpoint,
        stopped_by=res.stopped_by,
        best=res.best,
        best_checkpoint=res.best_checkpoint,
    )
