"""The built-in English corpus and reading corpus files.

The default corpus needs no download: it is the prose of the Python language reference that
CPython ships as ``pydoc_data.topics`` (about 465K characters of reST-derived text). Code
examples, grammar rules, tables, headings and markup are removed, leaving one paragraph of
plain English per line.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from rnnkit.data.text import split_sentences
from rnnkit.errors import RnnkitError

__all__ = ["default_corpus_text", "default_sentences", "load_text"]

MIN_SENTENCE_WORDS = 3
MAX_SENTENCE_WORDS = 40

_UNDERLINE_RE = re.compile(r"^([*=\-~^#+])\1{2,}$")  # reST heading underline
_RUBRIC_RE = re.compile(r"^-\[ .* \]-$")  # "-[ Footnotes ]-"
_ITEM_RE = re.compile(r"^(\* |- |\d+\. |\[\d+\] )")  # list item / footnote start
_FOOTNOTE_REF_RE = re.compile(r"\s*\[\d+\]")
# **strong** and *emphasis* (not touching quoted code such as "*args" or "x*y")
_STRONG_RE = re.compile(r'(?<![\w"*])\*\*([^\s*"](?:[^*"]*?[^\s*"])?)\*\*(?![\w"*])')
_EMPH_RE = re.compile(r'(?<![\w"*])\*([^\s*"](?:[^*"]*?[^\s*"])?)\*(?![\w"*])')
_QUOTED_EMPH_RE = re.compile(r'\*("[^"*]*")\*')  # *"quoted"*
_TABLE_RE = re.compile(r"^[|+]")  # table rows and borders
_PROSE_END_RE = re.compile(r"[.!?:][\"')\]]*$")  # a paragraph must end like a sentence
_SPACE_RE = re.compile(r"\s+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def _mostly_non_letters(line: str) -> bool:
    chars = [c for c in line if not c.isspace()]
    if not chars:
        return True
    return sum(c.isalpha() for c in chars) < 0.6 * len(chars)


def _clean_paragraph(lines: list[str]) -> str:
    text = " ".join(lines)
    text = _ITEM_RE.sub("", text.lstrip())
    text = _FOOTNOTE_REF_RE.sub("", text)
    text = text.replace("“\"", "\"").replace("\"”", "\"")  # “"code"” -> "code"
    text = _QUOTED_EMPH_RE.sub(r"\1", text)
    text = _STRONG_RE.sub(r"\1", text)
    text = _EMPH_RE.sub(r"\1", text)
    text = text.replace("``", "")
    text = text.translate(_QUOTES)
    return _SPACE_RE.sub(" ", text).strip()


def clean_topic_text(raw: str) -> list[str]:
    """Turn one pydoc topic text into a list of plain-prose paragraphs (one string each).

    Rules: headings (a line followed by an ``***``/``===``/``---`` underline) and rubrics are
    dropped; indented lines (code, grammar rules, examples, nested blocks) are dropped, except
    the continuation lines of a top-level list item or footnote; lines that are mostly not
    letters (tables, underlines, operators) are dropped; list markers, footnote references and
    ``*``/``**``/``````` markup are removed; wrapped lines are joined into one paragraph.
    """
    lines = raw.split("\n")
    paragraphs: list[str] = []
    current: list[str] = []
    cont_indent = 0  # indentation of continuation lines of the current list item / footnote

    def flush() -> None:
        nonlocal cont_indent
        if current:
            para = _clean_paragraph(current)
            if para and _PROSE_END_RE.search(para) and not _mostly_non_letters(para):
                paragraphs.append(para)
            current.clear()
        cont_indent = 0

    for i, line in enumerate(lines):
        line = line.rstrip()
        nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        if not line:
            flush()
            continue
        indent = len(line) - len(line.lstrip())
        if indent:
            if current and cont_indent and indent == cont_indent:
                current.append(line.strip())
            else:
                flush()
            continue
        if _UNDERLINE_RE.match(line) or _RUBRIC_RE.match(line) or _TABLE_RE.match(line):
            flush()
            continue
        if _UNDERLINE_RE.match(nxt) and len(nxt) == len(line):
            flush()  # a heading
            continue
        item = _ITEM_RE.match(line)
        if item:
            flush()
            cont_indent = len(item.group(1))
        current.append(line)
    flush()
    return paragraphs


@functools.lru_cache(maxsize=1)
def default_corpus_text() -> str:
    """The built-in English corpus: cleaned ``pydoc_data.topics`` prose, one paragraph per line.

    Topics are taken in sorted-key order, so the text is deterministic for a given Python
    version. The result is cached.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # pragma: no cover - stripped-down Python builds
        raise RnnkitError(
            "the built-in corpus needs the standard-library module pydoc_data; "
            "pass a corpus file instead"
        ) from exc
    paragraphs: list[str] = []
    for key in sorted(topics):
        paragraphs.extend(clean_topic_text(topics[key]))
    return "\n".join(paragraphs) + "\n"


@functools.lru_cache(maxsize=1)
def _all_default_sentences() -> tuple[str, ...]:
    out: list[str] = []
    for paragraph in default_corpus_text().split("\n"):
        for sentence in split_sentences(paragraph):
            if MIN_SENTENCE_WORDS <= len(sentence.split()) <= MAX_SENTENCE_WORDS:
                out.append(sentence)
    return tuple(out)


def default_sentences(max_sentences: int | None = None) -> list[str]:
    """Sentences of the built-in corpus with 3..40 whitespace-separated words, in corpus order.

    ``max_sentences`` keeps only the first that many.
    """
    sentences = _all_default_sentences()
    if max_sentences is None:
        return list(sentences)
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or max_sentences < 1:
        raise RnnkitError(f"max_sentences must be an int >= 1 or None, got {max_sentences!r}")
    return list(sentences[:max_sentences])


def load_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 corpus file and return its text (a leading BOM is dropped).

    Raises RnnkitError when the file is missing, is a directory, cannot be read, is not valid
    UTF-8 (the message gives the offset of the first bad byte), or holds only whitespace.
    """
    p = Path(path)
    if not p.exists():
        raise RnnkitError(f"corpus file not found: {p}")
    if p.is_dir():
        raise RnnkitError(f"corpus path is a directory, not a file: {p}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RnnkitError(f"cannot read corpus file: {p} ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"corpus file is not valid UTF-8: {p} (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise RnnkitError(f"corpus is empty: {p}")
    return text
