"""The addition task (Keras' addition_rnn example): its data exactly, training a small model
through the command line, predict and eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnkit.data.addition import (
    ALPHABET,
    addition_operands,
    addition_pairs,
    distinct_pairs,
    encode_chars,
    format_question,
    split_pairs,
)
from rnnkit.errors import RnnkitError
from rnnkit.tasks.addition import AdditionConfig, AdditionTask

_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


# ------------------------------------------------------------------------------ the data
def test_questions_are_padded_reversed_and_distinct():
    pairs = addition_pairs(3000, digits=3, seed=4)
    assert len(pairs) == 3000 and len(ALPHABET) == 12
    seen = set()
    for q, a in pairs:
        assert len(q) == 7 and len(a) == 4 and set(q + a) <= set(ALPHABET)
        x, y = q.split()[0].split("+")
        assert q == f"{x}+{y}".ljust(7) and a == str(int(x) + int(y)).ljust(4)
        assert 1 <= len(x) <= 3 and str(int(x)) == x  # no leading zeros, as int() writes them
        key = tuple(sorted((int(x), int(y))))
        assert key not in seen  # a+b and b+a count once
        seen.add(key)
    rev = addition_pairs(3000, digits=3, seed=4, reverse=True)
    assert [q[::-1] for q, _ in rev] == [q for q, _ in pairs]
    assert format_question(12, 7, 3, reverse=True) == "   7+21"  # the padding comes first
    # one operand digit count is as likely as another: "7" is far likelier than "347"
    ops = addition_operands(20000, 3, seed=0)
    assert (ops < 10).mean() > 0.1  # uniform operands would give 0.01


def test_all_questions_when_more_are_asked_and_a_seeded_disjoint_split():
    assert distinct_pairs(1) == 55 and distinct_pairs(2) == 5050
    ops = addition_operands(10**6, digits=1, seed=0)
    assert len(ops) == 55 and len({tuple(sorted(p)) for p in ops.tolist()}) == 55
    assert 10 < (ops[:, 0] > ops[:, 1]).sum() < 35  # both orders are asked
    tr, va = split_pairs(50000, 0.1, seed=3)
    assert len(va) == 5000 and not set(tr) & set(va) and len(set(tr) | set(va)) == 50000
    assert np.array_equal(va, split_pairs(50000, 0.1, seed=3)[1])
    task = AdditionTask(AdditionConfig(digits=2, size=600, seed=1))
    src, _, tgt, _ = task.valid_data
    assert src.shape == (5, 60) and tgt.shape == (3, 60)  # time-major (T, N)
    assert np.array_equal(
        src[:, :3],
        encode_chars([task._source_text(j, task.valid_data).ljust(5)[::-1] for j in range(3)]),
    )
    with pytest.raises(RnnkitError, match="digits"):
        AdditionTask(AdditionConfig(digits=0))


# ------------------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    """A 2-digit model trained through ``rnnkit train addition`` (about 10-20 s)."""
    out = tmp_path_factory.mktemp("add") / "run"
    code, stdout, err = _run(
        [
            "train",
            "addition",
            "--digits",
            "2",
            "--size",
            "5050",
            "--form",
            "feedback",
            "--cell",
            "gru",
            "--hidden-size",
            "64",
            "--lr",
            "0.01",
            "--epochs",
            "14",
            "--out",
            out,
            "--no-progress",
            "--samples",
            "3",
        ]
    )
    assert code == 0, err
    return out, stdout


def test_a_small_model_learns_two_digit_addition(run2):
    out, stdout = run2
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(evals) == 14 and {"valid_exact", "valid_per_char"} <= set(evals[0])
    assert "held-out samples:" in stdout and stdout.count(" -> ") == 3
    code, stdout, _ = _run(["eval", out, "--json"])
    r = json.loads(stdout)
    assert code == 0 and r["exact"] >= 0.9 and r["per_char"] >= r["exact"]
    assert r["exact"] == pytest.approx(evals[-1]["valid_exact"])


def test_predict_answers_good_questions_and_names_bad_ones(run2):
    out, _ = run2
    qs = ["35+61", "123+4", "12+7", "5a+3", "8 + 9", "+5"]
    code, stdout, err = _run(["predict", out, *qs])
    lines = stdout.split("\n")[:-1]
    assert code == 1 and len(lines) == len(qs)  # one line per question, empty for a failed one
    assert "'123+4'" in err and "3 digits" in err and "'5a+3'" in err and "'+5'" in err
    assert lines[1] == lines[3] == lines[5] == ""
    good = [int(lines[i]) for i in (0, 2, 4)]
    assert sum(g == w for g, w in zip(good, [96, 19, 17])) >= 2
    many = "\n".join(f"{a}+{b}" for a in range(0, 100, 7) for b in range(0, 100, 9)) + "\n"
    code, stdout, err = _run(["predict", out], stdin=many)
    answers = stdout.splitlines()
    truth = [str(eval(q)) for q in many.split()]
    assert code == 0 and err == "" and len(answers) == len(truth)
    assert np.mean([a == t for a, t in zip(answers, truth)]) >= 0.85
