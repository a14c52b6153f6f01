"""The tree task through the command line: arithmetic trees learned above chance, a hand-written
treebank via --trees, eval's JSON keys, evaluation on another file, predict on a sentence, a tree
and an expression, exact resume after a time-budget stop, and the adapter's per-depth counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.errors import RnnkitError
from rnnkit.models.tree import TreeItems, TreeModelConfig
from rnnkit.rundir import load_run
from rnnkit.tasks.runs import load_model
from rnnkit.tasks.tree import TreeDataConfig, TreeTask, parse_expression
from rnnkit.trees import TreeBatch, arith_trees, arith_vocab, expression_depth, write_trees
from rnnkit.trees import evaluate as arith_value

TRAIN = """\
(4 (3 (2 a) (3 (3 good) (2 movie))) (4 (2 ,) (4 (4 truly) (4 wonderful))))
(0 (1 (2 a) (1 (1 bad) (2 movie))) (0 (2 ,) (0 (0 truly) (0 awful))))
(3 (2 the) (3 (3 good) (2 plot)))
(1 (2 the) (1 (1 bad) (2 plot)))
(4 (2 it) (4 (2 is) (4 (4 wonderful) (2 .))))
(0 (2 it) (0 (2 is) (0 (0 awful) (2 .))))
(2 (2 the) (2 (2 movie) (2 plot)))
(3 (2 it) (3 (2 is) (3 good)))
(1 (2 it) (1 (2 is) (1 bad)))
(3 (3 good) (2 acting) (2 here))
(1 (1 bad) (2 acting) (2 here))
(2 (2 a) (2 movie))
"""
DEV = """\
(3 (2 a) (3 (3 good) (2 plot)))
(1 (2 a) (1 (1 bad) (2 plot)))
(4 (2 the) (4 (4 wonderful) (2 acting)))
(0 (2 the) (0 (0 awful) (2 acting)))
(2 (2 the) (2 acting))
"""


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _train(*argv):
    code, out, err = _run(["train", "tree", *argv, "--no-progress"])
    assert code == 0, err
    return out


def _eval_json(run, *extra):
    code, out, err = _run(["eval", run, "--json", *extra])
    assert code == 0, err
    return json.loads(out)


ARITH = [
    "--cell",
    "rnn",
    "--dim",
    "50",
    "--lr",
    "0.1",
    "--arith-train",
    "2000",
    "--arith-valid",
    "600",
    "--arith-depth",
    "2",
    "--arith-test-depth",
    "3",
]


@pytest.fixture(scope="module")
def arith_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("arith") / "run"
    stdout = _train(*ARITH, "--epochs", "6", "--out", out, "--samples", "3")
    return out, stdout


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    d = tmp_path_factory.mktemp("tb")
    (d / "train.txt").write_text(TRAIN)
    (d / "dev.txt").write_text(DEV)
    out = d / "run"
    stdout = _train(
        "--trees",
        d / "train.txt",
        "--dev",
        d / "dev.txt",
        "--cell",
        "rnn",
        "--epochs",
        "30",
        "--lr",
        "0.2",
        "--out",
        out,
        "--samples",
        "2",
    )
    return d, out, stdout


# ---------------------------------------------------------------------------- arithmetic
def test_arithmetic_run_learns_well_above_chance(arith_run):
    out, stdout = arith_run
    m = _eval_json(out)
    for key in (
        "loss",
        "root_accuracy",
        "all_accuracy",
        "root_accuracy_d1",
        "root_accuracy_d2",
        "root_accuracy_d3",
        "checkpoint",
    ):
        assert key in m
    assert "root_binary_accuracy" not in m  # 10 classes
    # the most frequent value of the held-out roots is about 0.2 of them
    held = TreeTask(TreeDataConfig(arith_valid=600, arith_depth=2, arith_test_depth=3)).valid_trees
    majority = np.bincount([t.label for t in held]).max() / len(held)
    assert majority < 0.2 and m["root_accuracy"] > 2 * majority and m["root_accuracy_d1"] > 0.9
    assert "root accuracy by depth" in stdout and "held-out examples" in stdout
    meta, _ = load_run(out)
    assert meta["model_config"]["dim"] == 50 and meta["model_config"]["n_classes"] == 10
    assert meta["task_config"]["batch_size"] == 27  # the plain net's paper batch
    assert meta["fit"]["optimizer"] == "adagrad" and meta["fit"]["weight_decay"] == 1e-4


def test_held_out_arithmetic_is_fresh_and_of_every_depth():
    task = TreeTask(
        TreeDataConfig(arith_train=300, arith_valid=400, arith_depth=2, arith_test_depth=4)
    )
    _, depths = task._split("valid")
    assert sorted(set(depths.tolist())) == [1, 2, 3, 4]
    assert all(arith_value(t) == t.label for t in task.valid_trees)
    train, tdepths = task._split("train")
    assert len(train) == 300 and tdepths is None
    model = task.build_model(TreeModelConfig(cell="rnn", dim=8))
    assert model.config.n_classes == 10 and task.cfg.batch_size == 27


def test_depth_counts_sum_to_the_root_counts():
    vocab = arith_vocab()
    trees = arith_trees(60, [1, 2, 3], seed=3)
    task = TreeTask(TreeDataConfig(arith_valid=10))
    model = task.build_model(TreeModelConfig(cell="rntn", dim=6), seed=1)
    flats = [model.flatten([t])[0] for t in trees]
    depths = np.array([expression_depth(t) for t in trees])
    r = model.evaluate(TreeItems(flats, depths, TreeBatch.from_flat(flats)))
    ex = r.extra
    assert sum(ex[f"total_d{k}"] for k in (1, 2, 3)) == ex["root_total"] == 60
    assert sum(ex[f"correct_d{k}"] for k in (1, 2, 3)) == ex["root_correct"]
    pred, _ = model.predict(trees)
    for k in (1, 2, 3):
        sel = depths == k
        assert ex[f"correct_d{k}"] == int(
            (pred[sel] == np.array([t.label for t in trees])[sel]).sum()
        )
    base = model.evaluate(flats)  # no depths: the library's counts, same loss
    assert base.loss_sum == pytest.approx(r.loss_sum, rel=1e-6) and "total_d1" not in base.extra
    assert len(vocab) == model.config.vocab_size
    # data parallelism: the blocks' sums are the whole batch's
    whole = model.loss_and_grads(TreeItems(flats, depths))
    parts = [task.shard(TreeItems(flats, depths), r, 4) for r in range(4)]
    outs = [model.loss_and_grads(p) for p in parts]
    assert sum(len(p) for p in parts) == 60 and sum(o.count for o in outs) == whole.count
    assert sum(o.loss_sum for o in outs) == pytest.approx(whole.loss_sum, rel=1e-5)
    for k, g in whole.grads.items():
        np.testing.assert_allclose(sum(o.grads[k] for o in outs), g, rtol=1e-4, atol=1e-6)
    ev = [model.evaluate(p).extra for p in parts]
    assert sum(e["correct_d2"] for e in ev) == ex["correct_d2"]
    assert task.shard(TreeItems(flats[:2]), 0, 4) is None


def test_parse_expression_precedence_and_errors():
    t = parse_expression("3 + 4 * 5")
    assert t.label == 3 and arith_value(t) == 3 and expression_depth(t) == 2
    assert str(parse_expression("(3+4)*5")) == "(5 (7 (3 3) (_ (_ +) (4 4))) (_ (_ *) (5 5)))"
    assert parse_expression("9 - 3 - 4").label == 2  # left to right
    for bad in ("12 + 3", "3 +", "(3 + 4", "3 / 4", "3 4"):
        with pytest.raises(RnnkitError):
            parse_expression(bad)


def test_predict_an_expression_and_a_tree(arith_run):
    out, _ = arith_run
    code, stdout, err = _run(["predict", out, "(3 + 4) * 5", "(7 (3 3) (_ (_ +) (4 4)))"])
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        fields = line.split("\t")
        probs = [float(x.split(":")[1]) for x in fields[2].split()]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 0.01
        assert int(fields[1]) == int(np.argmax(probs))
    assert lines[0].endswith("gold 5") and lines[1].endswith("gold 7")
    assert "balanced" not in err


def test_evaluate_file_on_an_arithmetic_run_reports_depths(arith_run, tmp_path):
    out, _ = arith_run
    task, model, _, _ = load_model(out, load_data=False)
    path = tmp_path / "expr.txt"
    write_trees(path, arith_trees(40, [1, 2], seed=9))
    r = task.evaluate_file(model, path)
    assert r["trees"] == 40 and r["unknown_words"] == 0
    assert "root_accuracy_d1" in r and "root_accuracy_d2" in r and "root_accuracy_d3" not in r


def test_resume_after_a_time_budget_stop_is_exact(tmp_path):
    args = [
        *ARITH,
        "--arith-train",
        "300",
        "--arith-valid",
        "100",
        "--epochs",
        "2",
        "--samples",
        "0",
    ]
    _train(*args, "--out", tmp_path / "a")
    _train(*args, "--out", tmp_path / "b", "--time-budget", "1e-9")  # stops after one step
    meta_b, _ = load_run(tmp_path / "b")
    assert meta_b["position"]["step"] == 1
    _train(*args, "--out", tmp_path / "b", "--resume", "--time-budget", "1000")
    (ma, a), (mb, b) = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    assert ma["position"]["step"] == mb["position"]["step"] == 2 * 12
    params = [k for k in a if k.startswith("param/")]
    assert params and all(np.array_equal(a[k], b[k]) for k in params)


# ---------------------------------------------------------------------------- a treebank file
def test_treebank_training_eval_keys_and_dev(treebank):
    _, out, stdout = treebank
    m = _eval_json(out)
    assert set(m) == {"loss", "root_accuracy", "all_accuracy", "root_binary_accuracy", "checkpoint"}
    assert m["root_accuracy"] >= 0.8 and m["root_binary_accuracy"] == 1.0  # 4 of 5 non-neutral
    assert "held-out root accuracy" in stdout
    meta, _ = load_run(out)
    assert meta["model_config"]["n_classes"] == 5 and meta["model_config"]["dim"] == 30
    assert meta["task_state"]["vocab"]["itos"][0] == "<unk>"


def test_evaluate_file_hook_matches_eval_on_the_same_trees(treebank):
    d, out, _ = treebank
    task, model, _, _ = load_model(out, load_data=False)
    r = task.evaluate_file(model, d / "dev.txt")
    m = _eval_json(out)
    assert r["trees"] == 5 and r["unknown_words"] == 0
    for k in ("loss", "root_accuracy", "all_accuracy", "root_binary_accuracy"):
        assert r[k] == pytest.approx(m[k], rel=1e-12)
    other = d / "other.txt"
    other.write_text("(3 (2 zzz) (3 good))\n(9 (2 a) (2 b))\n")
    with pytest.raises(RnnkitError, match="label 9"):
        task.evaluate_file(model, other)
    other.write_text("(3 (2 zzz) (3 good))\n")
    r2 = task.evaluate_file(model, other)
    assert r2["trees"] == 1 and r2["unknown_words"] == 1 and 0 <= r2["root_accuracy"] <= 1


def test_predict_sentence_and_tree_on_a_treebank_run(treebank):
    _, out, _ = treebank
    code, stdout, err = _run(
        ["predict", out, "a truly wonderful movie", "(0 (2 the) (0 (0 awful) (2 zzz)))"]
    )
    assert code == 0, err
    first, second = stdout.strip().splitlines()
    assert first.split("\t")[1] == "4" and len(first.split("\t")[2].split()) == 5
    assert second.split("\t")[1] == "0" and second.endswith("gold 0")
    assert "balanced binary tree" in err and "1 unknown word(s)" in err and "'zzz'" in err
    code, _, err = _run(["predict", out, "(3 (2 a) (3 good)"])
    assert code == 2 and "never closed" in err


def test_seeded_random_split_without_dev(treebank):
    d, _, _ = treebank
    cfg = {"trees": str(d / "train.txt"), "valid_fraction": 0.25}
    a, b = TreeTask(TreeDataConfig(**cfg)), TreeTask(TreeDataConfig(**cfg))
    assert len(a.valid_trees) == 3 and [str(t) for t in a.valid_trees] == [
        str(t) for t in b.valid_trees
    ]
    c = TreeTask(TreeDataConfig(**cfg, seed=1))
    assert [str(t) for t in c.valid_trees] != [str(t) for t in a.valid_trees]
    low = TreeTask(TreeDataConfig(**cfg, lower=True, min_count=2))
    assert low.vocab.lower and all(low.vocab.ids(["movie"]) > 0)


def test_bad_data_flags_are_one_line_errors(tmp_path):
    code, _, err = _run(["train", "tree", "--dev", tmp_path / "x.txt", "--out", tmp_path / "r"])
    assert code == 2 and "--dev needs --trees" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("(3 (2 a) (3 good)\n")
    code, _, err = _run(["train", "tree", "--trees", bad, "--out", tmp_path / "r2"])
    assert code == 2 and "line 1" in err and "Traceback" not in err
    (tmp_path / "t.txt").write_text(TRAIN)
    code, _, err = _run(
        [
            "train",
            "tree",
            "--trees",
            tmp_path / "t.txt",
            "--n-classes",
            "3",
            "--out",
            tmp_path / "r3",
        ]
    )
    assert code == 2 and "label 4" in err
