"""A text-classification set that needs no download: standard-library docstrings labelled by the
package they document.

Each example is the first prose paragraph of a docstring (module, class or function) of one of
:data:`PACKAGES` in the running Python's standard library, cleaned as the embedded corpus is
(:mod:`rnnkit.data.corpus`: files read as text and parsed with :mod:`ast`, never imported; test
directories skipped; doctests, literal blocks, field lists and markup removed), joined to one
line and kept when it has ``min_words``..``max_words`` words; exact repeats are dropped. The
label is the package. Deterministic for a given Python version (files in sorted order). On
CPython 3.11: about 2,300 examples over seven packages, from 115 (http) to 630 (tkinter).

Write it as ``label<TAB>text`` lines for ``rnnkit train classify --data``::

    python -m rnnkit.data.topics --out topics.tsv
    rnnkit train classify --data topics.tsv --out runs/topics
    rnnkit predict runs/topics "Return the value of the header, or None." --top 3
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from rnnkit.data.corpus import _clean_docstring, _close_paragraphs, _docstrings, _stdlib_files
from rnnkit.errors import RnnkitError

__all__ = ["PACKAGES", "topic_examples", "write_topics"]

#: Standard-library packages with enough prose on distinct subjects.
PACKAGES = ("asyncio", "email", "http", "idlelib", "multiprocessing", "tkinter", "xml")


def topic_examples(
    packages: Sequence[str] = PACKAGES, min_words: int = 4, max_words: int = 60
) -> list[tuple[str, str]]:
    """(package, first docstring paragraph) pairs of ``packages``, in sorted file order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    missing = [p for p in packages if not (root / p).is_dir()]
    if missing:
        raise RnnkitError(f"no standard-library package {missing[0]!r} under {root}")
    wanted = set(packages)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path in _stdlib_files(root):
        package = path.relative_to(root).parts[0]
        if package not in wanted:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for doc in _docstrings(tree):
            paragraphs = _clean_docstring(_close_paragraphs(doc))
            if not paragraphs:
                continue
            text = " ".join(paragraphs[0].replace("\x00", " ").split())
            if min_words <= len(text.split()) <= max_words and text not in seen:
                seen.add(text)
                out.append((package, text))
    return out


def write_topics(path: str, packages: Sequence[str] = PACKAGES) -> int:
    """Write ``label<TAB>text`` lines to ``path``; returns how many."""
    rows = topic_examples(packages)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{label}\t{text}\n" for label, text in rows)
    return len(rows)


if __name__ == "__main__":  # python -m rnnkit.data.topics: the command is the application's
    from rnnkit.app.datafiles import topics_main

    topics_main()
