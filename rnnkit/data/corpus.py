"""The built-in English corpus and reading corpus files.

The default corpus needs no download: it is the English prose that ships inside the running
Python's own standard library, in this order:

1. the language reference text of ``pydoc_data.topics`` (what ``help()`` shows on language
   topics), topics in sorted-key order;
2. for each ``.py`` file of the standard library (the directory
   ``sysconfig.get_paths()["stdlib"]``, walked in sorted path order), the docstrings of the
   module, its classes and functions, then its full-line ``#`` comments. Files are read as text
   and parsed with :mod:`ast`, **never imported**; test directories (``test``, ``tests``,
   ``idle_test``...), ``test_*.py`` files, ``site-packages`` and files that fail to decode or
   parse are skipped.

Cleaning (docstrings and comments): doctests and their output, indented literal blocks (code
examples, ``Args:`` entries: whatever is indented under a line ending with ``:``), section
headers, reST headings, field lists (``:param x:``), directives, tables, lines that look like
code or are mostly symbols, lines with URLs and whole paragraphs with copyright/licence text
are removed; reST/markdown markup becomes its text (``:func:`x``` and ````x```` -> ``x``,
``*emph*`` -> ``emph``). Docstring summary lines and comments often omit the final period, so a
paragraph that ends in a word is closed with one, and a comment paragraph that starts with a
lower-case word is capitalised. The prose is split with
:func:`rnnkit.data.text.split_sentences` (``e.g.``, ``i.e.`` and initials do not end a
sentence) and a sentence is kept when it has 3..40 words, starts with a capital letter or a
digit, ends with ``.``, ``!`` or ``?``, is at least 75% letters, is not mostly capitals, has
balanced brackets and quotes, no code-ish characters (``` `` ```, ``::``, ``=``, ``<``, ``>``,
``{``, ``*``, ``\\``, ``...``...), no ``return x(``-like pattern and at most one code-ish
token (call, dotted or underscored name) per four words. Exact repeats are dropped (first
occurrence kept).

:func:`default_corpus_text` is **one sentence per line** (trailing newline included), so the
character model reads exactly the sentences the word model trains on
(:func:`default_sentences`). On CPython 3.11 that is about 24,000 sentences, 1.8 million
characters and 290,000 words from about 600 files; the text is deterministic for a given Python
version. Building takes a few seconds (parsing about 730 files), so the text is cached in
``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``) in a file named after the Python version,
:data:`CORPUS_VERSION` and a hash of the cleaning code (this file and
:mod:`rnnkit.data.text`), written atomically (temporary file + ``os.replace``); a missing or
unwritable cache directory silently falls back to building in memory.
"""

from __future__ import annotations

import ast
import functools
import gc
import hashlib
import os
import re
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from rnnkit.data import text as _text_module
from rnnkit.data.text import split_sentences
from rnnkit.errors import RnnkitError

__all__ = ["CORPUS_VERSION", "default_corpus_text", "default_sentences", "load_text"]

#: Version tag of the corpus rules; part of the cache file name (with a hash of the code).
CORPUS_VERSION = "3"

MIN_SENTENCE_WORDS = 3
MAX_SENTENCE_WORDS = 40

# ------------------------------------------------------------------------------ inline markup
# reST heading underline / transition
_UNDERLINE_RE = re.compile(r"^(?P<u>[*=\-~^#+\"'`.])(?P=u){2,}$")
_RUBRIC_RE = re.compile(r"^-\[ .* \]-$")  # "-[ Footnotes ]-"
_ITEM_RE = re.compile(r"^(\* |- |\d+\. |\[\d+\] )")  # list item / footnote start
_FOOTNOTE_REF_RE = re.compile(r"\s*\[(?:\d+|#\w*|\*)\]_?")
# **strong** and *emphasis* (not touching quoted code such as "*args" or "x*y")
_STRONG_RE = re.compile(r'(?<![\w"*])\*\*([^\s*"](?:[^*"]*?[^\s*"])?)\*\*(?![\w"*])')
_EMPH_RE = re.compile(r'(?<![\w"*])\*([^\s*"](?:[^*"]*?[^\s*"])?)\*(?![\w"*])')
_QUOTED_EMPH_RE = re.compile(r'\*("[^"*]*")\*')  # *"quoted"*
_TABLE_RE = re.compile(r"^[|+]")  # table rows and borders
_PROSE_END_RE = re.compile(r"[.!?:][\"')\]]*$")  # a paragraph must end like a sentence
_SPACE_RE = re.compile(r"\s+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
# :role:`text` and :domain:role:`text`; PEPs and RFCs keep their prefix
_PEP_RE = re.compile(r":(pep|rfc):`[^`<]*?(\d+)[^`]*`", re.IGNORECASE)
_ROLE_RE = re.compile(r":(?:[a-z][\w+.-]*:)+`([^`]*)`")
_LITERAL_RE = re.compile(r"``([^`]+)``")
_INTERPRETED_RE = re.compile(r"`([^`]+)`_{0,2}")  # `text`, `link`_, `anonymous`__
_TARGET_RE = re.compile(r"^\s*(.*?)\s*<[^<>]*>\s*$")  # "text <target>" inside a role


def _role_text(m: re.Match) -> str:
    text = m.group(1)
    t = _TARGET_RE.match(text)
    if t and t.group(1):
        return t.group(1)
    text = text.lstrip("!")
    if text.startswith("~"):  # :class:`~a.b.C` shows as C
        text = text[1:].rsplit(".", 1)[-1]
    return text


def _strip_markup(text: str) -> str:
    """Replace reST/markdown inline markup by its text and normalise quotes and spaces."""
    if "`" in text:
        text = _PEP_RE.sub(lambda m: f"{m.group(1).upper()} {m.group(2)}", text)
        text = _ROLE_RE.sub(_role_text, text)
        text = _LITERAL_RE.sub(r"\1", text)
        text = _INTERPRETED_RE.sub(_role_text, text)
    if "[" in text:
        text = _FOOTNOTE_REF_RE.sub("", text)
    if "*" in text:
        text = _QUOTED_EMPH_RE.sub(r"\1", text)
        text = _STRONG_RE.sub(r"\1", text)
        text = _EMPH_RE.sub(r"\1", text)
    if not text.isascii():
        text = text.replace('“"', '"').replace('"”', '"')  # “"code"” -> "code"
        text = text.translate(_QUOTES)
    return _SPACE_RE.sub(" ", text).strip()


_NON_LETTERS_RE = re.compile(r"[\W\d_]+")
_NON_UPPER_RE = re.compile(r"[^A-Z]+")


def _mostly_non_letters(line: str, share: float = 0.6) -> bool:
    """Whether fewer than ``share`` of the non-space characters of ``line`` are letters."""
    nonspace = len(_SPACE_RE.sub("", line))
    return nonspace == 0 or len(_NON_LETTERS_RE.sub("", line)) < share * nonspace


def _clean_paragraph(lines: list[str]) -> str:
    return _strip_markup(_ITEM_RE.sub("", " ".join(lines).lstrip()))


# ------------------------------------------------------------------------------ pydoc topics
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


# ------------------------------------------------------------------------------ docstrings
_SECTION_RE = re.compile(
    r"^(?:args|arguments|parameters|params|keyword arguments|kwargs|returns?|return values?|"
    r"yields?|raises|exceptions|attributes|examples?|example usage|usage|notes?|see also|"
    r"options|methods|variables|functions|classes|constants|properties|warnings?|todo|"
    r"references|inputs?|outputs?|input parameters|synopsis|syntax)\s*:?\s*$",
    re.IGNORECASE,
)
_FIELD_RE = re.compile(r"^:[A-Za-z_][\w .*()-]*:(?:\s|$)")  # ":param x:", ":returns:"
_DIRECTIVE_RE = re.compile(r"^\.\.(?:\s|$)")  # ".. note::", ".. [1]", ".. _target:"
_DOCTEST_RE = re.compile(r"^(?:>>>|\.\.\.)(?:\s|$)")
_URL_RE = re.compile(r"https?:|ftp:|mailto:|://|www\.|(?<=\w)@[\w-]+\.\w")
# searched in lower-cased text (much faster than re.IGNORECASE)
_BOILERPLATE_RE = re.compile(
    r"copyright|licen[cs]|rights reserved|\(c\) \d|©|warrant|hereby granted|without fee| liable|"
    r"disclaim|merchantab|authors? ?:|written by|contributed by|\$id|\$revision|revision:|gencodec"
)
_CODE_LINE_RE = re.compile(
    r"^(?:def \w+\s*\(|class \w+\s*[(:]|import [\w.]+(?:\s*,\s*[\w.]+)*$|from [\w.]+ import |"
    r"(?:return|yield|raise|print)\s*[\w.]*\s*[(\[{=:]|"
    r"(?:if|elif|for|while|with|try|except|else|finally)\b.*:$|@\w|#|\$ |%|"
    r"[\w.\[\]'\"]+\s*[-+*/|&]?=[^=]|[\w.]+\(.*\)\s*$)"
)

# underlines, rubrics, tables, field lists and code: one regex for speed
_DROP_LINE_RE = re.compile(
    "|".join(
        f"(?:{r.pattern})" for r in (_UNDERLINE_RE, _RUBRIC_RE, _TABLE_RE, _FIELD_RE, _CODE_LINE_RE)
    )
)


def _tainted_lines(lines: list[str]) -> set[int]:
    """Indices of the lines of every blank-line-separated block that holds licence text."""
    out: set[int] = set()
    block: list[int] = []
    tainted = False
    for i, line in enumerate(lines + [""]):
        if line.strip():
            block.append(i)
            tainted = tainted or _BOILERPLATE_RE.search(line.lower()) is not None
            continue
        if tainted:
            out.update(block)
        block, tainted = [], False
    return out


def _clean_docstring(doc: str) -> list[str]:
    """Split a (``inspect.cleandoc``-ed) docstring or comment block into prose paragraphs.

    Paragraphs end at blank lines, at changes of indentation and around anything dropped.
    Dropped: doctest lines and their output (up to the next blank line); literal blocks (the
    lines indented under a line ending with ``:`` or ``::``, such as code examples and
    ``Args:`` entries); section headers (``Args:``, ``Returns``...) and reST headings with
    their underline; field-list lines (``:param x:``); directives (``.. note::``) with their
    body; tables; lines that look like code, are mostly symbols, or hold a URL; whole blocks
    that hold copyright/licence text. A paragraph that starts in the middle of a sentence (after
    a dropped line or an indentation change) loses its first sentence: it is marked with a
    leading ``\\x00`` that :func:`_keep_sentence` rejects.
    """
    lines = [line.rstrip() for line in doc.expandtabs(8).split("\n")]
    tainted = _tainted_lines(lines) if _BOILERPLATE_RE.search(doc.lower()) else set()
    has_url = _URL_RE.search(doc) is not None
    paragraphs: list[str] = []
    current: list[str] = []
    cur_indent = cont_indent = -1  # indentation of the current paragraph / list continuation
    broken = False  # the next paragraph starts in the middle of a sentence
    in_doctest = False
    literal_indent = -1  # while >= 0, lines indented more than this are a literal block

    def flush() -> None:
        nonlocal cur_indent, cont_indent
        if current:
            para = _clean_paragraph(current)
            if para:
                paragraphs.append(para)
            current.clear()
        cur_indent = cont_indent = -1

    def drop(line: str) -> None:
        nonlocal broken
        flush()
        broken = not line.endswith((".", "!", "?", ":"))

    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            flush()
            in_doctest = broken = False
            continue
        indent = len(line) - len(stripped)
        if literal_indent >= 0:
            if indent > literal_indent:
                flush()
                continue
            literal_indent = -1
        if in_doctest or _DOCTEST_RE.match(stripped):
            in_doctest = True
            flush()
            continue
        if i in tainted:
            flush()
            continue
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if (
            (_UNDERLINE_RE.match(nxt) and len(nxt) >= len(stripped) - 2)
            or _SECTION_RE.match(stripped)
            or _DIRECTIVE_RE.match(stripped)
            or stripped.endswith(":")
        ):
            # a heading, a section header, a directive, or a line introducing a nested block
            drop(stripped)
            literal_indent = indent
            continue
        if (
            _DROP_LINE_RE.match(stripped)
            or (has_url and _URL_RE.search(stripped))
            or _mostly_non_letters(stripped, 0.5)
        ):
            drop(stripped)
            continue
        item = _ITEM_RE.match(stripped)
        if item:
            flush()
            broken = False
            cont_indent = indent + len(item.group(1))
            cur_indent = indent
        elif current and indent != cur_indent and indent != cont_indent:
            # the indentation changed inside a block: a new paragraph, maybe mid-sentence
            broken = not current[-1].endswith((".", "!", "?"))
            flush()
        if not current:
            if cur_indent < 0:
                cur_indent = indent
            if broken:
                current.append("\x00")
                broken = False
        current.append(stripped)
    flush()
    return paragraphs


_OPEN_END_RE = re.compile(r"[A-Za-z0-9)'\"]$")
_LOWER_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?[\s,]")
_MARKERS = ("XXX", "TODO", "FIXME", "HACK", "NB")
_MARKER_RE = re.compile(r"^(?:XXX|TODO|FIXME|HACK|NB)\b:?\s*")


def _close_paragraphs(text: str, capitalize: bool = False) -> str:
    """End every paragraph of a docstring or comment block with a period when it has none.

    Docstring summary lines ("Return the foo") and comments routinely omit the final period
    although the blank line or the end of the block ends the sentence. Only unindented last
    lines that end with a letter, digit, quote or bracket are closed; ``XXX``/``TODO``
    markers are dropped. ``capitalize`` (for comments, often written in lower case) also
    upper-cases the first letter of a paragraph that starts with a plain lower-case word. The
    sentence filters still apply to the result.
    """
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if line.startswith(_MARKERS):
            line = _MARKER_RE.sub("", line)
        if capitalize and (i == 0 or not lines[i - 1].strip()) and _LOWER_WORD_RE.match(line):
            line = line[0].upper() + line[1:]
        if (
            (i + 1 == len(lines) or not lines[i + 1].strip())
            and line[:1] not in " \t"
            and _OPEN_END_RE.search(line)
        ):
            line += "."
        lines[i] = line
    return "\n".join(lines)


_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BODY_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")


def _docstrings(tree: ast.AST) -> Iterator[str]:
    """Docstrings of the module, classes and functions of ``tree``, in source order.

    Only statement bodies are walked (functions and classes nested in ``if``/``try``/``with``
    blocks included); expressions are never visited, which keeps the walk fast.
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, _DOC_NODES):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc
        children: list[ast.AST] = []
        for field in _BODY_FIELDS:
            value = getattr(node, field, None)
            if isinstance(value, list):
                children.extend(value)
        stack.extend(reversed(children))


_COMMENT_RE = re.compile(r"^[ \t]*#(.*)$")


def _comment_blocks(source: str) -> Iterator[str]:
    """Runs of consecutive full-line ``#`` comments of ``source``, the ``#`` (and the one space
    after it) removed, so that further indentation inside a comment is kept."""
    block: list[str] = []
    for line in source.split("\n"):
        m = _COMMENT_RE.match(line)
        if m:
            text = m.group(1)
            block.append(text[1:] if text.startswith(" ") else text)
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


_SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
)


def _stdlib_files(root: Path) -> list[Path]:
    """The ``.py`` files under ``root`` in sorted order, test directories and packages skipped."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".py") and not name.startswith("test_"):
                files.append(Path(dirpath) / name)
    return sorted(files, key=lambda p: p.relative_to(root).parts)


# ------------------------------------------------------------------------------ sentences
_FORBIDDEN_RE = re.compile(r"::|`|\\|[{}<>|~^$@#=*%+]|\.\.\.|\x00|\s[:;,.]|http|www\.")
_CODE_WORD_RE = re.compile(
    r"\b(?:def|return|class|lambda|import|yield|raise|del|assert|print)\s+[\w.]+[(\[:=]"
)
_CODE_TOKEN_RE = re.compile(r"\w[\w.]*\(|\w_|_\w|\w\.\w+\.\w|\)\w|\[\w")
_CODE_SHARE = 4  # at most one code-ish token (call, dotted or underscored name) per 4 words


def _keep_sentence(s: str) -> bool:
    """A sentence that looks like English prose (see the module docstring)."""
    n_words = len(s.split())
    if not MIN_SENTENCE_WORDS <= n_words <= MAX_SENTENCE_WORDS:
        return False
    if not (s[0].isdigit() or ("A" <= s[0] <= "Z")) or s[-1] not in ".!?":
        return False
    if _FORBIDDEN_RE.search(s) or _CODE_WORD_RE.search(s):
        return False
    if s.count("(") != s.count(")") or s.count("[") != s.count("]") or s.count('"') % 2:
        return False
    if len(_CODE_TOKEN_RE.findall(s)) * _CODE_SHARE > n_words:
        return False
    nonspace = len(s) - s.count(" ")
    letters = len(_NON_LETTERS_RE.sub("", s))
    if letters < 0.75 * nonspace:  # mostly letters
        return False
    return len(_NON_UPPER_RE.sub("", s)) * 2 <= letters  # no SHOUTING or acronym lists


_ABBREV_RE = re.compile(
    r"(?<![\w.])(e\.g\.|i\.e\.|cf\.|vs\.|viz\.|resp\.|approx\.|Mr\.|Dr\.|"
    r"St\.|No\.|[A-Z]\.)\s+"
)
_KEEP = "\x01"  # stands for a space that must not end a sentence


def _sentences_of(paragraphs: Iterable[str], seen: set[str], out: list[str]) -> int:
    """Append the new prose sentences of ``paragraphs`` to ``out``; return how many."""
    kept = 0
    for paragraph in paragraphs:
        # "e.g. Foo" does not end a sentence: hide the space from split_sentences
        paragraph = _ABBREV_RE.sub(lambda m: m.group(1) + _KEEP, paragraph)
        for sentence in split_sentences(paragraph):
            sentence = sentence.replace(_KEEP, " ")
            if sentence not in seen and _keep_sentence(sentence):
                seen.add(sentence)
                out.append(sentence)
                kept += 1
    return kept


def _build_corpus(
    stdlib: str | os.PathLike | None = None, with_topics: bool = True
) -> tuple[list[str], dict[str, int]]:
    """(sentences, stats) of the built-in corpus; see the module docstring for the rules.

    ``stdlib`` replaces the standard-library directory (tests use a small fake one) and
    ``with_topics=False`` leaves out the pydoc topics.
    """
    out: list[str] = []
    seen: set[str] = set()
    stats = {
        "topic_sentences": 0,
        "docstring_sentences": 0,
        "comment_sentences": 0,
        "files_read": 0,
        "files_contributing": 0,
    }
    topics: dict[str, str] = {}
    if with_topics:
        try:
            from pydoc_data.topics import topics
        except ImportError:  # pragma: no cover - stripped-down Python builds
            pass
    for key in sorted(topics):
        stats["topic_sentences"] += _sentences_of(clean_topic_text(topics[key]), seen, out)
    root = Path(stdlib if stdlib is not None else sysconfig.get_paths()["stdlib"])
    for path in _stdlib_files(root):
        try:
            source = path.read_bytes().decode("utf-8")
            with warnings.catch_warnings():  # e.g. SyntaxWarning: invalid escape sequence
                warnings.simplefilter("ignore")
                tree = ast.parse(source, filename=str(path))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        stats["files_read"] += 1
        n_doc = n_comment = 0
        for doc in _docstrings(tree):
            n_doc += _sentences_of(_clean_docstring(_close_paragraphs(doc)), seen, out)
        for block in _comment_blocks(source):
            paragraphs = _clean_docstring(_close_paragraphs(block, capitalize=True))
            n_comment += _sentences_of(paragraphs, seen, out)
        stats["docstring_sentences"] += n_doc
        stats["comment_sentences"] += n_comment
        stats["files_contributing"] += (n_doc + n_comment) > 0
    stats["sentences"] = len(out)
    return out, stats


def _build_corpus_text() -> str:
    """Build the corpus text (one sentence per line) from scratch; no cache involved."""
    # Parsing creates millions of AST nodes, which are freed by reference counting (they hold
    # no cycles); pausing the cyclic collector meanwhile saves about a quarter of the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        sentences, _ = _build_corpus()
    finally:
        if gc_was_enabled:
            gc.enable()
    if not sentences:
        raise RnnkitError(
            "the built-in corpus came out empty (no standard-library sources found); "
            "pass a corpus file instead"
        )
    return "\n".join(sentences) + "\n"


# ------------------------------------------------------------------------------ cache
@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """8 hex digits of a hash of the cleaning code (this module and the sentence splitter).

    Part of the cache file name, so that editing either file never serves a stale corpus even
    when :data:`CORPUS_VERSION` was not bumped. ``"nosrc"`` when the sources are unreadable.
    """
    h = hashlib.blake2b(digest_size=4)
    try:
        for module_file in (__file__, _text_module.__file__):
            h.update(Path(module_file).read_bytes())
    except (OSError, TypeError):
        return "nosrc"
    return h.hexdigest()


def _cache_path() -> Path:
    """Where the built corpus text is cached: ``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``),
    in a file named after the Python version, :data:`CORPUS_VERSION` and the code hash."""
    base = os.environ.get("RNNKIT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "rnnkit"
    )
    v = sys.version_info
    name = (
        f"corpus-{sys.implementation.name}{v.major}.{v.minor}.{v.micro}"
        f"{v.releaselevel[0]}{v.serial}-v{CORPUS_VERSION}-{_code_fingerprint()}.txt"
    )
    return Path(base) / name


def _read_cache(path: Path) -> str | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.endswith("\n") and text.strip() and "\r" not in text else None


def _write_cache(path: Path, text: str) -> None:
    """Write atomically (temp file + ``os.replace``); any OS error is ignored."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


@functools.lru_cache(maxsize=1)
def default_corpus_text() -> str:
    """The built-in English corpus: one sentence per line, ending with a newline.

    About 24,000 sentences on CPython 3.11 (the exact text depends on the Python version); see
    the module docstring for the sources and the cleaning rules. Read from the on-disk cache
    when present, otherwise built (a few seconds) and cached; memoised in-process.
    """
    path = _cache_path()
    text = _read_cache(path)
    if text is None:
        text = _build_corpus_text()
        _write_cache(path, text)
    return text


@functools.lru_cache(maxsize=1)
def _all_default_sentences() -> tuple[str, ...]:
    return tuple(default_corpus_text().split("\n")[:-1])


def default_sentences(max_sentences: int | None = None) -> list[str]:
    """Sentences of the built-in corpus (3..40 whitespace-separated words each), in corpus order.

    ``max_sentences`` keeps only the first that many.
    """
    if max_sentences is not None and (
        isinstance(max_sentences, bool) or not isinstance(max_sentences, int) or max_sentences < 1
    ):
        raise RnnkitError(f"max_sentences must be an int >= 1 or None, got {max_sentences!r}")
    sentences = _all_default_sentences()
    return list(sentences if max_sentences is None else sentences[:max_sentences])


# ------------------------------------------------------------------------------ files
def load_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 corpus file and return its text with ``\\n`` line endings.

    A leading BOM is dropped, and CRLF and lone CR line endings become LF, so a Windows or old
    Mac file reads exactly like its Unix version. Raises RnnkitError when the file is missing,
    is a directory, cannot be read, is not valid UTF-8 (the message gives the offset of the
    first bad byte), or holds only whitespace.
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
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RnnkitError(f"corpus is empty: {p}")
    return text
