"""Backpropagation through structure, batched by level: the Python loop runs over the heights of
the batch (about 2 log2(n) for a sentence of n words, at most n - 1), never over nodes.

Forward, on a :class:`~rnnkit.trees.batch.TreeBatch` (rows sorted by height)::

    S[0:L]      = leaf_forward(E[words])                          one product for all leaves
    S[s:e]      = forward(S[left[s:e]], S[right[s:e]])           per level (s, e): a gather of the
                                                                  children's rows, one product

Backward, levels in reverse (a node's gradient is complete once every higher level is done)::

    dSl, dSr    = backward(cache, dS[s:e])
    dS[left[s:e]] += dSl;  dS[right[s:e]] += dSr                  scatter-add into the children

Each node has exactly one parent, so the child rows of a level are all distinct and the
fancy-indexed ``+=`` is an exact scatter-add (no ``np.add.at`` needed); only the embedding
gradient, where a word repeats, needs a real scatter-add (``model.embedding_grad``: sort, then
``np.add.reduceat``). The rows each level hands back (e.g. x and
dA) are stacked over all levels, and every weight gradient is ONE product over all internal nodes.
"""

from __future__ import annotations

import numpy as np

from .batch import TreeBatch
from .compose import Composition

__all__ = ["forward_levels", "backward_levels"]


def forward_levels(cell: Composition, batch: TreeBatch, e: np.ndarray):
    """e: (L, D) embeddings of the leaves (rows 0..L-1). Returns S (N, n_state*d) and the caches."""
    cell.prepare()
    S = np.empty((batch.n_nodes, cell.state_size), e.dtype)
    S[: batch.n_leaves], leaf_cache = cell.leaf_forward(e)
    caches = []
    for s, t in batch.levels:
        S[s:t], c = cell.forward(S[batch.left[s:t]], S[batch.right[s:t]])
        caches.append(c)
    return S, (leaf_cache, caches)


def backward_levels(cell: Composition, batch: TreeBatch, caches, dS: np.ndarray):
    """dS: (N, n_state*d), the gradient reaching each node's state from outside the composition
    (the classifiers); it is updated in place into the total gradient of every node's state.
    Returns (de (L, D) for the leaves' embeddings, {param: gradient} of the composition)."""
    leaf_cache, level_caches = caches
    rows = []
    for (s, t), c in zip(reversed(batch.levels), reversed(level_caches)):
        dl, dr, r = cell.backward(c, dS[s:t])
        dS[batch.left[s:t]] += dl  # distinct rows: one parent per node
        dS[batch.right[s:t]] += dr
        rows.append(r)
    grads = cell.param_grads(*(np.concatenate(parts) for parts in zip(*rows))) if rows else {}
    de, leaf_grads = cell.leaf_backward(leaf_cache, dS[: batch.n_leaves])
    grads.update(leaf_grads)
    for n, p in cell.named_parameters():  # a batch of one-word trees has no internal node
        grads.setdefault(n, np.zeros_like(p))
    return de, grads
