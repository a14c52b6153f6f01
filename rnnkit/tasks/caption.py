"""The caption task: describe rendered images of shapes in words (vector to sequence, 10.2.4).

    rnnkit train caption --condition both --time-budget 60
    rnnkit predict runs/caption picture.png        # "a small red circle at the top left"

Nothing is downloaded: the images are rendered by :mod:`rnnkit.data.shapes` (one shape of 3
kinds, 6 colours, 2 sizes, 5 positions: 180 captions). Held-out images are new renderings;
``--unseen-pairs K`` also keeps K (shape, colour) pairs out of training, and ``exact_unseen``
reports how often their captions come out right.

Held-out metrics (greedy decoding): ``exact`` (whole caption right), ``word_accuracy`` (position
by position against the reference, </s> included); ``tf_accuracy``: next-word accuracy with the
reference words fed (teacher forcing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.batching import pad_batch
from ..data.shapes import (
    BOS,
    EOS,
    WORD_ID,
    WORDS,
    all_attributes,
    decode_caption,
    encode_caption,
    make_dataset,
    parse_caption,
    read_png,
    resize_nearest,
    split_pairs,
)
from ..errors import RnnkitError, check_ints
from ..models.captioner import Captioner, CaptionerConfig
from .base import Task
from .registry import register_task
from .results import Captioned, Predictions, PredictOptions, Summary


@dataclass
class CaptionSummary(Summary):
    """The caption task's end of training: how many captions there are (chance of an exact one
    is 1 / n_captions), the share of greedy captions naming each attribute right (None without
    held-out data), and (caption, reference) examples."""

    n_captions: int = 0
    attributes: dict[str, float] | None = None
    examples: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CaptionConfig:
    """The rendered images."""

    image_size: int = field(default=32, metadata={"help": "images are S x S RGB"})
    n_train: int = field(default=4000, metadata={"help": "training images"})
    n_valid: int = field(default=500, metadata={"help": "held-out images (new renderings)"})
    noise: float = field(default=0.05, metadata={"help": "background noise amplitude"})
    unseen_pairs: int = field(
        default=0,
        metadata={
            "help": "(shape, colour) pairs never shown in training (0-6); the held-out set has them"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "images per batch"})
    seed: int = field(default=0, metadata={"cli": False})

    def validate(self) -> CaptionConfig:
        check_ints(self, ("image_size", "n_train", "n_valid", "batch_size"))
        if self.image_size < 16:
            raise RnnkitError(f"--image-size must be >= 16, got {self.image_size}")
        if not isinstance(self.noise, (int, float)) or not 0 <= self.noise <= 0.5:
            raise RnnkitError(f"--noise must lie in [0, 0.5], got {self.noise!r}")
        if (
            isinstance(self.unseen_pairs, bool)
            or not isinstance(self.unseen_pairs, int)
            or not 0 <= self.unseen_pairs <= 6
        ):
            raise RnnkitError(
                f"--unseen-pairs must be an integer in [0, 6], got {self.unseen_pairs!r}"
            )
        return self


def caption_batch(images: np.ndarray, captions: list[str]) -> tuple:
    """(images, inputs (T, B) = <s> + words, targets (T, B) = words + </s>, lengths or None)."""
    enc = [encode_caption(c) for c in captions]
    inp, lengths = pad_batch([np.concatenate([[WORD_ID[BOS]], e]) for e in enc])
    tgt, _ = pad_batch([np.concatenate([e, [WORD_ID[EOS]]]) for e in enc])
    return images, inp, tgt, (None if lengths.min() == inp.shape[0] else lengths)


def attribute_accuracy(model, images: np.ndarray, captions: list[str], batch: int = 256) -> dict:
    """The share of greedy captions that name each attribute right: {size, colour, shape,
    position}."""
    hits = dict.fromkeys(("size", "colour", "shape", "position"), 0)
    for i in range(0, len(captions), batch):
        dec = model.greedy(images[i : i + batch])
        for k, ref in enumerate(captions[i : i + batch]):
            got, want = parse_caption(decode_caption(dec[:, k])), parse_caption(ref)
            for a in hits:
                hits[a] += got[a] == want[a]
    return {a: h / max(len(captions), 1) for a, h in hits.items()}


@register_task
class CaptionTask(Task):
    name = "caption"
    Config = CaptionConfig
    ModelConfig = CaptionerConfig
    loss_label = "loss per word, teacher forced (nats)"
    description = (
        "Caption images of coloured shapes that rnnkit renders itself ('a small red "
        "circle at the top left'): an MLP image encoder and a recurrent decoder "
        "conditioned on its vector, trained jointly; greedy decoding is evaluated."
    )
    fit_defaults = {"lr": 3e-3, "epochs": 15}

    def __init__(self, cfg: CaptionConfig, state=None, load_data: bool = True):
        super().__init__(cfg.validate())
        if state is not None:
            words = (state[1] or {}).get("words")
            if words != WORDS:
                raise RnnkitError(
                    "this caption checkpoint was trained with another vocabulary; "
                    "retrain it with this version"
                )
        self.seen, self.unseen = split_pairs(cfg.unseen_pairs, cfg.seed)
        if not load_data:
            self.train = self.valid = self.valid_unseen = None
            return
        rng = np.random.default_rng([cfg.seed, 5])
        self.train = make_dataset(
            cfg.n_train, cfg.image_size, rng, cfg.noise, self.seen if self.unseen else None
        )
        self.valid = make_dataset(cfg.n_valid, cfg.image_size, rng, cfg.noise)
        self.unseen_mask = np.array([(a[2], a[1]) in self.unseen for a in self.valid[2]])

    def build_model(self, mcfg: CaptionerConfig, seed: int = 0) -> Captioner:
        mcfg.image_size, mcfg.vocab_size = self.cfg.image_size, len(WORDS)
        mcfg.bos_id, mcfg.eos_id, mcfg.seed = WORD_ID[BOS], WORD_ID[EOS], seed
        return Captioner(mcfg)

    def batches(self, split: str, rng):
        imgs, caps, _ = self.train if split == "train" else self.valid
        n, B = len(caps), self.cfg.batch_size
        order = rng.permutation(n) if split == "train" else np.arange(n)
        out = []
        for i in range(0, n, B):
            idx = order[i : i + B]
            batch = caption_batch(imgs[idx], [caps[j] for j in idx])
            if split != "train" and self.unseen:
                batch = (*batch, self.unseen_mask[idx])  # counted apart: exact_unseen
            out.append(batch)
        return out

    def summarize(self, loss_sum, count, extra):
        seqs, words = max(extra.get("seqs", 0), 1), max(extra.get("words", 0), 1)
        m = {
            "loss": loss_sum / max(count, 1),
            "exact": extra.get("exact", 0) / seqs,
            "word_accuracy": extra.get("word_correct", 0) / words,
            "tf_accuracy": extra.get("tf_correct", 0) / max(count, 1),
        }
        if "group" in extra:
            m["exact_unseen"] = extra["exact_group"] / max(extra["group"], 1)
        return m

    def state_dict(self):
        return {}, {"words": WORDS}

    # -- what a person sees ----------------------------------------------------------------------
    def after_training(self, model, result, samples: int = 5, seed: int = 0) -> CaptionSummary:
        """Held-out caption accuracies, per attribute, and the first ``samples`` captions."""
        out = CaptionSummary(**Summary.of(result), n_captions=len(all_attributes()))
        if self.valid is None:
            return out
        imgs, caps, _ = self.valid
        out.attributes = attribute_accuracy(model, imgs, caps)
        if samples > 0:
            dec = model.greedy(imgs[:samples])
            out.examples = [
                (decode_caption(dec[:, k]), caps[k]) for k in range(min(samples, len(caps)))
            ]
        return out

    def predict(self, model, inputs, options: PredictOptions) -> Predictions:
        """The caption of each PNG file (8-bit RGB/RGBA, resized to the model's size)."""
        if not inputs:
            raise RnnkitError("give one or more PNG files (or their paths on stdin)")
        S = model.config.image_size
        imgs = np.stack([resize_nearest(read_png(p), S) for p in inputs])
        dec = model.greedy(imgs)
        return Predictions([Captioned(p, decode_caption(dec[:, k])) for k, p in enumerate(inputs)])
