"""Trees as arrays: one tree flattened once (:class:`FlatTree`), many joined into a batch sorted by
height (:class:`TreeBatch`), so that a level of the batch is one contiguous block of rows.

FlatTree (one binary tree of n nodes, post-order: children before their parent, root last):

    left, right  (n,) int64   child indices, -1 at leaves
    word         (n,) int64   word id at leaves, -1 at internal nodes
    label        (n,) int64   node label, -1 where the label is None
    height       (n,) int64   0 at leaves, 1 + max(children's heights) above

TreeBatch (B trees, N nodes in all, ``L`` of them leaves), nodes renumbered by height (stable):
rows 0 .. L-1 are the leaves, then every node of height 1, then height 2, ...; so
``levels[k] = (start, end)`` is the block of rows of height k+1, and every child of a node of a
level lies in an earlier block. Fields:

    left, right  (N,) int64   child rows (-1 at leaves)
    words        (L,) int64   word ids of rows 0 .. L-1
    labels       (N,) int64   label per row, -1 for None
    roots        (B,) int64   the row of each tree's root, in the order the trees were given
    levels       list of (start, end)

Joining a batch is vectorised (a concatenation, a stable argsort, an inverse permutation); only
:func:`flatten_tree`, done once per tree, walks the nodes in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import RnnkitError
from .tree import Tree

__all__ = ["FlatTree", "TreeBatch", "flatten_tree"]


@dataclass(frozen=True)
class FlatTree:
    left: np.ndarray
    right: np.ndarray
    word: np.ndarray
    label: np.ndarray
    height: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.left.shape[0])


def flatten_tree(tree: Tree, word_ids: Callable[[list[str]], np.ndarray]) -> FlatTree:
    """Post-order arrays of a binary tree. ``word_ids(list of words) -> (n_leaves,) ids``
    (e.g. ``TreeVocab.ids``). RnnkitError for a node that does not have 0 or 2 children."""
    nodes: list[Tree] = []
    stack = [(tree, False)]
    while stack:  # iterative post-order
        t, ready = stack.pop()
        if ready or t.is_leaf:
            nodes.append(t)
            continue
        if len(t.children) != 2:
            raise RnnkitError(
                f"a node with {len(t.children)} child(ren) in a tree of "
                f"{len(tree.leaves())} words: the models need binary trees, "
                "use rnnkit.trees.binarize first"
            )
        stack += [(t, True), (t.children[1], False), (t.children[0], False)]
    n = len(nodes)
    pos = {id(t): i for i, t in enumerate(nodes)}
    left = np.full(n, -1, np.int64)
    right = np.full(n, -1, np.int64)
    height = np.zeros(n, np.int64)
    label = np.array([-1 if t.label is None else t.label for t in nodes], np.int64)
    word = np.full(n, -1, np.int64)
    leaf_rows = [i for i, t in enumerate(nodes) if t.is_leaf]
    words = [str(nodes[i].word) for i in leaf_rows]  # a leaf always has a word
    word[leaf_rows] = np.asarray(word_ids(words), np.int64)
    for i, t in enumerate(nodes):
        if not t.is_leaf:
            a, b = pos[id(t.children[0])], pos[id(t.children[1])]
            left[i], right[i] = a, b
            height[i] = 1 + max(height[a], height[b])
    return FlatTree(left, right, word, label, height)


@dataclass(frozen=True)
class TreeBatch:
    left: np.ndarray
    right: np.ndarray
    words: np.ndarray
    labels: np.ndarray
    roots: np.ndarray
    levels: list

    @property
    def n_nodes(self) -> int:
        return int(self.left.shape[0])

    @property
    def n_leaves(self) -> int:
        return int(self.words.shape[0])

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @classmethod
    def from_flat(cls, flats: Sequence[FlatTree]) -> TreeBatch:
        """Join flattened trees and renumber their nodes by height (see the module doc)."""
        if len(flats) == 0:
            raise RnnkitError("a batch needs at least one tree")
        sizes = np.array([f.n_nodes for f in flats], np.int64)
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        shift = np.repeat(offsets, sizes)
        cat = lambda name: np.concatenate([getattr(f, name) for f in flats])  # noqa: E731
        left, right, height = cat("left"), cat("right"), cat("height")
        internal = left >= 0
        left[internal] += shift[internal]
        right[internal] += shift[internal]
        order = np.argsort(height, kind="stable")  # new row r holds old node order[r]
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        left, right = left[order], right[order]
        internal = left >= 0
        left[internal] = inv[left[internal]]
        right[internal] = inv[right[internal]]
        counts = np.bincount(height)
        ends = np.cumsum(counts)
        n_leaves = int(counts[0])
        levels = [(int(ends[k - 1]), int(ends[k])) for k in range(1, counts.size)]
        return cls(
            left=left,
            right=right,
            words=cat("word")[order][:n_leaves],
            labels=cat("label")[order],
            roots=inv[offsets + sizes - 1],
            levels=levels,
        )

    @classmethod
    def from_trees(
        cls, trees: Sequence[Tree], word_ids: Callable[[list[str]], np.ndarray]
    ) -> TreeBatch:
        """Flatten (``flatten_tree``) and join in one call."""
        return cls.from_flat([flatten_tree(t, word_ids) for t in trees])
