"""docs/adding-a-cell.md's example cell, exactly as printed there, passes the conformance suite."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from rnnkit.layers import registry

_spec = importlib.util.spec_from_file_location(
    "_conformance", Path(__file__).with_name("test_cell_conformance.py")
)
assert _spec is not None and _spec.loader is not None
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)  # the suite's checks, reused

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-cell.md"


@pytest.fixture(scope="module")
def mgu():
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
    assert "mgu" in registry.cell_names()
    yield "mgu"
    registry.CELLS.pop("mgu", None)


def test_doc_cell_is_short():
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    assert len([ln for ln in code.splitlines() if ln.strip()]) < 60


@pytest.mark.parametrize(
    "check",
    [
        lambda c: suite.test_gradcheck_full_bptt_ragged(c),
        lambda c: suite.test_gradcheck_stacked_bidirectional(
            c, dict(num_layers=2, bidirectional=True)
        ),
        lambda c: suite.test_truncated_bptt_equals_windows(c, 2),
        lambda c: suite.test_ragged_batch_equals_each_sequence_alone(c),
        lambda c: suite.test_retained_cache_equals_consumed(c, 2),
        lambda c: suite.test_step_at_a_time_equals_sequence(c),
        lambda c: suite.test_float32_agrees_with_float64(c),
    ],
    ids=[
        "gradcheck",
        "stacked-bidirectional",
        "truncated",
        "ragged",
        "retained",
        "stepwise",
        "float32",
    ],
)
def test_doc_cell_conforms(mgu, check):
    check(mgu)
