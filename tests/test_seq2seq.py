"""Encoder-decoder sequence to sequence: gradients end to end, ragged sources, decoding, and
the seq2seq task on a generated pairs file."""

from __future__ import annotations

import contextlib
import io
import itertools
import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.addition import date_pairs, read_pairs, reversal_pairs, write_pairs
from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig


def _run(argv, stdin: str | None = None):
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None  # main's status, or a SystemExit's code
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if stdin is not None:
            import sys

            old, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        finally:
            if stdin is not None:
                sys.stdin = old
    return code, out.getvalue(), err.getvalue()


def _model(form, cell="lstm", bi=False, layers=1, embed=None, dtype="float64", eos=3, V=5, seed=1):
    return Seq2Seq(
        Seq2SeqConfig(
            src_vocab=6,
            tgt_vocab=V,
            form=form,
            cell=cell,
            hidden_size=4,
            num_layers=layers,
            bidirectional=bi,
            embed_size=embed,
            dtype=dtype,
            out_len=4,
            go_id=V - 1,
            eos_id=eos,
            seed=seed,
        )
    )


def _batch(rng, V=5):
    src = rng.integers(0, 6, (5, 3))
    tgt = rng.integers(0, V - 1, (4, 3))
    return src, np.array([5, 2, 3]), tgt, np.array([4, 1, 3])


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("form", ["repeat", "feedback"])
@pytest.mark.parametrize(
    "cell,bi,layers,embed", [("lstm", False, 1, None), ("gru", True, 2, 3), ("rnn", True, 1, None)]
)
def test_gradients_end_to_end(form, cell, bi, layers, embed):
    m = _model(form, cell, bi, layers, embed)
    batch = _batch(np.random.default_rng(0))
    r = m.loss_and_grads(batch)
    params = dict(m.parameters())
    assert set(r.grads) == set(params) and r.count == 8
    grads = {k: v.copy() for k, v in r.grads.items()}
    # the encoder's gradients are small (1e-6): a step of 1e-2 keeps round-off below 1e-12
    few = None if layers == 1 else 25  # every entry of the small models, a sample of the big one
    res = gradcheck(lambda: m.loss(batch)[0], params, grads, h=1e-2, max_entries=few)
    assert res.max_rel_error < 1e-6, res


@pytest.mark.parametrize("form", ["repeat", "feedback"])
def test_ragged_batch_equals_each_sequence_alone(form):
    """The final state is each source's own last step; padded target steps add nothing."""
    m = _model(form, bi=True)
    src, sl, tgt, tl = _batch(np.random.default_rng(3))
    src[sl[1] :, 1] = 5  # padding that must not matter
    whole = m.loss((src, sl, tgt, tl))[0]
    alone = sum(
        m.loss((src[: sl[j], j : j + 1], None, tgt[: tl[j], j : j + 1], None))[0] for j in range(3)
    )
    assert whole == pytest.approx(alone, rel=1e-12)


# ------------------------------------------------------------------------------ decoding
def test_beam_width_one_is_greedy():
    rng = np.random.default_rng(0)
    for seed in range(4):
        m = _model("feedback", "gru", embed=3, dtype="float32", seed=seed)
        src, sl = rng.integers(0, 6, (6, 20)), rng.integers(1, 7, 20)
        assert np.array_equal(m.decode(src, sl, beam=1), m._beam(m.encode(src, sl), 4, 1)[0])


def test_exhaustive_beam_finds_the_most_likely_output():
    """With width V^(T-1), beam search keeps every hypothesis: it returns the argmax over all
    V^T outputs, scored independently by the teacher-forced loss."""
    m = _model("feedback", "lstm", eos=None, V=3, seed=2)
    m.config.out_len = 3
    rng = np.random.default_rng(1)
    src, sl = rng.integers(0, 6, (4, 2)), np.array([4, 2])
    best, score = m._beam(m.encode(src, sl), 3, 9)
    for j in range(2):
        s = src[: sl[j], j : j + 1]
        nll = {
            seq: m.loss((s, None, np.array(seq)[:, None], None))[0]
            for seq in itertools.product(range(3), repeat=3)
        }
        top = min(nll, key=nll.get)
        assert tuple(best[:, j]) == top
        assert score[j] == pytest.approx(-nll[top], rel=1e-9)
    assert np.array_equal(m.decode(src, sl, beam=9), best)


def test_decode_stops_after_every_row_ended_and_rejects_bad_width():
    m = _model("feedback", dtype="float32")
    m.out.bias[...] = 0.0
    m.out.bias[3] = 50.0  # </s> always wins
    out = m.decode(np.zeros((3, 4), np.int64), max_len=10)
    assert out.shape == (1, 4) and (out == 3).all()
    with pytest.raises(RnnkitError, match="beam width"):
        m.decode(np.zeros((3, 4), np.int64), beam=0)


# ------------------------------------------------------------------------------ pairs data
def test_generated_pairs_and_reading_them(tmp_path):
    rev = reversal_pairs(50, seed=1)
    assert all(t == s[::-1] for s, t in rev) and rev == reversal_pairs(50, seed=1)
    dates = date_pairs(20, seed=0)
    assert all(len(t) == 10 and t[4] == "-" for _, t in dates)
    p = tmp_path / "p.tsv"
    write_pairs(p, rev)
    assert read_pairs(p) == rev
    p.write_text("ab\tba\n\nno tab here\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="line 3"):
        read_pairs(p)


def test_seq2seq_task_learns_string_reversal(tmp_path):
    pairs = tmp_path / "rev.tsv"
    write_pairs(pairs, reversal_pairs(1500, seed=0, min_len=2, max_len=4, letters="abcde"))
    out = tmp_path / "run"
    code, stdout, err = _run(
        [
            "train",
            "seq2seq",
            "--pairs",
            pairs,
            "--hidden-size",
            "48",
            "--epochs",
            "4",
            "--lr",
            "0.01",
            "--out",
            out,
            "--no-progress",
            "--samples",
            "2",
        ]
    )
    assert code == 0, err
    assert "held-out samples:" in stdout
    code, stdout, _ = _run(["eval", out, "--json"])
    r = json.loads(stdout)
    # chance per target token is about 1/6 (5 letters and the end token)
    assert r["per_char"] > 0.6 and 0 <= r["exact"] <= 1
    code, stdout, err = _run(["predict", out, "abc", "ezz", ""], stdin=None)
    assert code == 1 and "empty" in err  # the empty input fails, the others are answered
    lines = stdout.split("\n")
    assert len(lines) == 4 and lines[2] == "" and set(lines[0]) <= set("abcde")
    code, stdout, err = _run(["predict", out], stdin="dcb\nab\n")
    assert code == 0 and len(stdout.splitlines()) == 2


def test_seq2seq_task_needs_a_pairs_file(tmp_path):
    code, _, err = _run(["train", "seq2seq", "--out", tmp_path / "r", "--no-progress"])
    assert code == 2 and "--pairs" in err
