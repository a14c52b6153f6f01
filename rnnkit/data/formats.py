"""Corpus file formats: reading the text files people have into sentences of tokens.

Three formats:

* ``lines``: one sentence per line of raw text (each non-empty line is a sentence, tokenized
  with the treebank tokenizer :func:`rnnkit.data.text.tokenize_treebank`);
* ``tokens``: pre-tokenized text, one sentence per line (the Penn Treebank language-model
  files ``ptb.train.txt``: lower case, ``<unk>``, ``N``, ``do n't``, ``company 's``); each line
  is split on whitespace only and every token is kept as it is;
* ``text``: raw prose; paragraphs (blocks between blank lines, or hard-wrapped lines) are split
  into sentences with :func:`rnnkit.data.text.split_sentences`, then tokenized.

A corpus's own unknown-word token (``unk_token``, ``<unk>`` by default) becomes rnnkit's
``Vocab.UNK`` and is never split, lower-cased or doubled. :func:`detect_format` guesses the
format from a sample of the text.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Iterator

from rnnkit.data.text import (
    _ABBREVS,
    _INITIALISM_RE,
    Vocab,
    split_sentences,
    tokenize_treebank,
)
from rnnkit.errors import RnnkitError

__all__ = ["FORMATS", "detect_format", "iter_sentences", "read_sentences", "read_stream"]

FORMATS = ("lines", "text", "tokens")

# detect_format reads at most this much of the text
_SAMPLE_CHARS = 1 << 20
_SAMPLE_LINES = 5000
# a "text"-format paragraph longer than this is split early while streaming (hard-wrapped
# files without blank lines would otherwise be held whole)
_MAX_BLOCK_CHARS = 1 << 20

_CLITICS = frozenset({"'s", "n't", "'re", "'ve", "'ll", "'m", "'d"})
_DETACHED_PUNCT_RE = re.compile(r"^(?:[,.;:!?)\]}]|``|''|-[LR][RSC]B-)$")
_ATTACHED_PUNCT_RE = re.compile(r"\w[,;:!?)\]]+$")
_ATTACHED_CLITIC_RE = re.compile(r"(?i)\w(?:n't|'(?:s|re|ve|ll|m|d))$")
_TERMINAL_RE = re.compile(r"[.!?:;][\"'”’)\]]*$")
_SENTENCE_END_RE = re.compile(r"\w[.!?][\"'”’)\]]*(?:\s|$)")
_ANGLE_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9_]*>")


def _check_fmt(fmt: str, allow_auto: bool = True) -> None:
    ok = FORMATS + ("auto",) if allow_auto else FORMATS
    if fmt not in ok:
        raise RnnkitError(f"corpus format must be one of {', '.join(ok)}; got {fmt!r}")


def _attached_period(tok: str) -> bool:
    """``tok`` ends with a period glued to a word that is no abbreviation: raw-text evidence."""
    if len(tok) < 2 or tok[-1] != "." or not tok[-2].isalnum():
        return False
    core = tok[:-1].lstrip("\"'(")
    if core.lower() in _ABBREVS or _INITIALISM_RE.fullmatch(core):
        return False
    return not (len(core) == 1 and core.isalpha())


def detect_format(text: str, unk_token: str | None = Vocab.UNK) -> str:
    """Guess the format of a corpus from its beginning: ``"tokens"``, ``"lines"`` or ``"text"``.

    Reads at most the first 5000 lines / 1 MiB. The text is ``tokens`` (pre-tokenized, one
    sentence per line) when whitespace-separated tokens that raw text would not have (the
    unknown token, detached clitics ``'s`` ``n't``, punctuation with a space before it) clearly
    outnumber raw-text signs (punctuation or clitics glued to a word), or when there is no
    glued punctuation at all and no capital letter (lower-cased, pre-tokenized). Otherwise it
    is ``text`` when lines look like paragraphs or hard-wrapped prose (over a quarter of the
    lines hold more than one sentence; or the text ends sentences with punctuation and over a
    quarter of the line breaks fall inside a sentence; or the median line is over 60 words),
    and ``lines`` when most lines are one sentence each.
    """
    if not isinstance(text, str):
        raise RnnkitError(f"detect_format expects a str, got {type(text).__name__}")
    lines = [ln.strip() for ln in text[:_SAMPLE_CHARS].splitlines()[:_SAMPLE_LINES]]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise RnnkitError("cannot detect the format of an empty corpus")

    pretok = raw = 0
    for ln in lines:
        for tok in ln.split():
            if tok == unk_token or tok.lower() in _CLITICS or _DETACHED_PUNCT_RE.match(tok):
                pretok += 1
            elif (
                _ATTACHED_PUNCT_RE.search(tok)
                or _ATTACHED_CLITIC_RE.search(tok)
                or _attached_period(tok)
            ):
                raw += 1
    if pretok >= 2 and pretok > 2 * raw:
        return "tokens"
    if raw == 0 and not any(c.isupper() for ln in lines for c in ln):
        return "tokens"

    multi = sum(len(split_sentences(ln)) > 1 for ln in lines) / len(lines)
    inside = 0
    if any(_SENTENCE_END_RE.search(ln) for ln in lines):  # prose punctuates its sentences
        for prev, nxt in zip(lines, lines[1:]):
            if not _TERMINAL_RE.search(prev) and nxt[0].islower():
                inside += 1
    wrapped = inside / max(1, len(lines) - 1)
    median_words = statistics.median(len(ln.split()) for ln in lines)
    if multi > 0.25 or wrapped > 0.25 or median_words > 60:
        return "text"
    return "lines"


def _unk_pattern(unk_token: str) -> re.Pattern[str]:
    """``unk_token`` as a whole token (not inside a longer word)."""
    pre = r"(?<!\w)" if re.match(r"\w", unk_token) else ""
    post = r"(?!\w)" if re.search(r"\w$", unk_token) else ""
    return re.compile(pre + re.escape(unk_token) + post)


class _Tokenizer:
    """Turns one sentence string into tokens for a resolved format (unknown token mapped)."""

    def __init__(self, fmt: str, lower: bool, unk_token: str | None) -> None:
        self.fmt, self.lower, self.unk = fmt, lower, unk_token
        # the treebank tokenizer keeps <...> markers whole; any other unknown token is
        # replaced by Vocab.UNK before tokenizing so that it is not split
        self.sub = None
        if unk_token and fmt != "tokens" and not _ANGLE_RE.fullmatch(unk_token):
            self.sub = _unk_pattern(unk_token)

    def __call__(self, sentence: str) -> list[str]:
        unk, UNK = self.unk, Vocab.UNK
        if self.fmt == "tokens":
            toks = sentence.split()
            if self.lower:
                return [UNK if t == unk else t.lower() for t in toks]
            return [UNK if t == unk else t for t in toks] if unk and unk != UNK else toks
        if self.sub is not None:
            sentence = self.sub.sub(f" {UNK} ", sentence)
        toks = tokenize_treebank(sentence, lower=self.lower)
        if unk and unk != UNK:
            toks = [UNK if t == unk else t for t in toks]
        return toks


def iter_sentences(
    lines: Iterable[str],
    fmt: str,
    lower: bool | None = None,
    unk_token: str | None = Vocab.UNK,
) -> Iterator[list[str]]:
    """Yield the token list of each sentence of a corpus given line by line (streaming).

    ``lines`` is any iterable of lines (with or without their line ends, e.g. an open text
    file); ``fmt`` is ``"lines"``, ``"tokens"`` or ``"text"`` (resolve ``"auto"`` first with
    :func:`detect_format`). ``lower=None`` lower-cases ``lines`` and ``text`` but keeps
    ``tokens`` as they are (PTB's ``N`` stays ``N``). Empty sentences are skipped. Only one
    paragraph (at most about 1 MiB) is held at a time.
    """
    _check_fmt(fmt, allow_auto=False)
    tok = _Tokenizer(fmt, fmt != "tokens" if lower is None else bool(lower), unk_token)
    first = True
    if fmt != "text":
        for line in lines:
            if first:
                line, first = line.lstrip("\ufeff"), False
            toks = tok(line.strip()) if line and not line.isspace() else None
            if toks:
                yield toks
        return
    block: list[str] = []
    size = 0
    for line in lines:
        if first:
            line, first = line.lstrip("\ufeff"), False
        line = line.rstrip("\r\n")
        if line.strip():
            block.append(line)
            size += len(line) + 1
            if size <= _MAX_BLOCK_CHARS:
                continue
            sents = split_sentences("\n".join(block))
            if len(sents) > 1:  # keep the last, maybe unfinished, sentence
                block, size = sents[-1:], len(sents[-1])
                sents = sents[:-1]
            else:  # one sentence of over 1 MiB: cut it here
                block, size = [], 0
        else:
            sents, block, size = split_sentences("\n".join(block)), [], 0
        for s in sents:
            toks = tok(s)
            if toks:
                yield toks
    for s in split_sentences("\n".join(block)):
        toks = tok(s)
        if toks:
            yield toks


def read_sentences(
    text: str,
    fmt: str = "auto",
    lower: bool | None = None,
    unk_token: str | None = Vocab.UNK,
) -> list[list[str]]:
    """Read a whole corpus into sentences of tokens.

    ``fmt``: ``"auto"`` (:func:`detect_format`), ``"lines"``, ``"tokens"`` or ``"text"``; see
    the module docstring. ``lower=None`` lower-cases ``lines`` / ``text`` and keeps ``tokens``
    as they are. ``unk_token`` (the corpus's own unknown-word token; ``None``: none) becomes
    ``Vocab.UNK``. Returns one list of tokens per non-empty sentence.
    """
    if not isinstance(text, str):
        raise RnnkitError(f"read_sentences expects a str, got {type(text).__name__}")
    _check_fmt(fmt)
    if fmt == "auto":
        fmt = detect_format(text, unk_token)
    return list(iter_sentences(text.splitlines(), fmt, lower, unk_token))


def read_stream(
    text: str,
    fmt: str = "auto",
    lower: bool | None = None,
    unk_token: str | None = Vocab.UNK,
) -> list[str]:
    """One token stream for word-level stream training: each sentence followed by ``</s>``.

    Same arguments as :func:`read_sentences`; returns
    ``s1 + ["</s>"] + s2 + ["</s>"] + ...``.
    """
    out: list[str] = []
    for sent in read_sentences(text, fmt, lower, unk_token):
        out.extend(sent)
        out.append(Vocab.EOS)
    return out
