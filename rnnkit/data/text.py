"""Tokenizers, the :class:`Vocab` token <-> id mapping, and unigram entropy.

Everything here works on plain Python strings and 1-D ``int64`` id arrays; batching into
time-major ``(T, B)`` arrays lives in :mod:`rnnkit.data.batching`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = [
    "tokenize_words",
    "split_sentences",
    "tokenize_chars",
    "Vocab",
    "unigram_entropy_bits",
]

# One token is, in order of preference:
#   1. a decimal number with a fractional part, e.g. "3.14" (so "." is not split out of it);
#   2. a run of word characters (letters, digits, "_") optionally joined by single internal
#      apostrophes (ASCII ' or typographic ’) or hyphens: "don't", "well-known", "x86-64",
#      "__init__", "42";
#   3. any other single non-whitespace character: each punctuation mark is its own token.
# Whitespace is never part of a token and is dropped.
_WORD_RE = re.compile(
    r"""
    \d+\.\d+                 # decimal number
    | \w+(?:['’\-]\w+)*      # word, possibly with internal apostrophes / hyphens
    | [^\w\s]                # a single punctuation / symbol character
    """,
    re.VERBOSE,
)

# A sentence ends at ".", "!" or "?" (optionally followed by one closing quote or bracket) when
# what follows is whitespace and then a capital letter (optionally after an opening quote or
# bracket), or whitespace that contains a line break.
_SENT_END = r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))"
_SENT_SPLIT_RE = re.compile(
    _SENT_END + r"(?:\s+(?=[\"'“‘(\[]?[A-Z])|[ \t]*\n\s*)"
)
_BLANK_LINE_RE = re.compile(r"\n[ \t\r\f\v]*\n")


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def tokenize_words(text: str, lower: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens.

    Words may contain internal apostrophes or hyphens ("don't", "well-known" stay one token),
    numbers are tokens ("42", "3.14"), every other non-space character is a token of its own,
    and whitespace is dropped. With ``lower=True`` the text is lower-cased first.

    >>> tokenize_words("Hello, world!")
    ['hello', ',', 'world', '!']
    """
    if not isinstance(text, str):
        raise RnnkitError(f"tokenize_words expects a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    return _WORD_RE.findall(text)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences.

    Blank lines always separate sentences. Inside a block, a sentence ends at ``.``, ``!`` or
    ``?`` followed by whitespace and a capital letter, or by a line break. Sentences are
    stripped, inner whitespace is kept as is, and empty pieces are dropped.
    """
    if not isinstance(text, str):
        raise RnnkitError(f"split_sentences expects a str, got {type(text).__name__}")
    out: list[str] = []
    for block in _BLANK_LINE_RE.split(text):
        for piece in _SENT_SPLIT_RE.split(block):
            piece = piece.strip()
            if piece:
                out.append(piece)
    return out


def tokenize_chars(text: str) -> list[str]:
    """Split ``text`` into single characters (whitespace included): ``list(text)``."""
    if not isinstance(text, str):
        raise RnnkitError(f"tokenize_chars expects a str, got {type(text).__name__}")
    return list(text)


class Vocab:
    """A fixed, ordered token list with a token -> id map.

    ``itos[i]`` is the token with id ``i``. Special tokens are ordinary entries of ``itos``;
    the ``pad_id`` / ``unk_id`` / ``bos_id`` / ``eos_id`` properties look them up by their
    strings and are ``None`` when absent.
    """

    UNK = "<unk>"
    BOS = "<s>"
    EOS = "</s>"
    PAD = "<pad>"

    def __init__(self, itos: Sequence[str]) -> None:
        itos = list(itos)
        if not itos:
            raise RnnkitError("vocabulary is empty")
        stoi: dict[str, int] = {}
        for i, tok in enumerate(itos):
            if not isinstance(tok, str):
                raise RnnkitError(f"vocabulary entry {i} is not a str: {tok!r}")
            if tok in stoi:
                raise RnnkitError(f"duplicate token in vocabulary: {tok!r}")
            stoi[tok] = i
        if self.PAD in stoi and stoi[self.PAD] != 0:
            raise RnnkitError(f"{self.PAD!r} must have id 0, not {stoi[self.PAD]}")
        self._itos = itos
        self._stoi = stoi

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        token_seqs: Iterable[Sequence[str]],
        max_size: int | None = None,
        specials: Sequence[str] = (PAD, UNK, BOS, EOS),
        min_count: int = 1,
    ) -> "Vocab":
        """Build a vocabulary from token sequences.

        Specials get ids ``0 .. len(specials)-1`` in the given order (``PAD``, when present,
        must come first so that it is id 0). The remaining slots go to the most frequent
        tokens seen at least ``min_count`` times; ties are broken by first appearance, so the
        result is deterministic. ``len(vocab) <= max_size`` when ``max_size`` is given.
        """
        specials = list(specials)
        if len(set(specials)) != len(specials):
            raise RnnkitError(f"duplicate special tokens: {specials}")
        if cls.PAD in specials and specials[0] != cls.PAD:
            raise RnnkitError(f"{cls.PAD!r} must be the first special token so that it is id 0")
        if max_size is not None:
            if not _is_int(max_size):
                raise RnnkitError(f"max_size must be an int or None, got {max_size!r}")
            if max_size < len(specials) + 1:
                raise RnnkitError(
                    f"max_size={max_size} is too small: need at least {len(specials) + 1} "
                    f"({len(specials)} special tokens + 1)"
                )
        if not _is_int(min_count) or min_count < 1:
            raise RnnkitError(f"min_count must be an int >= 1, got {min_count!r}")

        counts: Counter[str] = Counter()  # insertion order == first appearance
        for seq in token_seqs:
            if isinstance(seq, str):
                raise RnnkitError(
                    "Vocab.build expects an iterable of token sequences, got a str "
                    "(wrap a single token list in a list)"
                )
            counts.update(seq)
        special_set = set(specials)
        # sorted() is stable, so equal counts keep first-appearance order.
        ranked = sorted(
            (tok for tok, c in counts.items() if c >= min_count and tok not in special_set),
            key=lambda tok: -counts[tok],
        )
        if max_size is not None:
            ranked = ranked[: int(max_size) - len(specials)]
        return cls(specials + ranked)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    @property
    def itos(self) -> list[str]:
        """The id -> token list (a copy)."""
        return list(self._itos)

    @property
    def pad_id(self) -> int | None:
        return self._stoi.get(self.PAD)

    @property
    def unk_id(self) -> int | None:
        return self._stoi.get(self.UNK)

    @property
    def bos_id(self) -> int | None:
        return self._stoi.get(self.BOS)

    @property
    def eos_id(self) -> int | None:
        return self._stoi.get(self.EOS)

    def id(self, token: str) -> int:
        """Id of ``token``; unknown tokens map to ``unk_id`` (RnnkitError if there is no UNK)."""
        i = self._stoi.get(token)
        if i is not None:
            return i
        unk = self.unk_id
        if unk is None:
            raise RnnkitError(f"unknown token {token!r} and the vocabulary has no {self.UNK!r}")
        return unk

    def token(self, id: int) -> str:
        """Token with id ``id``; RnnkitError when out of range."""
        if not _is_int(id):
            raise RnnkitError(f"token id must be an int, got {id!r}")
        if not 0 <= id < len(self._itos):
            raise RnnkitError(f"token id {id} out of range for vocabulary of size {len(self)}")
        return self._itos[int(id)]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Map tokens to ids: returns an ``int64`` array of shape ``(len(tokens),)``.

        Unknown tokens map to ``unk_id``; without an UNK entry they raise RnnkitError.
        """
        if isinstance(tokens, str):
            raise RnnkitError("Vocab.encode expects a sequence of tokens, not a str")
        stoi = self._stoi
        unk = self.unk_id
        out = np.empty(len(tokens), dtype=np.int64)
        for k, tok in enumerate(tokens):
            i = stoi.get(tok)
            if i is None:
                if unk is None:
                    raise RnnkitError(
                        f"unknown token {tok!r} and the vocabulary has no {self.UNK!r}"
                    )
                i = unk
            out[k] = i
        return out

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Map ids of shape ``(n,)`` back to ``n`` tokens; RnnkitError when out of range."""
        arr = np.asarray(ids)
        if arr.size == 0:
            return []
        if arr.ndim != 1:
            raise RnnkitError(f"Vocab.decode expects a 1-D id array, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise RnnkitError(f"Vocab.decode expects integer ids, got dtype {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= len(self._itos):
            bad = lo if lo < 0 else hi
            raise RnnkitError(f"token id {bad} out of range for vocabulary of size {len(self)}")
        itos = self._itos
        return [itos[i] for i in arr.tolist()]

    # ------------------------------------------------------------------ serialisation
    def to_json(self) -> dict[str, Any]:
        """A plain JSON-able dict: ``{"itos": [token, ...]}``."""
        return {"itos": list(self._itos)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Vocab":
        """Inverse of :meth:`to_json`."""
        if not isinstance(d, dict) or "itos" not in d:
            raise RnnkitError("vocabulary JSON must be an object with an 'itos' list")
        itos = d["itos"]
        if not isinstance(itos, list):
            raise RnnkitError("vocabulary JSON 'itos' must be a list of strings")
        return cls(itos)


def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy, in bits per token, of the empirical unigram distribution of ``ids``.

    ``ids`` is an integer array of any shape (flattened) with values in ``[0, vocab_size)``.
    This is the cross-entropy a context-free model would reach, the baseline against which a
    char model's bits/char is compared.
    """
    arr = np.asarray(ids)
    if arr.size == 0:
        raise RnnkitError("unigram_entropy_bits needs at least one id")
    if not np.issubdtype(arr.dtype, np.integer):
        raise RnnkitError(f"unigram_entropy_bits expects integer ids, got dtype {arr.dtype}")
    if not _is_int(vocab_size) or vocab_size < 1:
        raise RnnkitError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
    flat = arr.ravel()
    lo, hi = int(flat.min()), int(flat.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise RnnkitError(f"id {bad} out of range for vocab_size {vocab_size}")
    counts = np.bincount(flat, minlength=int(vocab_size)).astype(np.float64)
    p = counts[counts > 0] / flat.size
    h = float(-(p * np.log2(p)).sum())
    return 0.0 if math.isclose(h, 0.0, abs_tol=1e-15) else h
