"""Real corpora as people have them (issue 14): Penn-Treebank-format files, given splits,
word-level streams, streams from disk, and per-word perplexity as papers report it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.tasks.lm import LMDataConfig, LMTask

_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


def _ptb(path, n, seed):
    """A PTB-format file: lower case, pre-tokenized, <unk> and N, one sentence per line."""
    rng = np.random.default_rng(seed)
    words = (
        "the company said it 's n't a <unk> of N shares in the market and its profit rose".split()
    )
    lines = [" " + " ".join(rng.choice(words, rng.integers(4, 15))) + " " for _ in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ptb(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptb")
    return {
        s: _ptb(d / f"ptb.{s}.txt", n, i)
        for i, (s, n) in enumerate((("train", 400), ("valid", 60), ("test", 60)))
    }


def test_ptb_lines_are_sentences_and_unk_is_one_token(ptb):
    t = LMTask(LMDataConfig(corpus=str(ptb["train"]), valid=str(ptb["valid"])))
    v = t.vocab
    assert "<" not in v and "unk" not in v and "N" in v and "n't" in v and "'s" in v
    assert len(t.train) == 400 and len(t.valid) == 60  # every line a sentence
    assert v.unk_id is not None and sum(int((s == v.unk_id).sum()) for s in t.train) > 0


def test_stream_batching_at_word_level(ptb):
    t = LMTask(
        LMDataConfig(
            corpus=str(ptb["train"]),
            valid=str(ptb["valid"]),
            batching="stream",
            batch_size=4,
            bptt=7,
        )
    )
    assert t.carries_state and t.train.ndim == 1
    eos = t.vocab.eos_id
    assert (t.train == eos).sum() == 400  # each sentence ended by </s>
    b = t.batches("train", np.random.default_rng(0))
    assert b[0][0].shape == (7, 4) and b[0][2] is None
    np.testing.assert_array_equal(b[0][0][1:], b[0][1][:-1])  # targets are the next tokens


def test_train_with_given_splits_reports_test_perplexity(ptb, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(
        [
            "train",
            "lm",
            "--corpus",
            ptb["train"],
            "--valid",
            ptb["valid"],
            "--test",
            ptb["test"],
            "--batching",
            "stream",
            "--bptt",
            "10",
            "--batch-size",
            "8",
            "--hidden-size",
            "16",
            "--embed-size",
            "16",
            "--epochs",
            "2",
            "--samples",
            "2",
            "--out",
            out,
            "--no-progress",
        ]
    )
    assert code == 0, err
    assert "test perplexity" in stdout
    code, js, err = _run(["eval", out, "--split", "test", "--json"])
    assert code == 0, err
    r = json.loads(js)
    # per word, counting </s>: as many tokens as the test file's words plus one per line
    words = sum(len(ln.split()) + 1 for ln in ptb["test"].read_text().splitlines() if ln.strip())
    assert r["tokens"] == words - 1  # a stream predicts every token but the first
    assert r["perplexity"] < len(set(ptb["train"].read_text().split())) + 4
    code, js2, _ = _run(["eval", out, "--corpus", ptb["test"], "--json"])
    assert code == 0 and json.loads(js2)["perplexity"] == pytest.approx(r["perplexity"])


def test_disk_stream_equals_memory_stream(ptb, tmp_path):
    kw = dict(
        corpus=str(ptb["train"]), valid=str(ptb["valid"]), batching="stream", batch_size=4, bptt=9
    )
    mem = LMTask(LMDataConfig(**kw))
    disk = LMTask(LMDataConfig(**kw, disk_stream=True, work_dir=str(tmp_path)))
    assert disk.vocab.itos == mem.vocab.itos
    bm, bd = mem.batches("train", None), disk.batches("train", None)
    assert len(bm) == len(bd)
    for i in (0, len(bm) // 2, len(bm) - 1):
        np.testing.assert_array_equal(bm[i][0], bd[i][0])
        np.testing.assert_array_equal(bm[i][1], bd[i][1])
    assert list(tmp_path.glob("ids-*.bin"))  # the ids live beside the run


def test_format_tokens_keeps_tokens_and_text_tokenizes(tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "The company's U.S.-based unit didn't say. Dr. Smith agreed, e.g. on prices.\n" * 30
    )
    t = LMTask(LMDataConfig(corpus=str(raw), format="text"))
    toks = set(t.vocab.itos)
    assert {"'s", "u.s.-based", "did", "n't", "dr.", "e.g."} <= toks
    tok = tmp_path / "tok.txt"
    tok.write_text("a B <unk> n't\n" * 50)
    t2 = LMTask(LMDataConfig(corpus=str(tok), format="tokens"))
    assert {"B", "n't"} <= set(t2.vocab.itos) and "b" not in t2.vocab


def test_bad_combinations_are_one_line_errors(ptb, tmp_path):
    code, _, err = _run(["train", "lm", "--disk-stream", "--out", tmp_path / "r"])
    assert code == 2 and "--disk-stream needs" in err
    code, _, err = _run(["train", "lm", "--valid", ptb["valid"], "--out", tmp_path / "r2"])
    assert code == 2 and "--corpus" in err


def test_zaremba_preset_sets_its_flags_and_given_flags_win(ptb, tmp_path):
    out = tmp_path / "z"
    code, _, err = _run(
        [
            "train",
            "lm",
            "--preset",
            "zaremba-small",
            "--corpus",
            ptb["train"],
            "--valid",
            ptb["valid"],
            "--hidden-size",
            "8",
            "--embed-size",
            "8",
            "--epochs",
            "6",
            "--lr-decay-start",
            "2",
            "--out",
            out,
            "--samples",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0, err
    meta = json.loads(np.load(out / "checkpoint.npz")["__meta__"].tobytes())
    m, t, f = meta["model_config"], meta["task_config"], meta["fit"]
    assert (m["num_layers"], m["hidden_size"], m["init_range"], m["cell"]) == (2, 8, 0.1, "lstm")
    assert (t["batching"], t["batch_size"], t["bptt"]) == ("stream", 20, 35)
    assert (f["optimizer"], f["lr"], f["lr_decay"], f["halve_lr"]) == ("sgd", 35.0, 0.5, False)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if r["kind"] == "eval"]
    # the learning rate of each epoch: 35 for epochs 1-2, then halved after every epoch
    assert lrs == [35.0, 35.0, 17.5, 8.75, 4.375, 2.1875]
    assert meta["position"]["lr"] == 35.0 * 0.5**5
