"""Recursive (tree-structured) networks with backpropagation through structure, batched by level
(Deep Learning book, section 10.6).

* ``tree``: the :class:`Tree` type, the bracketed (PTB / SST) reader and writer, ``binarize``,
  ``tree_from_sentence``;
* ``vocab``: :class:`TreeVocab`, word -> id with ``<unk>``;
* ``batch``: trees as arrays (:class:`FlatTree`) joined into level-sorted :class:`TreeBatch`;
* ``compose``: the plain recursive net, the RNTN and the binary Tree-LSTM, forward and backward;
* ``levels``: the level-batched forward and backward passes;
* ``model``: :class:`TreeModel` / :class:`TreeConfig`, a softmax classifier at every node;
* ``reference``: the node-at-a-time recursive implementation (tests, benchmark);
* ``arith``: generated arithmetic expression trees.

    from rnnkit.trees import TreeModel, TreeConfig, TreeVocab, read_trees, binarize
    trees = [binarize(t) for t in read_trees("train.txt")]
    vocab = TreeVocab.build(trees)
    model = TreeModel(TreeConfig(len(vocab), cell="treelstm"), vocab)
    flats = model.flatten(trees)                       # once
    loss_sum, n, grads, extra = model.loss_and_grads(flats[:25])
"""

from .arith import (
    arith_trees,
    arith_vocab,
    evaluate,
    expression_depth,
    random_expression,
    to_tokens,
)
from .batch import FlatTree, TreeBatch, flatten_tree
from .compose import COMPOSITIONS, RNNComposition, RNTNComposition, TreeLSTMComposition
from .model import TreeConfig, TreeModel, TreeNet
from .reference import reference_loss_and_grads
from .tree import (
    Tree,
    binarize,
    format_tree,
    parse_tree,
    read_trees,
    tree_from_sentence,
    write_trees,
)
from .vocab import TreeVocab

__all__ = [
    "Tree",
    "parse_tree",
    "read_trees",
    "format_tree",
    "write_trees",
    "binarize",
    "tree_from_sentence",
    "TreeVocab",
    "FlatTree",
    "TreeBatch",
    "flatten_tree",
    "COMPOSITIONS",
    "RNNComposition",
    "RNTNComposition",
    "TreeLSTMComposition",
    "TreeConfig",
    "TreeModel",
    "TreeNet",
    "reference_loss_and_grads",
    "arith_trees",
    "arith_vocab",
    "evaluate",
    "expression_depth",
    "random_expression",
    "to_tokens",
]
