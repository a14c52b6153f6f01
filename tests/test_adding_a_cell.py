"""docs/adding-a-cell.md's example cell, exactly as printed there, passes the conformance suite."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from rnnkit.layers import make_recurrent, registry

_spec = importlib.util.spec_from_file_location(
    "_conformance", Path(__file__).with_name("test_cell_conformance.py")
)
assert _spec is not None and _spec.loader is not None
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)  # the suite's checks, reused

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-cell.md"


@pytest.fixture(scope="module")
def mgu():
    exec(compile(_code(), str(DOC), "exec"), {"__name__": "doc_example"})
    assert "mgu" in registry.cell_names()
    yield "mgu"
    registry.CELLS.pop("mgu", None)


def _code() -> str:
    m = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert m is not None
    return m.group(1)


def test_doc_cell_is_short():
    assert len([ln for ln in _code().splitlines() if ln.strip()]) <= 40


def test_doc_cell_has_no_dead_parameter(mgu):
    """Every entry of every parameter's gradient is nonzero: W_hh's candidate rows (multiplying
    f * h(t-1)) and b_hh's are used, and the layer has exactly the MGU's parameters."""
    I, H = 4, 3
    layer = make_recurrent(mgu, I, H, seed=0, dtype="float64")
    assert {n: p.shape for n, p in layer.params.items()} == {
        "weight_ih_l0": (2 * H, I),
        "weight_hh_l0": (2 * H, H),
        "bias_ih_l0": (2 * H,),
        "bias_hh_l0": (2 * H,),
    }
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, I))
    y, _ = layer.forward(x, rng.standard_normal((1, 2, H)))
    layer.backward(rng.standard_normal(y.shape))
    for n, g in layer.grads.items():
        assert np.all(g != 0), n


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
