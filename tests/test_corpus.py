"""Tests for rnnkit.data.corpus: the built-in corpus (sources, cleaning, size, determinism,
on-disk cache) and CRLF-safe ``load_text``."""

from __future__ import annotations

import os
import re
import sys

import pytest

from rnnkit.data import corpus, default_corpus_text, default_sentences, load_text
from rnnkit.data.text import split_sentences, tokenize_chars, tokenize_words
from rnnkit.errors import RnnkitError

OLD_SENTENCE_COUNT = 1906  # the pydoc-topics-only corpus this one replaced


def _clear_memo() -> None:
    corpus.default_corpus_text.cache_clear()
    corpus._all_default_sentences.cache_clear()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A private, initially empty RNNKIT_CACHE for this module; the corpus is built once in it."""
    path = tmp_path_factory.mktemp("rnnkit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNKIT_CACHE", str(path))
        _clear_memo()
        yield path
    _clear_memo()


@pytest.fixture(scope="module")
def built(cache_dir):
    """(text, sentences) of the default corpus, built cold into ``cache_dir``."""
    assert list(cache_dir.iterdir()) == []
    return default_corpus_text(), default_sentences()


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh RNNKIT_CACHE for one test, with the in-process memo cleared before and after."""
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    _clear_memo()
    yield tmp_path / "cache"
    _clear_memo()


# ---------------------------------------------------------------------------- the built corpus


def test_ten_times_more_sentences(built):
    text, sents = built
    assert len(sents) >= 10 * OLD_SENTENCE_COUNT
    assert text == "\n".join(sents) + "\n"  # one sentence per line
    assert len(set(sents)) == len(sents)  # exact repeats dropped
    assert sum(len(s.split()) for s in sents) > 200_000
    assert "assignment statement" in text.lower()  # the pydoc topics are in


def test_sentences_look_like_prose(built):
    _, sents = built
    bad = []
    for s in sents:
        words = s.split()
        if not (
            3 <= len(words) <= 40
            and (s[0].isdigit() or "A" <= s[0] <= "Z")
            and s[-1] in ".!?"
            and s == s.strip()
            and "\n" not in s
        ):
            bad.append(s)
    assert bad == []
    nonspace = [c for c in "".join(sents) if not c.isspace()]
    assert sum(c.isalpha() for c in nonspace) / len(nonspace) > 0.85


def test_no_code_markup_or_urls(built):
    text, sents = built
    for needle in (">>>", "::", "`", "http", "www.", "://", "...", "Copyright", "License"):
        assert needle not in text, needle
    code = re.compile(r"\b(?:def|return|class|lambda|import)\s+[\w.]+[(\[:=]")
    assert [s for s in sents if code.search(s)] == []
    assert not any(re.search(r"\s=\s|==|->|\w\(.*\):$", s) for s in sents)


def test_default_sentences_slicing(built):
    _, sents = built
    assert default_sentences(5) == sents[:5]
    assert default_sentences(len(sents) + 10) == sents
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(RnnkitError, match="max_sentences"):
            default_sentences(bad)


# ---------------------------------------------------------------------------- cache


def test_cache_file_written_and_reused(built, cache_dir, monkeypatch):
    text, _ = built
    files = list(cache_dir.iterdir())
    assert [f.name for f in files] == [corpus._cache_path().name]  # no temp file left behind
    assert files[0].read_bytes().decode("utf-8") == text
    name = files[0].name
    v = sys.version_info
    assert f"{v.major}.{v.minor}.{v.micro}" in name and f"v{corpus.CORPUS_VERSION}" in name

    def boom() -> str:
        raise AssertionError("the corpus was rebuilt instead of read from the cache")

    monkeypatch.setattr(corpus, "_build_corpus_text", boom)
    _clear_memo()
    assert default_corpus_text() == text
    assert default_sentences() == built[1]


def test_build_is_deterministic(built):
    text, _ = built
    assert corpus._build_corpus_text() == text  # a second, uncached build


def test_cache_dir_created(private_cache, monkeypatch):
    monkeypatch.setattr(corpus, "_build_corpus_text", lambda: "One small sentence.\n")
    assert not private_cache.exists()
    assert default_corpus_text() == "One small sentence.\n"
    assert (private_cache / corpus._cache_path().name).read_text() == "One small sentence.\n"


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("RNNKIT_CACHE", str(blocker / "cache"))  # mkdir fails
    monkeypatch.setattr(corpus, "_build_corpus_text", lambda: "Built in memory only.\n")
    _clear_memo()
    try:
        assert default_corpus_text() == "Built in memory only.\n"
        assert default_sentences() == ["Built in memory only."]
    finally:
        _clear_memo()
    assert blocker.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


@pytest.mark.parametrize("content", [b"", b"no final newline.", b"\xff\xfe broken\n"])
def test_bad_cache_file_is_rebuilt(private_cache, monkeypatch, content):
    path = private_cache / corpus._cache_path().name
    private_cache.mkdir()
    path.write_bytes(content)
    monkeypatch.setattr(corpus, "_build_corpus_text", lambda: "A fresh corpus text.\n")
    assert default_corpus_text() == "A fresh corpus text.\n"
    assert path.read_text() == "A fresh corpus text.\n"


def test_default_home_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNKIT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert corpus._cache_path().parent == tmp_path / ".cache" / "rnnkit"


# ---------------------------------------------------------------------------- sources and rules

MODULE_A = '''"""Tools for the tests.

This module shows the :func:`clean` rules on ``markup`` and *emphasis* here.
Read more at https://example.org/docs for details.

Example::

    x = compute(1, 2)
    Indented prose under an example is code.

>>> clean("A doctest line.")
'Its output line.'
Still output until the blank line.

Copyright (C) 2001 Somebody.
All of this paragraph goes away too.
"""


def clean(text):
    """Return the cleaned text

    Args:
        text: The text to clean. Hidden in the arguments section.

    :param text: a field list entry.
    :returns: Another field.
    """
    # we remove the markup first, then the code
    # second line of the same comment
    return text  # a trailing comment is not used


class Thing:
    """A thing with a docstring that keeps this sentence.

    Returns:
        Something hidden below a section header.
    """
    if True:
        def nested(self):
            """Nested functions in blocks are read as well."""
'''

EXPECTED_A = [
    "Tools for the tests.",
    "This module shows the clean rules on markup and emphasis here.",
    "Return the cleaned text.",
    "A thing with a docstring that keeps this sentence.",
    "Nested functions in blocks are read as well.",
    "We remove the markup first, then the code second line of the same comment.",
]


def _fake_stdlib(root):
    files = {
        "a.py": MODULE_A,
        "b/__init__.py": '"""Package docstrings are read in sorted path order."""\n',
        "b/c.py": '"""The last file of the walk comes here."""\n',
        "ab.py": '"""Files sort by path parts, so this one precedes the package."""\n',
        "dup.py": '"""Tools for the tests."""\n',  # an exact repeat: dropped
        "test/t.py": '"""Tests are skipped entirely here."""\n',
        "tests/t.py": '"""Tests are skipped entirely here."""\n',
        "idlelib/idle_test/t.py": '"""Tests are skipped entirely here."""\n',
        "site-packages/p.py": '"""Installed packages are skipped too."""\n',
        "test_mod.py": '"""Test modules are skipped as well."""\n',
        "broken.py": '"""A file that does not parse is skipped."""\ndef f(:\n',
        "notes.txt": "Only Python source files are read here.\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "latin.py").write_bytes(b'"""A file that is not UTF-8 is skipped \xe9."""\n')


def test_build_from_fake_stdlib(tmp_path):
    _fake_stdlib(tmp_path)
    sents, stats = corpus._build_corpus(tmp_path, with_topics=False)
    assert sents == EXPECTED_A + [
        "Files sort by path parts, so this one precedes the package.",
        "Package docstrings are read in sorted path order.",
        "The last file of the walk comes here.",
    ]
    assert stats["files_read"] == 5  # a, ab, b/__init__, b/c, dup
    assert stats["files_contributing"] == 4
    assert stats["comment_sentences"] == 1 and stats["topic_sentences"] == 0


def test_stdlib_files_sorted_and_filtered(tmp_path):
    _fake_stdlib(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in corpus._stdlib_files(tmp_path)]
    assert rel == ["a.py", "ab.py", "b/__init__.py", "b/c.py", "broken.py", "dup.py", "latin.py"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            ":func:`os.path.join` and :class:`~email.message.Message` work",
            "os.path.join and Message work",
        ),
        ("see :pep:`8` and :rfc:`2822` now", "see PEP 8 and RFC 2822 now"),
        (
            "a ``literal`` and `interpreted` and `a link <http://x>`_ too",
            "a literal and interpreted and a link too",
        ),
        (
            "**strong** and *emphasis* but not *args or x*y",
            "strong and emphasis but not *args or x*y",
        ),
        ("a footnote [1]_ here", "a footnote here"),
        ("“curly”   quotes\tand  spaces", '"curly" quotes and spaces'),
    ],
)
def test_strip_markup(raw, expected):
    assert corpus._strip_markup(raw) == expected


@pytest.mark.parametrize(
    "sentence, keep",
    [
        ("Return the number of items in the queue.", True),
        ("Use the find_spec() method instead of this one.", True),
        ("Use find_spec() instead.", False),  # one code-ish token in 3 words: too many
        ("Is this a question?", True),
        ("3 items are enough.", True),
        ("lower-case start is rejected.", False),
        ("No final period here", False),
        ("Two words.", False),
        (" ".join(["Word"] * 41) + ".", False),
        ("Call it as f(x) == 2 in code.", False),
        ("The result is x = 1 here.", False),
        ("It returns return foo(x) now.", False),
        ("Use `code` here please.", False),
        ("See http colon stuff here.", False),
        ("Write a::b to a stream.", False),
        ("Use a *args parameter here.", False),
        ("THIS IS SHOUTING AT READERS.", False),
        ("Unbalanced (bracket in this one.", False),
        ("Use obj.__dict__, __slots__ and os.path.join() together.", False),
        ("The 1, 2, 3, 4, 5, 6 numbers.", False),
    ],
)
def test_keep_sentence(sentence, keep):
    assert corpus._keep_sentence(sentence) is keep


def test_comment_blocks():
    src = "x = 1  # trailing\n# first line\n#   indented\n\n    # another block\ny = 2\n"
    assert list(corpus._comment_blocks(src)) == ["first line\n  indented", "another block"]


def test_abbreviations_do_not_split():
    out: list[str] = []
    corpus._sentences_of(["Some systems (e.g. Windows) differ here. Next one is here."], set(), out)
    assert out == ["Some systems (e.g. Windows) differ here.", "Next one is here."]


# ---------------------------------------------------------------------------- load_text

LF_TEXT = "First line of text.\nSecond one! Third?\n\nNew paragraph here.\nEnd.\n"


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_load_text_normalises_line_endings(tmp_path, newline):
    lf = tmp_path / "lf.txt"
    lf.write_bytes(LF_TEXT.encode("utf-8"))
    other = tmp_path / "other.txt"
    other.write_bytes(LF_TEXT.replace("\n", newline).encode("utf-8"))
    a, b = load_text(lf), load_text(other)
    assert b == a == LF_TEXT
    assert split_sentences(b) == split_sentences(a)
    assert tokenize_words(b) == tokenize_words(a)
    assert tokenize_chars(b) == tokenize_chars(a)


def test_load_text_mixed_endings_and_bom(tmp_path):
    p = tmp_path / "mixed.txt"
    p.write_bytes("\ufeffa\r\nb\rc\nd\r\r\ne".encode("utf-8"))
    assert load_text(p) == "a\nb\nc\nd\n\ne"


def test_load_text_only_line_breaks_is_empty(tmp_path):
    p = tmp_path / "blank.txt"
    p.write_bytes(b"\r\n\r\r\n")
    with pytest.raises(RnnkitError, match="empty"):
        load_text(p)
    assert os.path.exists(p)
