"""``rnnkit bench memory --quick``: the three files with their structure, and the equal
parameter budgets."""

from __future__ import annotations

import argparse
import json

import pytest

from rnnkit.app.memory_bench import BenchConfig, _task, add_parser, hidden_for_budget, run


def test_quick_bench_writes_json_table_and_plot(tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(
        [
            "bench",
            "memory",
            "--quick",
            "--out",
            str(tmp_path),
            "--models",
            "rnn,esn",
            "--lengths",
            "4,6",
            "--jobs",
            "1",
            "--time-budget",
            "0.5",
        ]
    )
    assert run(args) == 0
    rep = json.loads((tmp_path / "memory.json").read_text())
    assert rep["config"]["models"] == ["rnn", "esn"] and rep["config"]["lengths"] == [4, 6]
    res = rep["results"]
    assert [(r["task"], r["model"], r["T"]) for r in res] == [
        (t, m, T) for t in ("adding", "copy") for m in ("rnn", "esn") for T in (4, 6)
    ]
    for r in res:
        assert 0.0 <= r["success"] <= 1.0 and isinstance(r["solved"], bool)
        assert r["metric"] >= 0 and r["params"] > 0
        if r["model"] == "rnn":  # a trained run leaves its run folder behind
            assert (tmp_path / "runs" / f"{r['task']}-T{r['T']}-rnn" / "checkpoint.npz").exists()
            assert r["steps"] > 0
    md = (tmp_path / "memory.md").read_text()
    assert md.count("| model | hidden | parameters | T=4 | T=6 |") == 2
    assert md.count("| rnn |") == 2 and md.count("| esn |") == 2
    assert (tmp_path / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| rnn |" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_equal_parameter_budgets(task):
    t = _task(task, 10, BenchConfig())
    for cell in ("rnn", "leaky", "skip", "gru", "lstm"):
        hidden, n, budget = hidden_for_budget(t, cell, 32)
        assert abs(n - budget) / budget < 0.04, (cell, hidden, n, budget)
        if cell == "lstm":
            assert hidden == 32 and n == budget


def test_bad_model_names_are_refused():
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "memory", "--models", "rnn,transformer"])
