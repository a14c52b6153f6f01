"""Tree models: level batching equals the node-at-a-time recursion, gradients of every composition
through the whole model against central differences, metrics, prediction, errors, and a short
training run on arithmetic trees."""

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.optim import make_optimizer
from rnnkit.trees import (
    TreeBatch,
    TreeConfig,
    TreeModel,
    TreeVocab,
    arith_trees,
    arith_vocab,
    binarize,
    parse_tree,
    reference_loss_and_grads,
    tree_from_sentence,
)

CELLS = ["rnn", "rntn", "treelstm"]

# ragged: one-word trees, a deep chain, a balanced tree, None labels inside and at a root
SENTIMENT = [
    "(3 (2 The) (4 (3 good) (2 movie)))",
    "(1 bad)",
    "(0 (1 (1 not) (_ (2 a) (3 good))) (_ (2 movie) (1 (2 at) (1 all))))",
    "(_ (2 it) (4 (3 (4 great) (2 ,)) (3 (2 really) (4 great))))",
    "(4 (4 (4 great) (3 good)) (_ (2 the) (1 bad)))",
    "(2 movie)",
]


def _trees():
    trees = [parse_tree(s) for s in SENTIMENT]
    trees.append(tree_from_sentence("a good movie at all really".split(), how="right", label=3))
    trees.append(tree_from_sentence("not great , not bad".split(), label=2))
    return trees


def _model(cell, dtype="float64", **kw):
    trees = _trees()
    vocab = TreeVocab.build(trees[:-1])  # "not" ... one word of the last tree is <unk>
    kw.setdefault("dim", 4)
    if cell == "treelstm":
        kw.setdefault("embed_dim", 3)
    cfg = TreeConfig(len(vocab), cell=cell, dtype=dtype, seed=1, **kw)
    return TreeModel(cfg, vocab), trees


@pytest.mark.parametrize("cell", CELLS)
def test_batched_equals_node_at_a_time(cell):
    model, trees = _model(cell, dim=5, init="identity" if cell != "treelstm" else "uniform")
    loss, n, grads, _ = model.loss_and_grads(trees)
    ref_loss, ref_n, ref_grads = reference_loss_and_grads(model, trees)
    assert n == ref_n == sum(1 for t in trees for x in t.nodes() if x.label is not None)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref_grads) == {k for k, _ in model.named_parameters()}
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-12, atol=1e-12, err_msg=k)
    # each tree alone gives the same as the batch: (sum over trees) == batch
    parts = [model.loss_and_grads([t]) for t in trees]
    assert abs(sum(p[0] for p in parts) - loss) <= 1e-12 * loss
    for k in grads:
        np.testing.assert_allclose(sum(p[2][k] for p in parts), grads[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_whole_model(cell):
    model, trees = _model(cell, dim=3)
    flats = model.flatten(trees)
    params = dict(model.named_parameters())
    _, n, grads, _ = model.loss_and_grads(flats)
    mean = {k: g / n for k, g in grads.items()}
    res = gradcheck(lambda: model.evaluate(flats)[0] / n, params, mean)
    assert res.max_rel_error < 1e-6, str(res)
    assert all(np.abs(g).max() > 0 for g in grads.values())  # every parameter gets a gradient


def test_gradcheck_rntn_bilinear_dominates():
    # a large V makes the tensor term dominate, so its gradient is checked where it matters
    model, trees = _model("rntn", dim=3)
    model.cell.V = np.random.default_rng(5).normal(0, 0.5, model.cell.V.shape)
    flats = model.flatten(trees[:4])
    _, n, grads, _ = model.loss_and_grads(flats)
    mean = {k: g / n for k, g in grads.items()}
    res = gradcheck(lambda: model.evaluate(flats)[0] / n, dict(model.named_parameters()), mean)
    assert res.max_rel_error < 1e-6, str(res)


def test_one_word_trees_only():
    model, _ = _model("treelstm")
    loss, n, grads, extra = model.loss_and_grads([parse_tree("(1 bad)"), parse_tree("(2 movie)")])
    assert n == 2 and extra["root_total"] == 2
    assert not grads["cell.U"].any() and grads["cell.W"].any()


@pytest.mark.parametrize("cell", CELLS)
def test_float32_default_and_dtypes(cell):
    model, trees = _model(cell, dtype="float32")
    loss, n, grads, _ = model.loss_and_grads(trees)
    assert np.isfinite(loss) and all(g.dtype == np.float32 for g in grads.values())
    m64, _ = _model(cell)
    m64.load_state_dict(model.state_dict())
    assert abs(m64.evaluate(trees)[0] - loss) < 1e-4 * loss


def test_metrics_and_predict():
    model, trees = _model("rnn", dim=6)
    loss, n, _, extra = model.loss_and_grads(trees)
    e_loss, e_n, e_extra = model.evaluate(trees)
    assert (e_loss, e_n, e_extra) == (loss, n, extra)
    labels, probs = model.predict(trees)
    assert labels.shape == (8,) and probs.shape == (8, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    roots = [t.label for t in trees]
    lab = [i for i, r in enumerate(roots) if r is not None]
    assert extra["root_total"] == len(lab) == 7
    assert extra["root_correct"] == sum(labels[i] == roots[i] for i in lab)
    binary = [i for i in lab if roots[i] != 2]
    pos = probs[:, 3:].sum(axis=1) > probs[:, :2].sum(axis=1)
    assert extra["binary_total"] == len(binary) == 5
    assert extra["binary_correct"] == sum(pos[i] == (roots[i] > 2) for i in binary)
    assert extra["node_total"] == n
    # predicting one tree at a time gives the batch's numbers
    for i, t in enumerate(trees):
        np.testing.assert_allclose(model.predict([t])[1][0], probs[i], rtol=1e-12)
    # a TreeBatch, FlatTrees and Trees are the same batch
    b = TreeBatch.from_flat(model.flatten(trees))
    assert model.evaluate(b)[0] == model.evaluate(model.flatten(trees))[0] == e_loss


def test_no_binary_counts_without_five_classes():
    model = TreeModel(TreeConfig(14, n_classes=10, dim=4), arith_vocab())
    extra = model.evaluate(arith_trees(5, 1))[2]
    assert extra["binary_total"] == 0 and extra["root_total"] == 5
    assert extra["node_total"] == 15  # "a op b": labels at a, b and the root


def test_frozen_embeddings_get_no_gradient():
    model, trees = _model("rnn")
    model.freeze("embed")
    grads = model.loss_and_grads(trees)[2]
    assert "embed" not in grads and "cell.W" in grads


def test_config_defaults_and_errors():
    assert TreeModel(TreeConfig(5)).config.dim == 30
    assert TreeModel(TreeConfig(5, cell="rntn")).cell.V.shape == (25, 50, 50)
    lstm = TreeModel(TreeConfig(5, cell="treelstm"))
    assert lstm.cell.U.shape == (750, 300) and lstm.embed.dtype == np.float32
    assert TreeConfig(5, cell="treelstm").paper_training()["lr"] == 0.05
    with pytest.raises(RnnkitError, match="unknown tree cell"):
        TreeModel(TreeConfig(5, cell="gru"))
    with pytest.raises(RnnkitError, match="embed_dim == dim"):
        TreeModel(TreeConfig(5, cell="rnn", dim=4, embed_dim=3))
    with pytest.raises(RnnkitError, match="vocab_size"):
        TreeModel(TreeConfig(4), TreeVocab(["<unk>", "a"]))
    model, trees = _model("rnn")
    with pytest.raises(RnnkitError, match="out of range for n_classes"):
        model.evaluate([parse_tree("(7 movie)")])
    with pytest.raises(RnnkitError, match="binarize"):
        model.evaluate([parse_tree("(1 (1 a) (1 b) (1 c))")])
    assert model.evaluate([binarize(parse_tree("(1 (1 a) (1 b) (1 c))"))])[1] == 4
    with pytest.raises(RnnkitError, match="no vocabulary"):
        TreeModel(model.config).evaluate(trees)
    with pytest.raises(RnnkitError, match="word id out of range"):
        TreeModel(TreeConfig(3, dim=4)).evaluate(model.flatten(trees))
    with pytest.raises(RnnkitError, match="empty batch"):
        model.evaluate([])


def _train(model, train, epochs, lr, batch=25, seed=0):
    opt = make_optimizer("adagrad", lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = rng.permutation(len(train))
        for s in range(0, len(perm), batch):
            _, n, grads, _ = model.loss_and_grads([train[i] for i in perm[s : s + batch]])
            opt.step(model.parameters(), {k: g / n for k, g in grads.items()})


def test_training_on_arithmetic_trees():
    vocab = arith_vocab()
    model = TreeModel(TreeConfig(len(vocab), cell="treelstm", dim=20, n_classes=10, seed=0), vocab)
    train = model.flatten(arith_trees(2000, [1, 2], seed=1))
    test1 = model.flatten(arith_trees(300, 1, seed=2))
    test2 = model.flatten(arith_trees(300, 2, seed=3))
    before = model.evaluate(test1)[2]
    _train(model, train, epochs=6, lr=0.1)  # about a second
    e1, e2 = model.evaluate(test1)[2], model.evaluate(test2)[2]
    acc1 = e1["root_correct"] / e1["root_total"]
    acc2 = e2["root_correct"] / e2["root_total"]
    assert before["root_correct"] / before["root_total"] < 0.25
    assert acc1 > 0.8, acc1  # chance 0.1, majority class about 0.2
    assert acc2 > 0.35, acc2
    assert e2["node_correct"] / e2["node_total"] > 0.8  # digits and small subexpressions
