"""The obvious implementation, for tests and the benchmark: one node at a time, by recursion.

For each tree: a recursive forward pass computes every node's state from its children's (one
row at a time, through the same composition functions as the batched engine), then a recursive
backward pass from the root hands each child the gradient of its state, adding the node's own
classifier loss on the way, and accumulates every weight gradient node by node. It must agree with
:meth:`TreeModel.loss_and_grads` to round-off (the summation order differs), which checks the
level batching: the sort by height, the gathers and the scatter-adds. Recursion depth = tree
height, so keep trees below Python's recursion limit (about 1000).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..functional import softmax_cross_entropy
from .batch import FlatTree

__all__ = ["reference_loss_and_grads"]


def reference_loss_and_grads(model, trees: Sequence) -> tuple[float, int, dict[str, np.ndarray]]:
    """(loss_sum, labelled-node count, gradients of the sum for every parameter) node by node.
    ``trees``: Trees (encoded with ``model.vocab``) or FlatTrees."""
    flats = [t if isinstance(t, FlatTree) else model.flatten([t])[0] for t in trees]
    cell, E, clf = model.cell, model.embed, model.classify
    d = model.config.dim
    grads = {n: np.zeros_like(p) for n, p in model.named_parameters()}
    total = [0.0, 0]
    cell.prepare()

    def add(prefix: str, g: dict) -> None:
        for k, v in g.items():
            grads[prefix + k] += v

    def one_tree(f: FlatTree) -> None:
        states: dict[int, np.ndarray] = {}
        caches: dict[int, object] = {}

        def forward(i: int) -> np.ndarray:
            if f.left[i] < 0:
                states[i], caches[i] = cell.leaf_forward(E[f.word[i]][None, :])
            else:
                states[i], caches[i] = cell.forward(forward(f.left[i]), forward(f.right[i]))
            return states[i]

        def backward(i: int, dS: np.ndarray) -> None:
            if f.label[i] >= 0:  # this node's own loss term
                h = states[i][:, :d]
                loss, n, dz = softmax_cross_entropy(clf.forward(h), f.label[i : i + 1])
                total[0] += loss
                total[1] += n
                add("classify.", {"weight": dz.T @ h, "bias": dz[0]})
                dS = dS.copy()
                dS[:, :d] += dz @ clf.weight
            if f.left[i] < 0:
                de, g = cell.leaf_backward(caches[i], dS)
                grads["embed"][f.word[i]] += de[0]
                add("cell.", g)
            else:
                dl, dr, rows = cell.backward(caches[i], dS)
                add("cell.", cell.param_grads(*rows))
                backward(f.left[i], dl)
                backward(f.right[i], dr)

        root = f.n_nodes - 1
        forward(root)
        backward(root, np.zeros((1, cell.state_size), E.dtype))

    for f in flats:
        one_tree(f)
    return float(total[0]), int(total[1]), grads
