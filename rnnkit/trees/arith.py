"""Generated arithmetic expression trees: single digits combined with +, - and * modulo 10, a label
at every subexpression (its value mod 10), for testing compositionality and generalisation by depth.

Representation (binary, so the models take it as it is): the expression ``A op B`` is the node::

    (v A (_ op B))        v = (A op B) mod 10; the operator is a leaf word; the helper node
                          "(op B)" has no label (it is the right-factored binarisation of the
                          ternary node (v A op B), see ``binarize``)

and a digit is a leaf labelled with its value. So ``(3 + 4) * 5`` is::

    (5 (7 (3 3) (_ (_ +) (4 4))) (_ (_ *) (5 5)))

Depth: a digit has depth 0, ``A op B`` has depth 1 + max(depth A, depth B) (operator nesting; the
tree's height lies between depth + 1 and 2 * depth). ``random_expression(depth)`` draws an
expression of EXACTLY that depth: one operand (left or right, at random) of depth - 1, the other
of a depth drawn from 0 .. depth-1, operators and digits uniformly. ``to_tokens`` gives the same
expression as a flat, fully bracketed token sequence for a sequential model:
``( ( 3 + 4 ) * 5 )``; its target is ``tree.label``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import RnnkitError
from .tree import Tree
from .vocab import TreeVocab

__all__ = [
    "OPS",
    "random_expression",
    "arith_trees",
    "expression_depth",
    "evaluate",
    "to_tokens",
    "arith_vocab",
]

OPS = {
    "+": lambda a, b: (a + b) % 10,
    "-": lambda a, b: (a - b) % 10,
    "*": lambda a, b: (a * b) % 10,
}
DIGITS = tuple(str(i) for i in range(10))


def combine(left: Tree, op: str, right: Tree) -> Tree:
    """The node for ``left op right`` with its value as label (see the module doc)."""
    if op not in OPS:
        raise RnnkitError(f"unknown operator {op!r}; use one of {' '.join(OPS)}")
    op_right = Tree(None, children=(Tree(None, word=op), right))
    return Tree(OPS[op](left.label, right.label), children=(left, op_right))


def random_expression(depth: int, rng: np.random.Generator, ops: str = "+-*") -> Tree:
    """An expression tree of exactly ``depth`` operator levels (0: a single digit)."""
    if depth < 0:
        raise RnnkitError(f"depth must be >= 0, got {depth}")
    if not ops or any(o not in OPS for o in ops):
        raise RnnkitError(f"ops must be a non-empty string of {''.join(OPS)}, got {ops!r}")
    if depth == 0:
        v = int(rng.integers(10))
        return Tree(v, word=DIGITS[v])
    deep, other = depth - 1, int(rng.integers(depth))
    if rng.integers(2):
        deep, other = other, deep
    left = random_expression(deep, rng, ops)
    op = ops[int(rng.integers(len(ops)))]
    return combine(left, op, random_expression(other, rng, ops))


def arith_trees(
    n: int, depths: Sequence[int] | int, seed: int | Sequence[int] = 0, ops: str = "+-*"
) -> list[Tree]:
    """``n`` expressions, each of a depth drawn uniformly from ``depths`` (seeded)."""
    depths = [depths] if isinstance(depths, int) else list(depths)
    if n < 0 or not depths:
        raise RnnkitError("need n >= 0 and at least one depth")
    rng = np.random.default_rng(seed)
    return [
        random_expression(int(depths[int(rng.integers(len(depths)))]), rng, ops) for _ in range(n)
    ]


def _is_expr(t: Tree) -> bool:
    return not t.is_leaf and t.label is not None


def _parts(t: Tree) -> tuple[Tree, str, Tree]:
    left, rest = t.children
    return left, str(rest.children[0].word), rest.children[1]  # the operator leaf's word


def expression_depth(tree: Tree) -> int:
    """Operator nesting depth: 0 for a digit, 1 + the deeper operand's depth otherwise."""
    if tree.is_leaf:
        return 0
    a, _, b = _parts(tree)
    return 1 + max(expression_depth(a), expression_depth(b))


def evaluate(tree: Tree) -> int:
    """The value mod 10 recomputed from the leaves (ignores the stored labels)."""
    if tree.is_leaf:
        return int(str(tree.word))  # a leaf: its word is a digit
    a, op, b = _parts(tree)
    return OPS[op](evaluate(a), evaluate(b))


def to_tokens(tree: Tree, outer: bool = True) -> list[str]:
    """The expression as a flat token list, every subexpression in brackets:
    ``['(', '(', '3', '+', '4', ')', '*', '5', ')']``. ``outer=False`` drops the outermost pair."""
    out: list[str] = []
    stack: list = [tree]
    while stack:
        t = stack.pop()
        if isinstance(t, str):
            out.append(t)
        elif t.is_leaf:
            out.append(t.word)
        elif _is_expr(t):
            stack += [")", *reversed(t.children), "("]
        else:
            stack += list(reversed(t.children))
    if not outer and len(out) > 1:
        out = out[1:-1]
    return out


def arith_vocab() -> TreeVocab:
    """``<unk>``, the ten digits and the three operators (14 words)."""
    return TreeVocab(["<unk>", *DIGITS, *OPS])
