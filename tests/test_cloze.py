"""Fill in the blank (rnnkit train cloze): gradients, the blank never seen, bidirectional beats
left-to-right where the right context decides, predict and its errors."""

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.gradcheck import gradcheck
from rnnkit.layers import cell_names
from rnnkit.models.cloze import ClozeConfig, ClozeModel
from rnnkit.tasks import task_names
from rnnkit.tasks.runs import load_model

task_names()  # load every task module: the cells they register are offered by the CLI too


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _model(cell="lstm", direction="both", layers=1, **kw):
    return ClozeModel(
        ClozeConfig(
            vocab_size=9,
            unk_id=1,
            direction=direction,
            embed_size=4,
            hidden_size=3,
            cell=cell,
            num_layers=layers,
            dtype="float64",
            embed_init_std=1.0,
            **kw,
        )
    )


IDS = np.random.default_rng(0).integers(2, 9, (6, 4))
LENGTHS = np.array([6, 3, 5, 4])  # ragged: [<s>, words, </s>] of 1..4 words


@pytest.mark.parametrize("cell", cell_names())
@pytest.mark.parametrize("direction,layers", [("both", 1), ("both", 2), ("forward", 2)])
def test_gradcheck_ragged_float64(cell, direction, layers):
    m = _model(cell, direction, layers)
    r = m.loss_and_grads((IDS, LENGTHS))
    assert set(r.grads) == set(m.parameters())
    assert r.count == int((LENGTHS - 2).sum())  # every word position, none of the padding
    res = gradcheck(
        lambda: m.evaluate((IDS, LENGTHS)).loss_sum, m.parameters(), r.grads, max_entries=24
    )
    assert res.max_rel_error < 1e-6, res


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_the_blank_itself_is_never_read(direction):
    m = _model("gru", direction, layers=2)
    ids = np.array([2, 5, 6, 7, 8, 3])
    base = m.blank_logits(ids, 3)
    changed = ids.copy()
    changed[3] = 4  # the word at the blank
    np.testing.assert_array_equal(m.blank_logits(changed, 3), base)
    changed[4] = 2  # the word right after it: only the bidirectional model reads it
    moved = not np.allclose(m.blank_logits(changed, 3), base)
    assert moved == (direction == "both")
    changed = ids.copy()
    changed[2] = 4  # the word right before it: both read it
    assert not np.allclose(m.blank_logits(changed, 3), base)


def test_padding_and_batching_do_not_change_the_loss():
    m = _model("lstm", "both", 2)
    whole = m.evaluate((IDS, LENGTHS)).loss_sum
    alone = sum(m.evaluate((IDS[:n, [b]], None)).loss_sum for b, n in enumerate(LENGTHS))
    assert whole == pytest.approx(alone, rel=1e-12)


# a corpus where the 2nd word is decided by the 3rd (the word AFTER it) and the 1st and 4th
# words are random: left to right, the 2nd word is a guess among 6; both ways, it is certain
PAIRS = [
    ("red", "apple"),
    ("blue", "sky"),
    ("green", "grass"),
    ("sweet", "honey"),
    ("loud", "drum"),
    ("cold", "snow"),
]
FILL = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
VERBS = ["falls", "shines", "grows", "waits", "sings", "rests"]


@pytest.fixture(scope="module")
def pattern_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cloze")
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(600):
        a, n = PAIRS[rng.integers(len(PAIRS))]
        lines.append(f"{FILL[rng.integers(6)]} {a} {n} {VERBS[rng.integers(6)]}.")
    corpus = d / "pattern.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = {}
    for direction in ("both", "forward"):
        out = d / direction
        code, stdout, err = _run(
            [
                "train",
                "cloze",
                "--corpus",
                corpus,
                "--direction",
                direction,
                "--epochs",
                "6",
                "--hidden-size",
                "16",
                "--embed-size",
                "8",
                "--lr",
                "0.02",
                "--out",
                out,
                "--no-progress",
                "--samples",
                "2",
            ]
        )
        assert code == 0, err
        runs[direction] = (out, stdout)
    return runs


def test_bidirectional_beats_left_to_right_where_the_right_context_decides(pattern_runs):
    m, adjective = {}, {}
    for direction, (out, stdout) in pattern_runs.items():
        assert "held-out accuracy" in stdout and "held-out blanks" in stdout
        code, text, err = _run(["eval", out, "--json"])
        assert code == 0, err
        m[direction] = json.loads(text)
        task, model, _, _ = load_model(out)  # the same held-out split as in training
        hits = [task.fill(model, ids, 2, 1)[0][0] == task.vocab.itos[ids[2]] for ids in task.valid]
        adjective[direction] = np.mean(hits)
    # of 5 positions, both ways 3 are certain (adjective, noun, '.'), left to right 2
    assert m["both"]["accuracy"] > m["forward"]["accuracy"] + 0.1, m
    assert m["both"]["mean_rank"] < m["forward"]["mean_rank"], m
    assert adjective["both"] > 0.95 and adjective["forward"] < 0.4, adjective


def test_predict_fills_the_blank_from_a_checkpoint(pattern_runs):
    out = pattern_runs["both"][0]
    task, model, _, _ = load_model(out, load_data=False)
    assert task.train is None and "apple" in task.vocab and model.config.direction == "both"
    code, text, err = _run(
        ["predict", out, "beta ___ apple falls.", "zeta ___ snow waits.", "--top", "3"]
    )
    assert code == 0, err
    rows = text.strip().splitlines()
    assert len(rows) == 2
    first = rows[0].split("\t")[1].split()
    assert len(first) == 6 and first[0] == "red" and float(first[1]) > 0.5
    assert rows[1].split("\t")[1].split()[0] == "cold"
    assert "unknown" in err and "zeta" in err  # noted, read as <unk>, still answered


@pytest.mark.parametrize("text,found", [("no blank at all", 0), ("two ___ blanks ___", 2)])
def test_predict_needs_exactly_one_blank(pattern_runs, text, found):
    code, _, err = _run(["predict", pattern_runs["both"][0], text])
    assert code == 2
    assert err.strip().count("\n") == 0 and f"found {found}" in err and "___" in err


def test_every_cell_trains_and_saves_its_vocabulary(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("The cat sat on the mat.\nA dog ran to the cat.\nThe mat is red.\n" * 4)
    for cell in cell_names():
        out = tmp_path / cell
        code, _, err = _run(
            [
                "train",
                "cloze",
                "--corpus",
                corpus,
                "--cell",
                cell,
                "--epochs",
                "1",
                "--hidden-size",
                "4",
                "--embed-size",
                "4",
                "--out",
                out,
                "--no-progress",
                "--samples",
                "0",
            ]
        )
        assert code == 0, (cell, err)
        task, model, meta, _ = load_model(out, load_data=False)
        assert meta["task_state"]["vocab"] == task.vocab.itos and "cat" in task.vocab
        assert model.config.cell == cell
