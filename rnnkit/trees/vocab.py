"""Word -> id for the leaves of trees: a :class:`rnnkit.data.Vocab` with ``<unk>`` at id 0 and an
optional lower-casing of every word before lookup (the SST papers keep case; small data sets
often do better lower-cased)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..data.text import Vocab
from ..errors import RnnkitError
from .tree import Tree

__all__ = ["TreeVocab"]


class TreeVocab:
    """``ids(words)`` -> (n,) int64; unknown words -> ``unk_id`` (0)."""

    def __init__(self, itos: list[str], lower: bool = False) -> None:
        if not itos or itos[0] != Vocab.UNK:
            raise RnnkitError(f"a tree vocabulary must start with {Vocab.UNK!r}")
        self.vocab = Vocab(itos)
        self.lower = bool(lower)

    @classmethod
    def build(
        cls,
        trees: Iterable[Tree],
        *,
        lower: bool = False,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> TreeVocab:
        """The words of ``trees``' leaves, most frequent first (ties: first seen), after
        ``<unk>``; at most ``max_size`` entries; words seen fewer than ``min_count`` times left
        out."""
        seqs = ([w.lower() for w in t.leaves()] if lower else t.leaves() for t in trees)
        v = Vocab.build(seqs, max_size=max_size, specials=(Vocab.UNK,), min_count=min_count)
        return cls(v.itos, lower)

    def __len__(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TreeVocab) and self.lower == other.lower and self.vocab == other.vocab
        )

    def __repr__(self) -> str:
        return f"TreeVocab(size={len(self)}, lower={self.lower})"

    @property
    def unk_id(self) -> int:
        return 0

    def ids(self, words: list[str]) -> np.ndarray:
        return self.vocab.encode([w.lower() for w in words] if self.lower else words)

    def to_json(self) -> dict[str, Any]:
        return {"itos": self.vocab.itos, "lower": self.lower}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> TreeVocab:
        if not isinstance(d, dict) or not isinstance(d.get("itos"), list):
            raise RnnkitError("tree vocabulary JSON must be an object with an 'itos' list")
        return cls(d["itos"], bool(d.get("lower", False)))
