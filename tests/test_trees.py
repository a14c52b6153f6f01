"""Trees: the bracketed reader and writer, escapes, error messages, binarisation, sentence trees,
the tree vocabulary, flattening and level batching, and the arithmetic trees."""

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.trees import (
    Tree,
    TreeBatch,
    TreeVocab,
    arith_trees,
    arith_vocab,
    binarize,
    evaluate,
    expression_depth,
    flatten_tree,
    format_tree,
    parse_tree,
    random_expression,
    read_trees,
    to_tokens,
    tree_from_sentence,
    write_trees,
)
from rnnkit.trees.batch import FlatTree

SST = "(3 (2 The) (4 (3 good) (2 movie)))"


# -- reader and writer ---------------------------------------------------------------------------
def test_parse_sst_tree():
    t = parse_tree(SST)
    assert t.label == 3 and not t.is_leaf and len(t.children) == 2
    assert t.children[0] == Tree.leaf("The", 2)
    assert t.leaves() == ["The", "good", "movie"]
    assert t.height() == 2 and t.num_nodes() == 5 and t.is_binary()
    assert [n.label for n in t.nodes()] == [3, 2, 4, 3, 2]
    assert format_tree(t) == SST and str(t) == SST


def test_none_labels_and_spacing():
    t = parse_tree("  ( _ (1 a)\t(_  b) ) \n")
    assert t.label is None and t.children[1].label is None
    assert format_tree(t) == "(_ (1 a) (_ b))"


def test_escapes_read_and_written_back():
    s = r"(2 (2 -LRB-) (3 (2 1\/2) (1 -RRB-)) (2 -LCB-) (2 -RCB-) (2 -LSB-) (2 -RSB-) (2 x-LRB-y))"
    t = parse_tree(s)
    assert t.leaves() == ["(", "1/2", ")", "{", "}", "[", "]", "x(y"]
    assert format_tree(t) == s
    raw = parse_tree(s, unescape=False)
    assert raw.leaves()[0] == "-LRB-" and raw.leaves()[1] == r"1\/2"
    assert format_tree(raw, escape=False) == s


def test_writer_rejects_whitespace_words():
    with pytest.raises(RnnkitError, match="whitespace"):
        format_tree(Tree.leaf("a b", 1))


def _random_tree(rng, depth, alphabet):
    if depth == 0 or rng.random() < 0.3:
        n = int(rng.integers(1, 5))
        label = None if rng.random() < 0.2 else int(rng.integers(5))
        return Tree.leaf("".join(rng.choice(list(alphabet), n)), label)
    kids = [_random_tree(rng, depth - 1, alphabet) for _ in range(int(rng.integers(1, 4)))]
    return Tree(None if rng.random() < 0.2 else int(rng.integers(5)), children=kids)


def test_round_trip_random_trees(tmp_path):
    rng = np.random.default_rng(0)
    trees = [_random_tree(rng, 6, "ab1(){}[]/\\_.,'") for _ in range(200)]
    for t in trees:
        assert parse_tree(format_tree(t)) == t
    path = tmp_path / "trees.txt"
    write_trees(path, trees)
    assert read_trees(path) == trees
    text = path.read_text(encoding="utf-8")
    assert read_trees(path) == [parse_tree(line) for line in text.splitlines()]
    path.write_text("\n" + text.replace("\n", "\n\n"), encoding="utf-8")  # blank lines skipped
    assert read_trees(path) == trees


def test_tree_equality_is_structural():
    assert parse_tree(SST) == parse_tree(SST)
    assert parse_tree(SST) != parse_tree("(3 (2 The) (4 (3 good) (1 movie)))")
    assert parse_tree("(1 (1 a) (1 b))") != parse_tree("(1 (1 (1 a) (1 b)))")
    assert parse_tree(SST) != "not a tree"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "(3 (2 The) (4 (3 good) (2 movie))",
            r"unbalanced brackets: '\(' at line 4, column 1 is never closed",
        ),
        ("(3 (2 The)))", r"unbalanced brackets: '\)' at line 4, column 12 closes nothing"),
        (")", r"unbalanced brackets: '\)' at line 4, column 1"),
        ("((2 The) (2 x))", r"missing label \(found '\('\) at line 4, column 2"),
        ("(3 (The) (2 x))", r"missing or non-integer label at line 4, column 5: .* found 'The'"),
        ("(NP (DT the))", r"non-integer label at line 4, column 2"),
        ("(3 ())", r"empty tree '\(\)' at line 4, column 5"),
        ("(3 (2 x) (1))", r"empty tree .* at line 4, column 10"),
        ("", r"empty input at line 4"),
        ("(3 The (2 x))", r"word 'The' at line 4, column 8"),
        ("(3 a b)", r"word 'b' .* at line 4, column 6"),
        ("hello", r"expected '\(' at line 4, column 1"),
        ("(3 (2 x)) (2 y)", r"text after the end of the tree at line 4, column 11"),
    ],
)
def test_parse_errors_name_line_and_column(text, message):
    with pytest.raises(RnnkitError, match=message):
        parse_tree(text, line=4)


def test_read_trees_errors_name_the_file_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("(1 a)\n\n(2 (1 b) (0 c)\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"line 3, column 1 is never closed"):
        read_trees(p)
    p.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="no trees"):
        read_trees(p)


def test_tree_constructor_checks():
    with pytest.raises(RnnkitError, match="either a word"):
        Tree(1)
    with pytest.raises(RnnkitError, match="either a word"):
        Tree(1, word="a", children=[Tree.leaf("b")])
    with pytest.raises(RnnkitError, match="label"):
        Tree(-1, word="a")
    with pytest.raises(RnnkitError, match="label"):
        Tree(True, word="a")


def test_deep_chain_is_fine():
    t = tree_from_sentence([str(i) for i in range(5000)], how="right", label=1)
    assert t.height() == 4999 and t.num_nodes() == 9999
    assert parse_tree(format_tree(t)) == t
    assert len(flatten_tree(t, lambda ws: np.zeros(len(ws), np.int64)).left) == 9999


# -- binarize and sentence trees ------------------------------------------------------------------
def test_binarize_right_and_left():
    t = parse_tree("(4 (1 a) (2 b) (3 c) (0 d))")
    assert format_tree(binarize(t)) == "(4 (1 a) (_ (2 b) (_ (3 c) (0 d))))"
    assert format_tree(binarize(t, "left")) == "(4 (_ (_ (1 a) (2 b)) (3 c)) (0 d))"
    assert binarize(t).leaves() == t.leaves() and binarize(t).is_binary()
    assert binarize(parse_tree(SST)) == parse_tree(SST)
    with pytest.raises(RnnkitError, match="factor"):
        binarize(t, "middle")


def test_binarize_collapses_unary_chains():
    t = parse_tree("(3 (1 (2 a)) (_ (4 (0 b) (1 c) (2 d))))")
    assert format_tree(binarize(t)) == "(3 (1 a) (4 (0 b) (_ (1 c) (2 d))))"
    assert format_tree(binarize(parse_tree("(2 (_ (1 x)))"))) == "(2 x)"


def test_tree_from_sentence():
    words = "a b c d e".split()
    bal = tree_from_sentence(words, label=3)
    assert format_tree(bal) == "(3 (_ (_ (_ a) (_ b)) (_ c)) (_ (_ d) (_ e)))"
    assert bal.height() == 3
    right = tree_from_sentence(words, how="right")
    assert format_tree(right) == "(_ (_ a) (_ (_ b) (_ (_ c) (_ (_ d) (_ e)))))"
    assert tree_from_sentence(["x"], label=2) == Tree.leaf("x", 2)
    for n in (1, 2, 7, 16, 33):
        t = tree_from_sentence([str(i) for i in range(n)])
        assert t.is_binary() and t.leaves() == [str(i) for i in range(n)]
        assert t.height() == int(np.ceil(np.log2(n)))
    with pytest.raises(RnnkitError, match="at least one word"):
        tree_from_sentence([])
    with pytest.raises(RnnkitError, match="how"):
        tree_from_sentence(["a"], how="left")


# -- vocabulary ---------------------------------------------------------------------------------
def test_tree_vocab():
    trees = [parse_tree(SST), parse_tree("(1 (1 the) (2 Bad))")]
    v = TreeVocab.build(trees)
    assert v.vocab.itos[0] == "<unk>" and len(v) == 6
    assert v.ids(["good", "zzz"]).tolist() == [v.vocab.id("good"), 0]
    low = TreeVocab.build(trees, lower=True)
    assert len(low) == 5 and low.ids(["THE", "bad"]).tolist() == [
        low.vocab.id("the"),
        low.vocab.id("bad"),
    ]
    assert TreeVocab.from_json(low.to_json()) == low
    assert TreeVocab.build(trees, lower=True, min_count=2).vocab.itos == ["<unk>", "the"]
    with pytest.raises(RnnkitError, match="<unk>"):
        TreeVocab(["a", "<unk>"])


# -- flattening and level batching ----------------------------------------------------------------
def _ids(words):
    return np.array([ord(w[0]) - ord("a") for w in words], np.int64)


def test_flatten_is_post_order():
    f = flatten_tree(parse_tree("(1 (2 a) (3 (4 b) (_ c)))"), _ids)
    assert f.left.tolist() == [-1, -1, -1, 1, 0]
    assert f.right.tolist() == [-1, -1, -1, 2, 3]
    assert f.word.tolist() == [0, 1, 2, -1, -1]
    assert f.label.tolist() == [2, 4, -1, 3, 1]
    assert f.height.tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(RnnkitError, match="binarize"):
        flatten_tree(parse_tree("(1 (1 a) (1 b) (1 c))"), _ids)


def test_batch_rows_sorted_by_height():
    trees = [
        parse_tree("(1 (2 a) (3 (4 b) (_ c)))"),
        parse_tree("(0 d)"),
        parse_tree("(2 (1 (1 e) (1 f)) (2 (3 g) (4 h)))"),
    ]
    b = TreeBatch.from_trees(trees, _ids)
    assert (b.n_trees, b.n_nodes, b.n_leaves) == (3, 13, 8)
    assert sorted(b.words.tolist()) == list(range(8))
    assert b.levels == [(8, 11), (11, 13)]
    # every child lies in an earlier level, every node except the roots has exactly one parent
    for s, t in b.levels:
        assert (b.left[s:t] < s).all() and (b.right[s:t] < s).all()
    kids = np.concatenate([b.left[b.left >= 0], b.right[b.right >= 0]])
    assert sorted(kids.tolist() + b.roots.tolist()) == list(range(13))
    assert b.labels[b.roots].tolist() == [1, 0, 2]

    # the words of each tree, read back from the batch by a walk from its root, are in order
    def words(r):
        return (
            [chr(ord("a") + b.words[r])] if b.left[r] < 0 else words(b.left[r]) + words(b.right[r])
        )

    assert [words(r) for r in b.roots] == [t.leaves() for t in trees]
    with pytest.raises(RnnkitError, match="at least one tree"):
        TreeBatch.from_flat([])
    assert isinstance(flatten_tree(trees[0], _ids), FlatTree)


# -- arithmetic trees ---------------------------------------------------------------------------
def test_arith_representation_and_tokens():
    from rnnkit.trees.arith import combine

    three, four, five = (Tree.leaf(str(d), d) for d in (3, 4, 5))
    t = combine(combine(three, "+", four), "*", five)
    assert format_tree(t) == "(5 (7 (3 3) (_ (_ +) (4 4))) (_ (_ *) (5 5)))"
    assert to_tokens(t) == ["(", "(", "3", "+", "4", ")", "*", "5", ")"]
    assert to_tokens(t, outer=False) == ["(", "3", "+", "4", ")", "*", "5"]
    assert to_tokens(three) == ["3"]
    assert expression_depth(t) == 2 and evaluate(t) == 5
    assert combine(four, "-", five).label == 9


def test_arith_trees_labels_depths_and_seed():
    trees = arith_trees(300, [0, 1, 2, 3, 4, 5], seed=3)
    again = arith_trees(300, [0, 1, 2, 3, 4, 5], seed=3)
    assert [format_tree(t) for t in trees] == [format_tree(t) for t in again]
    rng = np.random.default_rng(0)
    for d in range(7):
        for _ in range(20):
            t = random_expression(d, rng)
            assert expression_depth(t) == d and t.is_binary()
            for n in t.nodes():  # every subexpression carries its own value
                if n.label is not None:
                    assert n.label == evaluate(n)
                else:
                    assert n.is_leaf and n.word in "+-*" or not n.is_leaf
    v = arith_vocab()
    assert len(v) == 14 and 0 not in v.ids(trees[0].leaves())
    for t in trees:  # one bracket pair per subexpression
        assert to_tokens(t).count("(") == sum(
            1 for n in t.nodes() if not n.is_leaf and n.label is not None
        )
    with pytest.raises(RnnkitError, match="ops"):
        random_expression(1, rng, ops="/")
