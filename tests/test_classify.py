"""Sequence classification (rnnkit train classify): gradients, final states, labelled text,
the digits, predict and its errors."""

import json
import sys

import numpy as np
import pytest
from conftest import need, run_cli

from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.layers import cell_names
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks import task_names
from rnnkit.tasks.classify import parse_digit_input, read_labelled
from rnnkit.tasks.runs import load_model

task_names()  # load every task module: the cells they register are offered by the CLI too


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


RNG = np.random.default_rng(0)
IDS = RNG.integers(1, 9, (6, 4))
LENGTHS = np.array([6, 3, 1, 4])  # ragged, with a one-step sequence
LABELS = np.array([0, 2, 1, 2])


def _text_model(cell="lstm", bidirectional=False, layers=1):
    return SequenceClassifier(
        ClassifierConfig(
            num_classes=3,
            vocab_size=9,
            embed_size=4,
            hidden_size=3,
            cell=cell,
            num_layers=layers,
            bidirectional=bidirectional,
            dtype="float64",
            embed_init_std=1.0,
        )
    )


@pytest.mark.parametrize("cell", cell_names())
@pytest.mark.parametrize("bidirectional,layers", [(False, 1), (True, 2)])
def test_gradcheck_ragged_text_float64(cell, bidirectional, layers):
    m = _text_model(cell, bidirectional, layers)
    batch = (IDS, LABELS, LENGTHS)
    r = m.loss_and_grads(batch)
    assert set(r.grads) == set(m.parameters()) and r.count == 4
    res = gradcheck(lambda: m.evaluate(batch).loss_sum, m.parameters(), r.grads, max_entries=24)
    assert res.max_rel_error < 1e-6, res


def test_gradcheck_feature_inputs_bidirectional_stacked():
    m = SequenceClassifier(
        ClassifierConfig(
            num_classes=3,
            input_size=5,
            hidden_size=3,
            cell="gru",
            num_layers=2,
            bidirectional=True,
            dtype="float64",
        )
    )
    x = RNG.standard_normal((6, 4, 5))
    r = m.loss_and_grads((x, LABELS, LENGTHS))
    res = gradcheck(
        lambda: m.evaluate((x, LABELS, LENGTHS)).loss_sum, m.parameters(), r.grads, max_entries=24
    )
    assert res.max_rel_error < 1e-6, res


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_final_features_are_the_top_layers_h_n_of_both_directions(cell):
    m = _text_model(cell, bidirectional=True, layers=2)
    f, _ = m.features(IDS, LENGTHS)
    _, h_n = m.rnn.forward(m.embed.forward(IDS), lengths=LENGTHS)
    h = h_n[0] if isinstance(h_n, tuple) else h_n  # (L*D, B, H); the top layer: the last two
    np.testing.assert_array_equal(f, np.concatenate([h[-2], h[-1]], axis=1))


def test_padding_does_not_change_a_sequences_probabilities():
    m = _text_model("gru", bidirectional=True, layers=2)
    batch = m.predict_proba(IDS, LENGTHS)
    for b, n in enumerate(LENGTHS):
        np.testing.assert_allclose(m.predict_proba(IDS[:n, [b]]), batch[[b]], rtol=1e-12)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """label = whether the text contains "cat"."""
    d = tmp_path_factory.mktemp("classify")
    rng = np.random.default_rng(0)
    words = "the a dog sat on mat ran fast slow big red blue green".split()
    lines = []
    for _ in range(300):
        w = list(rng.choice(words, rng.integers(2, 9)))
        if rng.random() < 0.5:
            w.insert(int(rng.integers(len(w) + 1)), "cat")
        lines.append(("yes" if "cat" in w else "no") + "\t" + " ".join(w))
    data = d / "cats.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = d / "run"
    code, stdout, err = _run(
        [
            "train",
            "classify",
            "--data",
            data,
            "--epochs",
            "4",
            "--hidden-size",
            "16",
            "--embed-size",
            "8",
            "--out",
            out,
            "--no-progress",
            "--samples",
            "3",
        ]
    )
    assert code == 0, err
    return out, stdout


def test_labelled_text_is_learned(text_run):
    out, stdout = text_run
    assert "held-out accuracy" in stdout and " -> " in stdout
    code, text, err = _run(["eval", out, "--json"])
    assert code == 0, err
    r = json.loads(text)
    assert r["accuracy"] > 0.9, r


def test_predict_text_from_a_checkpoint(text_run):
    out, _ = text_run
    task, model, meta, _ = load_model(out, load_data=False)
    assert task.train is None and task.labels == ["no", "yes"] and "cat" in task.vocab
    assert meta["task_state"]["labels"] == ["no", "yes"]
    code, text, err = _run(["predict", out, "the big cat sat", "a red dog ran zebra", "--top", "1"])
    assert code == 0, err
    rows = [r.split("\t") for r in text.strip().splitlines()]
    assert [r[0] for r in rows] == ["the big cat sat", "a red dog ran zebra"]
    (l1, p1), (l2, p2) = (r[1].split() for r in rows)
    assert (l1, l2) == ("yes", "no") and float(p1) > 0.5 and float(p2) > 0.5
    assert "zebra" in err and "unknown" in err
    code, text, _ = _run(["predict", out, "the cat", "--top", "5"])  # at most every label
    assert code == 0 and len(text.split("\t")[1].split()) == 4


def test_predict_returns_records_and_prints_nothing(text_run, capsys):
    from rnnkit.tasks.results import PredictOptions, Ranked

    task, model, _, _ = load_model(text_run[0], load_data=False)
    res = task.predict(model, ["the big cat sat", "a zebra"], PredictOptions(top=2))
    assert capsys.readouterr() == ("", "")
    assert [type(r) for r in res.rows] == [Ranked, Ranked] and res.status == 0
    assert [r.input for r in res.rows] == ["the big cat sat", "a zebra"]
    assert res.rows[0].candidates[0][0] == "yes" and len(res.rows[0].candidates) == 2
    assert len(res.notes) == 1 and "zebra" in res.notes[0] and res.notes[0].startswith("note: ")


def test_every_cell_and_char_level_train(tmp_path):
    data = tmp_path / "d.tsv"
    data.write_text("pos\tgood fun\nneg\tbad dull\npos\tfun good day\nneg\tdull bad day\n" * 5)
    for cell in cell_names():
        out = tmp_path / cell
        code, _, err = _run(
            [
                "train",
                "classify",
                "--data",
                data,
                "--cell",
                cell,
                "--level",
                "char",
                "--bidirectional",
                "--epochs",
                "1",
                "--hidden-size",
                "4",
                "--out",
                out,
                "--no-progress",
                "--samples",
                "0",
            ]
        )
        assert code == 0, (cell, err)
        task, model, _, _ = load_model(out, load_data=False)
        assert model.config.cell == cell and "g" in task.vocab and task.labels == ["neg", "pos"]


def test_bad_data_files_are_one_line_errors(tmp_path):
    with pytest.raises(RnnkitError, match="line 2: expected 'label<TAB>text'"):
        read_labelled("a\tone\nno tab here\n")
    one = tmp_path / "one.tsv"
    one.write_text("only\tsome text\nonly\tmore text\n")
    code, _, err = _run(
        ["train", "classify", "--data", one, "--out", tmp_path / "r", "--no-progress"]
    )
    assert code == 2 and "1 label" in err and err.count("\n") == 1


def test_digit_inputs_parse():
    assert parse_digit_input(",".join(["16"] * 64)).shape == (1, 8, 8)
    with pytest.raises(RnnkitError, match="64 pixels"):
        parse_digit_input("1,2,3")
    with pytest.raises(RnnkitError, match=r"\[0, 16\]"):
        parse_digit_input(",".join(["17"] * 64))


def test_digits_without_scikit_learn_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    code, _, err = _run(["train", "classify", "--out", tmp_path / "r", "--no-progress"])
    assert code == 2 and "pip install scikit-learn" in err and "--data" in err
    assert err.count("\n") == 1


def test_digits_short_run_beats_chance_by_far(tmp_path):
    need("sklearn")  # the digits ship with scikit-learn
    out = tmp_path / "digits"
    code, stdout, err = _run(
        [
            "train",
            "classify",
            "--epochs",
            "2",
            "--hidden-size",
            "32",
            "--out",
            out,
            "--no-progress",
            "--samples",
            "2",
        ]
    )
    assert code == 0, err
    r = json.loads(_run(["eval", out, "--json"])[1])
    assert r["accuracy"] > 0.7, r  # chance: 0.1
    from sklearn.datasets import load_digits

    d = load_digits()
    npy = tmp_path / "three.npy"
    np.save(npy, d.images[:3])
    row = ",".join(str(int(v)) for v in d.images[0].ravel())
    code, text, err = _run(["predict", out, row, npy, "--top", "2"])
    assert code == 0, err
    rows = text.strip().splitlines()
    assert len(rows) == 4 and rows[1].startswith(f"{npy}[0]\t")
    assert all(len(r.split("\t")[1].split()) == 4 for r in rows)
