"""The tree type and the bracketed treebank format (Penn Treebank / Stanford Sentiment Treebank).

One tree per line, a label after every opening bracket, a word as the only child of a leaf::

    (3 (2 The) (4 (3 good) (2 movie)))

* labels are non-negative integers (the SST's five sentiment classes 0..4); ``_`` stands for "no
  label" (``Tree.label is None``: binarisation's helper nodes, trees built from a bare sentence);
* words are written with the treebank escapes ``-LRB- -RRB- -LCB- -RCB- -LSB- -RSB-`` for
  ``( ) { } [ ]`` and ``\\/`` for ``/``; the reader turns them back into the characters (also inside
  a word, e.g. ``1\\/2`` -> ``1/2``) and the writer escapes them again, so
  ``parse_tree(format_tree(t)) == t`` for every tree whose words have no whitespace;
* bad input raises :class:`~rnnkit.errors.RnnkitError` naming the line and the (1-based) column:
  unbalanced brackets, a missing or non-integer label, an empty tree ``()`` or ``(3)``, a word next
  to a subtree, text after the tree, an empty file.

Every walk over a tree here is iterative, so a 10,000-word right-branching chain is fine.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence

from ..errors import RnnkitError

__all__ = [
    "Tree",
    "parse_tree",
    "read_trees",
    "format_tree",
    "write_trees",
    "binarize",
    "tree_from_sentence",
    "NO_LABEL",
]

NO_LABEL = "_"  # how a None label is written

_UNESCAPE = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LCB-": "{",
    "-RCB-": "}",
    "-LSB-": "[",
    "-RSB-": "]",
    "\\/": "/",
}
_ESCAPE = {v: k for k, v in _UNESCAPE.items()}
_UNESCAPE_RE = re.compile("|".join(re.escape(k) for k in _UNESCAPE))
_ESCAPE_RE = re.compile("|".join(re.escape(k) for k in _ESCAPE))
_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")


class Tree:
    """A node: ``label`` (int >= 0 or None) and either a ``word`` (a leaf) or ``children``.

    Leaves have a word and no children; internal nodes have one or more children and no word
    (:func:`binarize` makes every internal node binary, which the models need).
    """

    __slots__ = ("label", "word", "children")

    def __init__(
        self, label: int | None, word: str | None = None, children: Sequence[Tree] = ()
    ) -> None:
        children = tuple(children)
        if (word is None) == (not children):
            raise RnnkitError(
                "a tree node has either a word (a leaf) or children, not both or neither"
            )
        _check_label(label)
        if word is not None and (not isinstance(word, str) or not word):
            raise RnnkitError(f"a word must be a non-empty str, got {word!r}")
        if not all(isinstance(c, Tree) for c in children):
            raise RnnkitError("children must be Tree objects")
        self.label, self.word, self.children = label, word, children

    @classmethod
    def leaf(cls, word: str, label: int | None = None) -> Tree:
        return cls(label, word=word)

    @classmethod
    def node(cls, label: int | None, *children: Tree) -> Tree:
        return cls(label, children=children)

    @property
    def is_leaf(self) -> bool:
        return self.word is not None

    def nodes(self) -> Iterator[Tree]:
        """Every node, in pre-order (a node before its children, children left to right)."""
        stack = [self]
        while stack:
            t = stack.pop()
            yield t
            stack.extend(reversed(t.children))

    def leaves(self) -> list[str]:
        """The words, left to right."""
        return [t.word for t in self.nodes() if t.word is not None]

    def num_nodes(self) -> int:
        return sum(1 for _ in self.nodes())

    def height(self) -> int:
        """0 for a leaf, else 1 + the largest child height."""
        return _heights(self)[id(self)]

    def is_binary(self) -> bool:
        """True when every internal node has exactly two children."""
        return all(t.is_leaf or len(t.children) == 2 for t in self.nodes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        for a, b in zip(_walk_pairs(self), _walk_pairs(other)):
            if a != b:
                return False
        return True

    # mutable attributes: not hashable (the usual idiom, which typeshed's object.__hash__ rejects)
    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return format_tree(self)

    def __repr__(self) -> str:
        s = format_tree(self)
        return f"Tree({s if len(s) <= 80 else s[:77] + '...'})"


def _check_label(label) -> None:
    if label is not None and (isinstance(label, bool) or not isinstance(label, int) or label < 0):
        raise RnnkitError(f"a label must be an int >= 0 or None, got {label!r}")


def _walk_pairs(t: Tree) -> Iterator[tuple]:
    """(label, word, number of children) in pre-order, then an end marker: equal iff trees equal."""
    for n in t.nodes():
        yield n.label, n.word, len(n.children)
    yield ("end",)


def _heights(root: Tree) -> dict[int, int]:
    """id(node) -> height, by an iterative post-order walk."""
    h: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if t.is_leaf:
            h[id(t)] = 0
        elif done:
            h[id(t)] = 1 + max(h[id(c)] for c in t.children)
        else:
            stack.append((t, True))
            stack.extend((c, False) for c in t.children)
    return h


# -- reading ------------------------------------------------------------------------------------
def _unescape(word: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPE[m.group(0)], word)


def _escape(word: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPE[m.group(0)], word)


def parse_tree(text: str, *, line: int = 1, unescape: bool = True) -> Tree:
    """Parse one bracketed tree, e.g. ``"(3 (2 The) (4 (3 good) (2 movie)))"``.

    ``line`` is only used in error messages (``read_trees`` passes the file's line number).
    Raises RnnkitError naming line and column for anything that is not exactly one tree.
    """
    where = lambda col: f"line {line}, column {col}"  # noqa: E731
    stack: list[list] = []  # open nodes: [label, word, children, column of "("]
    root: Tree | None = None
    expect_label = False
    for m in _TOKEN_RE.finditer(text):
        tok, col = m.group(0), m.start() + 1
        if root is not None:
            if tok == ")":
                raise RnnkitError(f"unbalanced brackets: ')' at {where(col)} closes nothing")
            raise RnnkitError(f"text after the end of the tree at {where(col)}: {tok!r}")
        if expect_label:
            if tok in "()":
                what = "an empty tree '()'" if tok == ")" else "a missing label (found '(')"
                raise RnnkitError(f"{what} at {where(col)}: every '(' must be followed by a label")
            stack[-1][0] = _parse_label(tok, where(col))
            expect_label = False
        elif tok == "(":
            if stack and stack[-1][1] is not None:
                raise RnnkitError(
                    f"a subtree after the word {stack[-1][1]!r} at {where(col)}: "
                    "a word must be the only child of its node"
                )
            stack.append([None, None, [], col])
            expect_label = True
        elif tok == ")":
            if not stack:
                raise RnnkitError(f"unbalanced brackets: ')' at {where(col)} closes nothing")
            label, word, children, open_col = stack.pop()
            if word is None and not children:
                raise RnnkitError(
                    f"empty tree (a label and nothing else) opened at {where(open_col)}"
                )
            node = Tree(label, word=word, children=children)
            if stack:
                stack[-1][2].append(node)
            else:
                root = node
        else:
            if not stack:
                raise RnnkitError(f"expected '(' at {where(col)}, found {tok!r}")
            top = stack[-1]
            if top[2] or top[1] is not None:
                raise RnnkitError(
                    f"a word {tok!r} next to a subtree or another word at {where(col)}: "
                    "a word must be the only child of its node"
                )
            top[1] = _unescape(tok) if unescape else tok
    if stack:
        raise RnnkitError(
            f"unbalanced brackets: '(' at {where(stack[-1][3])} is never closed "
            f"({len(stack)} bracket(s) still open at the end of the line)"
        )
    if root is None:
        raise RnnkitError(f"empty input at line {line}: no tree")
    return root


def _parse_label(tok: str, where: str) -> int | None:
    if tok == NO_LABEL:
        return None
    if not tok.isdigit() or not tok.isascii():
        raise RnnkitError(
            f"missing or non-integer label at {where}: expected an integer >= 0 "
            f"(or '{NO_LABEL}' for none), found {tok!r}"
        )
    return int(tok)


def read_trees(path: str | os.PathLike, *, unescape: bool = True) -> list[Tree]:
    """Read a file with one tree per line (blank lines are skipped). RnnkitError for a bad line
    (with its line and column) or a file without any tree."""
    trees = []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise RnnkitError(f"cannot read treebank {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RnnkitError(
            f"treebank {os.fspath(path)!r} is not valid UTF-8 (byte {exc.start})"
        ) from None
    for i, line in enumerate(io.StringIO(text), 1):  # lines end at \n, \r\n or \r only
        if line.strip():
            try:
                trees.append(parse_tree(line, line=i, unescape=unescape))
            except RnnkitError as exc:
                raise RnnkitError(f"{os.fspath(path)}: {exc}") from None
    if not trees:
        raise RnnkitError(f"no trees in {os.fspath(path)!r}: the file is empty")
    return trees


# -- writing ------------------------------------------------------------------------------------
def format_tree(tree: Tree, *, escape: bool = True) -> str:
    """The one-line bracketed form; ``_`` for a None label; words escaped (see module doc)."""
    out: list[str] = []
    stack: list = [tree]
    while stack:
        t = stack.pop()
        if isinstance(t, str):
            out.append(t)
            continue
        lab = NO_LABEL if t.label is None else str(t.label)
        if t.is_leaf:
            w = _escape(t.word) if escape else t.word
            if any(ch.isspace() for ch in w) or (not escape and any(ch in "()" for ch in w)):
                raise RnnkitError(
                    f"cannot write the word {t.word!r}: it contains whitespace or brackets"
                )
            out.append(f"({lab} {w})")
        else:
            out.append(f"({lab}")
            stack.append(")")
            for c in reversed(t.children):
                stack.append(c)
                stack.append(" ")
    return "".join(out)


def write_trees(path: str | os.PathLike, trees: Iterable[Tree], *, escape: bool = True) -> None:
    """Write one tree per line (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        for t in trees:
            f.write(format_tree(t, escape=escape) + "\n")


# -- reshaping ----------------------------------------------------------------------------------
def binarize(tree: Tree, factor: str = "right") -> Tree:
    """A copy in which every internal node has exactly two children.

    * a node with n > 2 children c1 .. cn is factored into a chain of binary nodes whose helper
      nodes have label None (they are not constituents, so they carry no training signal):
      ``factor="right"``: (L c1 (_ c2 (_ c3 ... cn)))  -- the usual choice for English;
      ``factor="left"``:  (L (_ (_ c1 c2) ... ) cn);
    * a unary node (one child) is merged with its child: the merged node keeps the outer label,
      or the child's when the outer one is None (in the SST both span the same words).

    Leaves are unchanged; a tree that is already binary comes back equal.
    """
    if factor not in ("right", "left"):
        raise RnnkitError(f"factor must be 'right' or 'left', got {factor!r}")
    done: dict[int, Tree] = {}
    stack = [(tree, False)]
    while stack:
        t, ready = stack.pop()
        if t.is_leaf:
            done[id(t)] = Tree(t.label, word=t.word)
        elif not ready:
            stack.append((t, True))
            stack.extend((c, False) for c in t.children)
        else:
            kids = [done.pop(id(c)) for c in t.children]
            if len(kids) == 1:
                k = kids[0]
                lab = t.label if t.label is not None else k.label
                done[id(t)] = Tree(lab, word=k.word, children=k.children)
                continue
            if factor == "right":
                acc = kids[-1]
                for k in reversed(kids[1:-1]):
                    acc = Tree(None, children=(k, acc))
                done[id(t)] = Tree(t.label, children=(kids[0], acc))
            else:
                acc = kids[0]
                for k in kids[1:-1]:
                    acc = Tree(None, children=(acc, k))
                done[id(t)] = Tree(t.label, children=(acc, kids[-1]))
    return done[id(tree)]


def tree_from_sentence(
    words: Sequence[str], how: str = "balanced", label: int | None = None
) -> Tree:
    """A binary tree over a sentence that has no parse: ``how="balanced"`` splits each span in
    the middle (height ceil(log2 n)); ``how="right"`` is the right-branching chain
    (w1 (w2 (... wn))). Every node's label is None except the root's, which is ``label``."""
    words = list(words)
    _check_label(label)
    if not words:
        raise RnnkitError("tree_from_sentence needs at least one word")
    if how not in ("balanced", "right"):
        raise RnnkitError(f"how must be 'balanced' or 'right', got {how!r}")
    level = [Tree(None, word=w) for w in words]
    if how == "right":
        acc = level[-1]
        for t in reversed(level[:-1]):
            acc = Tree(None, children=(t, acc))
        root = acc
    else:
        root = _balanced(level)
    root.label = label
    return root


def _balanced(leaves: list[Tree]) -> Tree:
    """Split [lo, hi) at the middle, left half the larger; iterative."""
    out: dict[tuple[int, int], Tree] = {}
    stack = [(0, len(leaves), False)]
    while stack:
        lo, hi, ready = stack.pop()
        if hi - lo == 1:
            out[lo, hi] = leaves[lo]
            continue
        mid = (lo + hi + 1) // 2
        if ready:
            out[lo, hi] = Tree(None, children=(out.pop((lo, mid)), out.pop((mid, hi))))
        else:
            stack += [(lo, hi, True), (lo, mid, False), (mid, hi, False)]
    return out[0, len(leaves)]
