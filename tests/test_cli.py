"""Tests for the command line (rnnkit.cli.main, in process, and ``python -m rnnkit`` once):
help for every command, train/generate/eval/gradcheck, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.checkpoint import save_checkpoint
from rnnkit.cli import main
from rnnkit.data import default_corpus_text, default_sentences

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "--vocab-size",
    "300",
    "--hidden-size",
    "16",
    "--embed-size",
    "16",
    "--batch-size",
    "16",
    "--no-progress",
]


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpora")
    word = d / "word.txt"
    word.write_text("\n".join(default_sentences(200)) + "\n", encoding="utf-8")
    char = d / "char.txt"
    char.write_text(default_corpus_text()[:12000], encoding="utf-8")
    return {"word": word, "char": char}


@pytest.fixture(scope="module")
def word_run(tmp_path_factory, corpora):
    out = tmp_path_factory.mktemp("word_run")
    code, stdout, stderr = _run(
        [
            "train",
            "lm",
            "--corpus",
            corpora["word"],
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--out",
            out,
            "--samples",
            "3",
            *SMALL,
        ]
    )
    return code, stdout, stderr, out


@pytest.fixture(scope="module")
def char_run(tmp_path_factory, corpora):
    out = tmp_path_factory.mktemp("char_run")
    code, stdout, stderr = _run(
        [
            "train",
            "lm",
            "--level",
            "char",
            "--corpus",
            corpora["char"],
            "--epochs",
            "1",
            "--bptt",
            "32",
            "--batch-size",
            "8",
            "--hidden-size",
            "16",
            "--embed-size",
            "8",
            "--lr",
            "0.01",
            "--out",
            out,
            "--samples",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0, stderr
    return out


def _assert_one_line_error(code, stdout, stderr, *needles):
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rnnkit: error:"), stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ------------------------------------------------------------------------------- help
@pytest.mark.parametrize(
    "argv", [[], ["train"], ["train", "lm"], ["generate"], ["eval"], ["gradcheck"]]
)
def test_help_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as ei:
        main(argv + ["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rnnkit")
    if argv == ["train", "lm"]:
        assert "--time-budget" in out and "--resume" in out and "--cell" in out


def test_python_m_rnnkit_help():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "rnnkit", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    for cmd in ("train", "generate", "eval", "gradcheck"):
        assert cmd in r.stdout
    assert r.stderr == ""


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as ei:
        main([])
    assert ei.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------------------- train
def test_train_lm_writes_outputs_and_prints_perplexity_and_samples(word_run):
    code, stdout, stderr, out = word_run
    assert code == 0, stderr
    for name in ("checkpoint.npz", "metrics.jsonl", "loss.png"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "eval"] == [1, 2]
    assert "held-out perplexity" in stdout
    ppl = float(stdout.split("held-out perplexity")[1].split()[0])
    assert 1 < ppl < 300 and ppl == pytest.approx(rows[-1]["valid_ppl"], rel=1e-3)
    tail = stdout.split("samples:\n")[1].splitlines()
    assert len(tail) == 3 and all(ln.startswith("  ") and ln.strip() for ln in tail)


def test_train_resume_continues(word_run, tmp_path):
    _, _, _, out = word_run
    run = tmp_path / "r"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes())
    (run / "metrics.jsonl").write_bytes((out / "metrics.jsonl").read_bytes())
    code, stdout, stderr = _run(
        [
            "train",
            "lm",
            "--out",
            run,
            "--resume",
            "--epochs",
            "3",
            "--samples",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0, stderr
    assert "held-out perplexity" in stdout
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "eval"] == [1, 2, 3]


# ------------------------------------------------------------------------------- generate
def test_generate_prints_n_lines_deterministically(word_run):
    out = word_run[3]
    code, a, err = _run(["generate", out, "-n", "4", "--seed", "3"])
    assert code == 0, err
    lines = a.splitlines()
    assert len(lines) == 4 and all(ln.startswith("  ") and ln.strip() for ln in lines)
    assert "<unk>" not in a and "<s>" not in a and "</s>" not in a
    assert _run(["generate", out / "checkpoint.npz", "-n", "4", "--seed", "3"])[1] == a
    b = _run(["generate", out, "-n", "4", "--seed", "4"])[1]
    assert b != a
    # the same checkpoint through a word prompt: every line starts with it
    code, c, err = _run(["generate", out, "-n", "2", "--prompt", "the", "--seed", "0"])
    assert code == 0, err
    assert all(ln.strip().startswith("The") for ln in c.splitlines())


def test_generate_char_model_with_prompt(char_run):
    code, a, err = _run(
        ["generate", char_run, "-n", "3", "--length", "40", "--prompt", "The ", "--seed", "1"]
    )
    assert code == 0, err
    passages = a.split("\n  ")  # char passages may themselves hold line breaks
    assert len(passages) == 3
    assert all(p.lstrip().startswith("The ") for p in passages)
    assert (
        _run(
            ["generate", char_run, "-n", "3", "--length", "40", "--prompt", "The ", "--seed", "1"]
        )[1]
        == a
    )
    assert len(a) >= 3 * (2 + 4 + 40)


# ------------------------------------------------------------------------------- eval
def test_eval_json(word_run):
    code, stdout, err = _run(["eval", word_run[3], "--json"])
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["unit"] == "word" and r["tokens"] > 100
    assert r["perplexity"] == pytest.approx(math.exp(r["nll"]), rel=1e-12)
    assert r["bits"] == pytest.approx(r["nll"] / math.log(2), rel=1e-12)
    rows = [json.loads(ln) for ln in (word_run[3] / "metrics.jsonl").read_text().splitlines()]
    assert r["nll"] == pytest.approx(rows[-1]["valid_loss"], rel=1e-9)
    code, text, _ = _run(["eval", word_run[3]])
    assert code == 0 and "perplexity" in text and not text.startswith("{")


def test_eval_on_other_corpus_file(word_run, tmp_path):
    p = tmp_path / "other.txt"
    p.write_text(
        "The value of the expression is returned.\nA name is bound to an object.\n",
        encoding="utf-8",
    )
    code, stdout, err = _run(["eval", word_run[3], "--json", "--corpus", p])
    assert code == 0, err
    r = json.loads(stdout)
    assert r["tokens"] == 8 + 1 + 8 + 1  # words and "." plus </s> per sentence
    assert r["perplexity"] == pytest.approx(math.exp(r["nll"]))


# ------------------------------------------------------------------------------- gradcheck
def test_gradcheck_rnn():
    code, stdout, err = _run(["gradcheck", "--cell", "rnn"])
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) >= 3
    assert all(ln.rstrip().endswith("ok") for ln in lines) and "FAIL" not in stdout


def test_gradcheck_fails_with_impossible_tolerance():
    code, stdout, _ = _run(["gradcheck", "--cell", "rnn", "--tol", "1e-300"])
    assert code == 1 and "FAIL" in stdout


# ------------------------------------------------------------------------------- errors
def _train(corpus, out, *extra):
    return _run(
        [
            "train",
            "lm",
            "--corpus",
            corpus,
            "--out",
            out,
            "--epochs",
            "1",
            "--samples",
            "0",
            *SMALL,
            *extra,
        ]
    )


def test_error_missing_corpus(tmp_path):
    _assert_one_line_error(*_train(tmp_path / "nope.txt", tmp_path / "o"), "not found")


def test_error_empty_corpus(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("  \n\n", encoding="utf-8")
    _assert_one_line_error(*_train(p, tmp_path / "o"), "empty")


@pytest.mark.parametrize(
    "level, text", [("word", "word word word\n\nWord word\n\nword\n"), ("char", "a" * 500)]
)
def test_error_vocabulary_of_one(tmp_path, level, text):
    p = tmp_path / "one.txt"
    p.write_text(text, encoding="utf-8")
    _assert_one_line_error(
        *_train(p, tmp_path / "o", "--level", level, "--batch-size", "2"), "vocabulary"
    )


def test_error_non_utf8_corpus(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"\xff\xfe\x00abc")
    _assert_one_line_error(*_train(p, tmp_path / "o"), "UTF-8")
    _assert_one_line_error(*_train(p, tmp_path / "o", "--level", "char"), "UTF-8")


@pytest.mark.parametrize("cmd", ["generate", "eval"])
def test_error_bad_checkpoints(tmp_path, cmd):
    _assert_one_line_error(*_run([cmd, tmp_path / "missing.npz"]), "not found")
    _assert_one_line_error(*_run([cmd, tmp_path]), "not found")  # a folder without checkpoint.npz
    rnd = tmp_path / "random.npz"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_one_line_error(*_run([cmd, rnd]), "corrupt")
    zipped = tmp_path / "plain.npz"
    with open(zipped, "wb") as f:
        np.savez(f, weights=np.arange(6.0))
    _assert_one_line_error(*_run([cmd, zipped]), "not an rnnkit")
    other = tmp_path / "other.npz"
    save_checkpoint(other, {"x": np.zeros(3)}, {"format": "something-else"})
    _assert_one_line_error(*_run([cmd, other]), "something-else")
    trunc = tmp_path / "truncated.npz"
    save_checkpoint(trunc, {"x": np.zeros(300)}, {"format": "rnnkit-lm"})
    trunc.write_bytes(trunc.read_bytes()[:200])
    _assert_one_line_error(*_run([cmd, trunc]))


def test_error_lm_checkpoint_with_bad_metadata(tmp_path):
    p = tmp_path / "meta.npz"
    save_checkpoint(p, {"param/x": np.zeros(3)}, {"format": "rnnkit", "version": 2, "task": "lm"})
    _assert_one_line_error(*_run(["generate", p]), "malformed")


def test_error_negative_lr_is_usage_error(tmp_path):
    code, stdout, stderr = _run(["train", "lm", "--lr", "-1", "--out", tmp_path])
    assert code == 2
    assert "Traceback" not in stderr and "--lr" in stderr
    assert stderr.splitlines()[-1].startswith("rnnkit train lm: error:")


def test_error_char_prompt_with_unseen_characters(char_run):
    _assert_one_line_error(*_run(["generate", char_run, "--prompt", "日本"]), "never saw")


def test_error_resume_on_empty_folder(tmp_path):
    _assert_one_line_error(
        *_run(["train", "lm", "--out", tmp_path, "--resume", "--no-progress"]), "checkpoint"
    )


def test_error_via_subprocess_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "rnnkit", "eval", str(tmp_path / "nope.npz")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    _assert_one_line_error(r.returncode, r.stdout, r.stderr, "not found")


def test_error_negative_seed_is_usage_error(char_run):
    code, stdout, stderr = _run(["generate", char_run, "--seed", "-1"])
    assert code == 2 and "Traceback" not in stderr and "--seed" in stderr


def test_error_bad_threads_env_is_usage_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), RNNKIT_THREADS="abc")
    r = subprocess.run(
        [sys.executable, "-m", "rnnkit", "gradcheck", "--cell", "rnn"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--threads" in r.stderr


def test_error_out_of_memory_is_one_line(tmp_path, corpora):
    _assert_one_line_error(
        *_run(
            [
                "train",
                "lm",
                "--corpus",
                corpora["word"],
                "--embed-size",
                "100000000000",
                "--out",
                tmp_path,
                "--no-progress",
            ]
        ),
        "out of memory",
    )


def test_error_word_vocab_size_too_small_names_the_flag(tmp_path, corpora):
    _assert_one_line_error(
        *_run(
            [
                "train",
                "lm",
                "--corpus",
                corpora["word"],
                "--vocab-size",
                "3",
                "--out",
                tmp_path,
                "--no-progress",
            ]
        ),
        "--vocab-size",
    )


@pytest.mark.parametrize(
    "flag,value,says",
    [
        ("--lr", "abc", "expected a positive number, got 'abc'"),
        ("--lr", "0", "expected a positive number"),
        ("--dropout", "x", "expected a number >= 0, got 'x'"),
        ("--dropout", "-1", "expected a number >= 0"),
        ("--valid-fraction", "1.5", "strictly between 0 and 1"),
        ("--epochs", "two", "expected an integer >= 1, got 'two'"),
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path, flag, value, says):
    code, _, err = _run(["train", "lm", "--out", tmp_path / "r", flag, value])
    assert code == 2 and says in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_resume_and_overwrite_exclude_each_other(tmp_path):
    code, _, err = _run(["train", "lm", "--out", tmp_path / "r", "--resume", "--overwrite"])
    assert code == 2 and "--resume and --overwrite exclude each other" in err
    assert len(err.strip().splitlines()) == 1


def test_python_dash_m_rnnkit_runs_the_command_line(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["rnnkit", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("rnnkit", run_name="__main__")
    assert info.value.code == 0 and "rnnkit" in capsys.readouterr().out


@pytest.mark.parametrize(
    "level, flags, lr", [("word", [], 2e-3), ("char", [], 3e-3), ("word", ["--lr", "0.01"], 0.01)]
)
def test_lm_default_learning_rate_follows_the_level(tmp_path, level, flags, lr):
    import json

    from conftest import run_cli

    c = tmp_path / "c.txt"
    c.write_text("The cat sat on the mat. The dog ran to the park.\n" * 60)
    out = tmp_path / "r"
    args = ["train", "lm", "--corpus", c, "--level", level, "--out", out, "--epochs", "1"]
    code, _, err = run_cli(
        args + ["--hidden-size", "8", "--embed-size", "8", "--samples", "0", *flags]
    )
    assert code == 0, err
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows if r["kind"] == "eval"] == [lr]


def test_the_library_neither_prints_nor_parses_arguments():
    """Printing and argparse belong to the application (rnnkit/app): the tasks, models and trees
    return records (rnnkit.tasks.results) that it formats."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "rnnkit"
    found = []
    for pkg in ("tasks", "models", "trees"):
        for path in sorted((root / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    found.append(f"{path.name}:{node.lineno} print")
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = [node.module or ""]
                else:
                    continue
                if "argparse" in mods:
                    found.append(f"{path.name}:{node.lineno} import argparse")
    assert not found, found
