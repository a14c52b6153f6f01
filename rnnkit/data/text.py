"""Tokenizers, the sentence splitter, the :class:`Vocab` token <-> id mapping, unigram entropy.

Everything here works on plain Python strings and 1-D ``int64`` id arrays; batching into
time-major ``(T, B)`` arrays lives in :mod:`rnnkit.data.batching`, corpus file formats in
:mod:`rnnkit.data.formats`.

The word tokenizer follows the Penn Treebank conventions (:func:`tokenize_treebank`); the
earlier regex tokenizer stays available as :func:`tokenize_simple`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = [
    "tokenize_words",
    "tokenize_treebank",
    "tokenize_simple",
    "split_sentences",
    "tokenize_chars",
    "Vocab",
    "unigram_entropy_bits",
]

# ------------------------------------------------------------------ abbreviations
# Lower-case abbreviations (without their final period) that keep the period as part of the
# token. For the sentence splitter: NEVER_END precede what they abbreviate (titles, "e.g.",
# "vs."), so a period after them never ends a sentence; MAY_END usually precede a name or a
# number but can end a sentence ("... Apple Inc. The next ..."); OFTEN_END ("etc.") end a
# sentence before a capitalised word like any other word.
_ABBREV_NEVER_END = frozenset(
    """mr mrs ms messrs dr prof rev fr hon gen gov sen rep lt col capt cmdr sgt maj adm pres
    supt st mt ft vs cf viz approx esp fig figs vol vols pp e.g i.e""".split()
)
_ABBREV_MAY_END = frozenset(
    """inc ltd co corp cos bros jr sr esq plc llc dept univ assn jan feb mar apr jun jul aug sep
    sept oct nov dec calif conn fla ariz colo mich minn tenn okla""".split()
)
_ABBREV_OFTEN_END = frozenset({"etc", "al"})
_ABBREVS = _ABBREV_NEVER_END | _ABBREV_MAY_END | _ABBREV_OFTEN_END
# Words that typically open a sentence: after a MAY_END abbreviation, an initialism ("U.S.") or
# an initial ("J."), a capitalised next word starts a new sentence only when it is one of these.
_SENTENCE_STARTERS = frozenset(
    """the a an it he she they we i you this that these those there here his her its their our
    my your but and or so yet however in on at for from with by as if when while after before
    although because since what who which how why where some many most all each every one two
    no not then thus also yes mr mrs ms dr according finally typically otherwise instead
    therefore moreover furthermore meanwhile now today note see""".split()
)
# "U.S", "e.g", "a.m", "Ph.D": letter groups of 1-2 joined by periods (the final period cut).
_INITIALISM_RE = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")

# Typographic quotes are read as their ASCII forms.
_QUOTE_MAP = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})

# ------------------------------------------------------------------ treebank tokenizer
# One piece of a word: an initialism with its periods ("U.S.", "e.g.", "Ph.D."), a number with
# decimal / thousands / time separators ("3.14", "1,000,000", "10:30", "2.5m"), or a run of word
# characters with internal apostrophes or periods ("don't", "o'clock", "example.com").
_PIECE = r"""(?:[A-Za-z]{1,2}\.){2,}(?![A-Za-z])
    | \d+(?:[.,:]\d+)+\w*
    | \w+(?:['.]\w+)*"""
_TB_RE = re.compile(
    rf"""
      (?P<special></?[A-Za-z][A-Za-z0-9_]*>)              # <unk>, <s>, </s>, <eos>: one token
    | (?P<quote>``|'')                                    # treebank-style quotes kept as they are
    | (?P<clitic>'(?:[sSmMdD]|ll|LL|re|RE|ve|VE)(?![\w'])  # a clitic standing alone: 's 'll n't
        | '[tT](?=(?:is|IS|was|WAS)\b)                    # 'tis, 'twas -> 't is, 't was
        | '\d\ds\b)                                       # '90s
    | (?P<ellipsis>\.\.\.+|\u2026)
    | (?P<dash>--+|[\u2014\u2013])
    | (?P<word>(?:(?<![\w.\-])[-+](?=\d))?                # sign of a number: -5
        (?:{_PIECE})(?:[-/](?:{_PIECE}))*)               # hyphen / slash compounds
      (?P<dot>\.(?!\.))?                                  # a period right after the word
    | (?P<other>[^\w\s])                                  # any other symbol on its own
    """,
    re.VERBOSE,
)
_CLITIC_END_RE = re.compile(r"(?i)(?:n't|'(?:s|m|d|ll|re|ve))$")
# Multi-word contractions split as in the treebank: "cannot" -> "can not", "gonna" -> "gon na".
_SPLIT_AT = {
    "cannot": 3,
    "gonna": 3,
    "gotta": 3,
    "wanna": 3,
    "gimme": 3,
    "lemme": 3,
    "d'ye": 1,
    "more'n": 4,
}
_NEXT_NONSPACE_RE = re.compile(r"\s*(\S)")


def _split_clitics(word: str, out: list[str]) -> None:
    """Append ``word`` to ``out`` with trailing clitics split off: "we'd've" -> we 'd 've."""
    tail: list[str] = []
    m = _CLITIC_END_RE.search(word)
    while m is not None and m.start() > 0:
        tail.append(word[m.start() :])
        word = word[: m.start()]
        m = _CLITIC_END_RE.search(word)
    if m is not None:  # the word is a clitic itself ("n't" in pre-tokenized text)
        tail.append(word)
        word = ""
    if word:
        k = _SPLIT_AT.get(word.lower())
        if k is not None:
            out.extend((word[:k], word[k:]))
        else:
            out.append(word)
    out.extend(reversed(tail))


def _keeps_period(word: str, text: str, after: int) -> bool:
    """Whether ``word`` followed by "." at ``text[after-1]`` is an abbreviation or initial."""
    low = word.lower()
    if low in _ABBREVS:
        return True
    nxt = _NEXT_NONSPACE_RE.match(text, after)
    if low == "no":  # "No. 5"
        return nxt is not None and nxt.group(1).isdigit()
    # A single capital letter is an initial when a capitalised word follows: "J. R. R. Tolkien".
    return len(word) == 1 and word.isupper() and nxt is not None and nxt.group(1).isupper()


def tokenize_treebank(text: str, lower: bool = False) -> list[str]:
    """Split English ``text`` into tokens following the Penn Treebank conventions.

    * contractions and clitics are split: "don't" -> ``do n't``, "can't" -> ``ca n't``,
      "it's" -> ``it 's``, "we're", "I'm", "they've", "'ll", "'d"; the possessive "'s" too;
      "cannot" -> ``can not``, "gonna" -> ``gon na``; a trailing possessive "'" is a token;
    * abbreviations and initials keep their periods: ``U.S.``, ``e.g.``, ``i.e.``, ``Dr.``,
      ``Mr.``, ``etc.``, ``Inc.``, ``J.`` (before a capitalised word), ``No.`` (before a digit);
    * numbers stay whole: ``3.14``, ``1,000,000``, ``10:30``, ``-5``; so do hyphenated and
      slashed compounds (``U.S.-based``, ``well-known``, ``and/or``) and dotted names
      (``example.com``);
    * every other punctuation mark is its own token; ``...`` and ``--`` are one token each;
    * a period after any other word is split off (the sentence-final period), and when the text
      ends with an abbreviation an extra ``.`` token is added (``in the U.S.`` -> ``U.S.``
      ``.``), as in the treebank itself;
    * markers in angle brackets (``<unk>``, ``<s>``, ``</s>``) are one token and never lower-cased.

    Differences from NLTK's ``TreebankWordTokenizer``: double quotes stay ``"`` (NLTK writes
    ````` and ``''``); a leading single quote is split off ("'quoted" -> ``'`` ``quoted``);
    every non-abbreviation period is split, not only the last one of the string; a final
    abbreviation keeps its period and gets an extra ``.`` (NLTK: ``U.S`` ``.``); ``/ * + = &``
    and dashes are split from words (except inside compounds such as ``and/or``); angle
    markers are kept whole; typographic quotes are read as ASCII ones. Case is used to tell
    initials from words, so lower-casing (``lower=True``) happens after tokenization.

    >>> tokenize_treebank("Don't U.S.-based firms' e.g. 1,000 users pay $3.14?")
    ['Do', "n't", 'U.S.-based', 'firms', "'", 'e.g.', '1,000', 'users', 'pay', '$', '3.14', '?']
    """
    if not isinstance(text, str):
        raise RnnkitError(f"tokenize_treebank expects a str, got {type(text).__name__}")
    text = text.translate(_QUOTE_MAP)
    end = len(text.rstrip())
    out: list[str] = []
    for m in _TB_RE.finditer(text):
        kind = m.lastgroup
        if kind != "word" and kind != "dot":
            out.append(m.group())
            continue
        word, dot = m.group("word"), m.group("dot")
        if word[-1] == ".":  # an initialism such as "U.S."
            out.append(word)
            if m.end() >= end:
                out.append(".")
        elif dot is None:
            _split_clitics(word, out)
        elif _keeps_period(word, text, m.end()):
            out.append(word + ".")
            if m.end() >= end:
                out.append(".")
        else:
            _split_clitics(word, out)
            out.append(".")
    if lower:
        out = [t if t[0] == "<" and t[-1] == ">" and len(t) > 2 else t.lower() for t in out]
    return out


def tokenize_words(text: str, lower: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens: the language models' word tokenizer.

    Penn Treebank conventions (see :func:`tokenize_treebank`): "don't" -> ``do n't``, "it's"
    -> ``it 's``, ``U.S.``, ``e.g.``, ``Dr.``, ``3.14``, ``1,000,000``, ``well-known`` stay
    whole, punctuation is split and a sentence-final period is its own token. With
    ``lower=True`` the tokens are lower-cased (after tokenizing: case tells initials apart).
    The earlier, simpler tokenizer is :func:`tokenize_simple`.

    >>> tokenize_words("Hello, world! Don't.")
    ['hello', ',', 'world', '!', 'do', "n't", '.']
    """
    if not isinstance(text, str):
        raise RnnkitError(f"tokenize_words expects a str, got {type(text).__name__}")
    return tokenize_treebank(text, lower=lower)


# The simple tokenizer: one token is, in order of preference,
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


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def tokenize_simple(text: str, lower: bool = True) -> list[str]:
    """The simple regex tokenizer (rnnkit's word tokenizer before the treebank one).

    Words may contain internal apostrophes or hyphens ("don't", "well-known" stay one token),
    numbers are tokens ("42", "3.14"), every other non-space character is a token of its own
    ("..." is three tokens), and whitespace is dropped. With ``lower=True`` the text is
    lower-cased first.

    >>> tokenize_simple("Hello, world!")
    ['hello', ',', 'world', '!']
    """
    if not isinstance(text, str):
        raise RnnkitError(f"tokenize_simple expects a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    return _WORD_RE.findall(text)


# ------------------------------------------------------------------ sentence splitter
# A candidate sentence end is ".", "!" or "?" (optionally followed by one closing quote or
# bracket) when what follows is whitespace and then a capital letter (optionally after an
# opening quote or bracket), or whitespace that contains a line break. Candidates after
# abbreviations and initials are then vetted by _ends_sentence.
_SENT_END = r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))"
_SENT_SPLIT_RE = re.compile(_SENT_END + r"(?:\s+(?=[\"'“‘(\[]?[A-Z])|[ \t]*\n\s*)")
_BLANK_LINE_RE = re.compile(r"\n[ \t\r\f\v]*\n")
_LAST_WORD_RE = re.compile(r"\S+$")
_FIRST_WORD_RE = re.compile(r"[\"'“‘(\[]*([A-Za-z]+)")
_CLOSERS = "\"'”’)]"
_OPENERS = "\"'“‘(["


def _ends_sentence(block: str, start: int, stop: int) -> bool:
    """Whether the candidate boundary ``block[start:stop]`` (the whitespace) ends a sentence."""
    m = _LAST_WORD_RE.search(block, max(0, start - 64), start)
    word = m.group().rstrip(_CLOSERS) if m else ""
    if not word.endswith(".") or word.endswith(".."):
        return True  # "!", "?", an ellipsis, or no word
    core = word[:-1].lstrip(_OPENERS)
    low = core.lower()
    if low in _ABBREV_NEVER_END:
        return False  # "Dr. Smith", "e.g. This"
    if (
        low in _ABBREV_MAY_END
        or _INITIALISM_RE.fullmatch(core)
        or (len(core) == 1 and core.isupper())
    ):  # "U.S. Army", "J. R. R. Tolkien"
        nxt = _FIRST_WORD_RE.match(block, stop)
        return nxt is not None and nxt.group(1).lower() in _SENTENCE_STARTERS
    return True


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences.

    Blank lines always separate sentences. Inside a block, a sentence ends at ``.``, ``!`` or
    ``?`` (optionally followed by a closing quote or bracket) followed by whitespace and a
    capital letter, or by a line break -- except after an abbreviation that precedes a name
    (``Dr.``, ``Mr.``, ``e.g.``, ``i.e.``, ``vs.``) and, unless the next word is a usual
    sentence opener such as "The" or "It", after an initial (``J. R. R. Tolkien``) or an
    abbreviation that may end a sentence (``Inc.``, ``Jan.``, ``U.S.``). Decimals ("3.14")
    never split: there is no space after their period. Sentences are stripped, inner
    whitespace is kept as is, and empty pieces are dropped.
    """
    if not isinstance(text, str):
        raise RnnkitError(f"split_sentences expects a str, got {type(text).__name__}")
    out: list[str] = []
    for block in _BLANK_LINE_RE.split(text):
        pos = 0
        for m in _SENT_SPLIT_RE.finditer(block):
            if _ends_sentence(block, m.start(), m.end()):
                piece = block[pos : m.start()].strip()
                if piece:
                    out.append(piece)
                pos = m.end()
        piece = block[pos:].strip()
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
    strings and are ``None`` when absent. Which entries are special is recorded exactly
    (:attr:`specials`, :meth:`is_special`): by default the entries equal to one of
    :attr:`SPECIALS`, never a token that merely looks like one (a literal ``<`` at character
    level is an ordinary token).
    """

    UNK = "<unk>"
    BOS = "<s>"
    EOS = "</s>"
    PAD = "<pad>"
    SPECIALS = (PAD, UNK, BOS, EOS)

    def __init__(self, itos: Sequence[str], specials: Sequence[str] | None = None) -> None:
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
        if specials is None:
            specials = [t for t in self.SPECIALS if t in stoi]
        else:
            specials = list(specials)
            for tok in specials:
                if not isinstance(tok, str) or tok not in stoi:
                    raise RnnkitError(f"special token {tok!r} is not in the vocabulary")
            if len(set(specials)) != len(specials):
                raise RnnkitError(f"duplicate special tokens: {specials}")
        self._itos = itos
        self._stoi = stoi
        self._specials = tuple(sorted(specials, key=stoi.__getitem__))

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        token_seqs: Iterable[Sequence[str]],
        max_size: int | None = None,
        specials: Sequence[str] = SPECIALS,
        min_count: int = 1,
    ) -> Vocab:
        """Build a vocabulary from token sequences.

        Specials get ids ``0 .. len(specials)-1`` in the given order (``PAD``, when present,
        must come first so that it is id 0). The remaining slots go to the most frequent
        tokens seen at least ``min_count`` times; ties are broken by first appearance, so the
        result is deterministic. ``len(vocab) <= max_size`` when ``max_size`` is given.
        """
        counts: Counter[str] = Counter()  # insertion order == first appearance
        for seq in token_seqs:
            if isinstance(seq, str):
                raise RnnkitError(
                    "Vocab.build expects an iterable of token sequences, got a str "
                    "(wrap a single token list in a list)"
                )
            counts.update(seq)
        return cls.from_counts(counts, max_size=max_size, specials=specials, min_count=min_count)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        max_size: int | None = None,
        specials: Sequence[str] = SPECIALS,
        min_count: int = 1,
    ) -> Vocab:
        """Build a vocabulary from token counts (as :meth:`build`, for streamed corpora).

        ``counts`` maps token -> count; its iteration order is the first-appearance order
        used to break ties (a ``Counter`` filled while reading keeps it). Tokens equal to one
        of ``specials`` are not counted as ordinary tokens.
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
        special_set = set(specials)
        # sorted() is stable, so equal counts keep first-appearance order.
        ranked = sorted(
            (tok for tok, c in counts.items() if c >= min_count and tok not in special_set),
            key=lambda tok: -counts[tok],
        )
        if max_size is not None:
            ranked = ranked[: int(max_size) - len(specials)]
        return cls(specials + ranked, specials=specials)

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
    def specials(self) -> tuple[str, ...]:
        """The special entries (``<pad>``, ``<unk>``, ...), in id order."""
        return self._specials

    def is_special(self, token: str) -> bool:
        """True only for the exact strings of this vocabulary's special entries."""
        return token in self._specials

    @property
    def num_regular(self) -> int:
        """Number of ordinary (non-special) tokens: ``len(vocab) - len(vocab.specials)``."""
        return len(self._itos) - len(self._specials)

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
        """A plain JSON-able dict: ``{"itos": [token, ...]}``, plus ``"specials"`` when they
        are not the default (the entries equal to one of :attr:`SPECIALS`)."""
        d: dict[str, Any] = {"itos": list(self._itos)}
        if self._specials != tuple(t for t in self._itos if t in self.SPECIALS):
            d["specials"] = list(self._specials)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Vocab:
        """Inverse of :meth:`to_json`."""
        if not isinstance(d, dict) or "itos" not in d:
            raise RnnkitError("vocabulary JSON must be an object with an 'itos' list")
        itos = d["itos"]
        if not isinstance(itos, list):
            raise RnnkitError("vocabulary JSON 'itos' must be a list of strings")
        specials = d.get("specials")
        if specials is not None and not isinstance(specials, list):
            raise RnnkitError("vocabulary JSON 'specials' must be a list of strings")
        return cls(itos, specials=specials)


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
