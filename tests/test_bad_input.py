"""The bad-input cases of the audit (issue 7) that were wrong before: each is a one-line error
(or a clear message) now, never a traceback or a silent wrong answer."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.layers import make_recurrent

_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _one_line(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error:"), err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    c = d / "c.txt"
    c.write_text("The cat sat on the mat. The dog ran to the park.\n" * 100)
    out = d / "run"
    code, _, err = _run(
        [
            "train",
            "lm",
            "--corpus",
            c,
            "--out",
            out,
            "--epochs",
            "1",
            "--hidden-size",
            "8",
            "--embed-size",
            "8",
            "--samples",
            "0",
        ]
    )
    assert code == 0, err
    return out


def test_crlf_corpus_reads_like_lf(tmp_path):
    lf, crlf = tmp_path / "lf.txt", tmp_path / "crlf.txt"
    text = "the cat sat.\nthe dog ran.\n" * 200
    lf.write_text(text)
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    outs = []
    for p in (lf, crlf):
        code, stdout, err = _run(
            [
                "train",
                "lm",
                "--corpus",
                p,
                "--out",
                tmp_path / p.stem,
                "--epochs",
                "1",
                "--hidden-size",
                "8",
                "--samples",
                "0",
            ]
        )
        assert code == 0, err
        outs.append(json.loads(_run(["eval", tmp_path / p.stem, "--json"])[1])["loss"])
    assert outs[0] == pytest.approx(outs[1])


def test_angle_brackets_are_ordinary_characters(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("<>" * 300 + "\n")
    code, _, err = _run(
        [
            "train",
            "lm",
            "--level",
            "char",
            "--corpus",
            f,
            "--out",
            tmp_path / "r",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--bptt",
            "8",
            "--samples",
            "0",
        ]
    )
    assert code == 0, err


def test_diverged_run_says_so(tmp_path, run):
    c = tmp_path / "c.txt"
    c.write_text("The cat sat on the mat. The dog ran to the park.\n" * 100)
    code, stdout, err = _run(
        [
            "train",
            "lm",
            "--corpus",
            c,
            "--out",
            tmp_path / "r",
            "--epochs",
            "1",
            "--lr",
            "1e6",
            "--optimizer",
            "sgd",
            "--no-clip-norm",
            "--samples",
            "0",
        ]
    )
    text = stdout + err
    assert ("diverged" in text) or ("became" in text and code == 2), text
    import re

    assert not re.search(r"\d{20,}", text)  # no 305-digit perplexity


def _tamper(src, dst, edit):
    arrays, meta = load_checkpoint(src / "checkpoint.npz")
    edit(arrays, meta)
    dst.mkdir()
    save_checkpoint(dst / "checkpoint.npz", arrays, meta)
    return dst


@pytest.mark.parametrize(
    "name,edit,needle",
    [
        ("vocab", lambda a, m: m["model_config"].update(vocab_size=10**9), "vocab_size"),
        ("position", lambda a, m: m.pop("position"), None),
        ("lr", lambda a, m: m["position"].update(lr="fast"), "lr"),
        ("shape", lambda a, m: a.update({"param/out.bias": np.zeros(3, np.float32)}), "out.bias"),
        (
            "strings",
            lambda a, m: a.update({"param/out.bias": np.array(["x"] * len(a["param/out.bias"]))}),
            "out.bias",
        ),
        ("task", lambda a, m: m.update(task_config=None), "task_config"),
        ("nan", lambda a, m: a["param/out.weight"].fill(np.nan), "out.weight holds NaN"),
    ],
)
def test_malformed_checkpoints_are_one_line_errors(run, tmp_path, name, edit, needle):
    bad = _tamper(run, tmp_path / name, edit)
    code, _, err = _run(["train", "lm", "--out", bad, "--resume", "--samples", "0"])
    if name == "position":  # a checkpoint without a position has nothing to resume from
        _one_line(code, err, "malformed", "position")
        return
    _one_line(
        code, err, "malformed" if name != "vocab" else "checkpoint", *(n for n in [needle] if n)
    )


def test_raw_pickle_is_refused_without_suggesting_pickle(tmp_path):
    p = tmp_path / "checkpoint.npz"
    p.write_bytes(pickle.dumps({"a": 1}))
    code, _, err = _run(["eval", p])
    _one_line(code, err)
    assert "pickle" not in err.replace(str(p), "").lower()


def test_bad_numbers_are_usage_errors(run):
    for argv in (
        ["generate", run, "-n", "-1"],
        ["gradcheck", "--tol", "-1"],
        ["gradcheck", "--tol", "nan"],
        ["train", "lm", "--samples", "-1"],
    ):
        code, _, err = _run(argv)
        assert code == 2 and "Traceback" not in err, argv


def test_library_checks_types():
    layer = make_recurrent("rnn", 3, 4, dtype="float64")
    layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(RnnkitError, match="bptt_truncate"):
        layer.backward(np.zeros((2, 1, 4)), bptt_truncate=2.5)
    with pytest.raises(RnnkitError):
        layer.forward(np.array([[["a", "b", "c"]]]))


def test_unknown_prompt_words_are_reported(run, capsys):
    code, stdout, err = _run(["generate", run, "-n", "1", "--prompt", "the zyzzyva"])
    assert code == 0 and "zyzzyva" in err and "<unk>" in err


# ------------------------------------------------------------------ from a later audit
def test_nan_weights_are_refused_by_eval_too(run, tmp_path):
    bad = _tamper(run, tmp_path / "nan", lambda a, m: a["param/out.bias"].fill(np.inf))
    _one_line(*_run(["eval", bad])[::2], "out.bias holds NaN or infinite")


def test_out_that_is_a_file(run, tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    code, _, err = _run(["train", "lm", "--out", f, "--epochs", "1"])
    _one_line(code, err, "is a file, not a folder")


def test_treebank_not_utf8_and_bad_line_name_the_file(tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"(1 (1 caf\xe9) (2 x))\n")
    code, _, err = _run(["train", "tree", "--trees", latin, "--out", tmp_path / "r"])
    _one_line(code, err, "latin1.txt", "not valid UTF-8", "byte 9")
    bad = tmp_path / "dev.txt"
    bad.write_text("(1 (1 a) (2 b))\n(1 (1 a) (2 b)\n")
    good = tmp_path / "train.txt"
    good.write_text("(1 (1 a) (2 b))\n" * 5)
    code, _, err = _run(["train", "tree", "--trees", good, "--dev", bad, "--out", tmp_path / "s"])
    _one_line(code, err, "dev.txt", "line 2")


def test_softmax_cross_entropy_checks_its_arguments():
    from rnnkit.functional import softmax_cross_entropy as sce

    logits = np.zeros((3, 2, 4))
    ok = sce(logits, np.zeros((3, 2), np.int64))
    assert ok[1] == 6 and ok[0] == pytest.approx(6 * np.log(4))
    for args, needle in [
        ((logits, np.zeros((2, 3), np.int64)), "leading shape (3, 2)"),  # (B, T) instead of (T, B)
        ((logits, np.zeros((3, 2))), "integer ids"),
        ((logits, np.zeros(2, np.int64)), "leading shape"),
        ((np.zeros((3, 2, 4), np.int64), np.zeros((3, 2), np.int64)), "float array"),
        ((np.zeros((3, 0)), np.zeros(3, np.int64)), "V >= 1"),
    ]:
        with pytest.raises(RnnkitError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            sce(*args)
    with pytest.raises(RnnkitError, match="mask"):
        sce(logits, np.zeros((3, 2), np.int64), np.ones((2, 3), bool))


def test_seq2seq_decode_and_batch_checks():
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

    m = Seq2Seq(Seq2SeqConfig(src_vocab=5, tgt_vocab=5, hidden_size=4, out_len=3, go_id=4))
    src = np.zeros((3, 2), np.int64)
    for bad in (-2, 0, 1.5, True):
        with pytest.raises(RnnkitError, match="max_len must be an integer >= 1"):
            m.decode(src, max_len=bad)
    with pytest.raises(RnnkitError, match="source batch of 2 sequence.*target batch of 1"):
        m.loss_and_grads((src, None, np.zeros((2, 1), np.int64), None))


def test_long_inputs_are_not_echoed_whole(run, capsys):
    from rnnkit.errors import shown

    text = "word " * 10000
    assert len(shown(text)) < 100 and "50,000 characters" in shown(text)
    assert shown("short") == "'short'"


def test_inspect_gradients_ignores_the_training_truncation():
    from rnnkit.layers import RNN
    from rnnkit.models.gradients import jacobian_norms

    layer = RNN(3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    full = jacobian_norms(layer, x)[0]
    layer.bptt_truncate = 0
    np.testing.assert_array_equal(jacobian_norms(layer, x)[0], full)
    assert layer.bptt_truncate == 0 and full.min() > 0


def test_generate_lengths_are_capped(run):
    code, _, err = _run(["generate", run, "--length", "100000000"])
    assert code == 2 and "at most 1,000,000" in err
    code, _, err = _run(["generate", run, "-n", "10000000"])
    assert code == 2 and "at most 100,000" in err


def test_treebank_lines_end_only_at_newlines(tmp_path):
    from rnnkit.trees.tree import read_trees

    f = tmp_path / "t.txt"
    f.write_bytes("(3 (2 a)\x0c(4 c))\r\n(1 (1 b)\u2028(2 d))\n".encode())
    assert len(read_trees(f)) == 2  # a form feed or U+2028 inside a line is just whitespace
