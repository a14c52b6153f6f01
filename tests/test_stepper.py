"""The one-step-at-a-time runner used for sampling gives exactly the layer's forward pass."""

import numpy as np
import pytest

from rnnkit.layers.registry import make_recurrent
from rnnkit.layers.stepper import Stepper


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-14)])
def test_stepper_matches_forward(cell, dtype, tol):
    rng = np.random.default_rng(0)
    layer = make_recurrent(cell, 5, 7, seed=1, dtype=dtype)
    E = rng.standard_normal((11, 5)).astype(dtype)
    ids = rng.integers(0, 11, (9, 3))
    s0 = tuple(rng.standard_normal((3, 7)).astype(dtype) for _ in range(layer.cell.n_states))
    h0 = tuple(s[None] for s in s0) if len(s0) == 2 else s0[0][None]
    y, h_n = layer.forward(E[ids], h0)
    st = Stepper(layer, 3, embedding=E, state0=s0)
    ys = np.stack([st.step(i).copy() for i in ids])
    np.testing.assert_allclose(ys, y, rtol=0, atol=tol)
    final = h_n if isinstance(h_n, tuple) else (h_n,)
    for got, want in zip(st.state, final):
        np.testing.assert_allclose(got, want[0], rtol=0, atol=tol)


def test_stepper_feature_inputs_match_forward():
    rng = np.random.default_rng(2)
    layer = make_recurrent("gru", 4, 6, seed=3, dtype="float64")
    x = rng.standard_normal((5, 2, 4))
    y, _ = layer.forward(x)
    st = Stepper(layer, 2)
    ys = np.stack([st.step(xt).copy() for xt in x])
    np.testing.assert_allclose(ys, y, rtol=0, atol=1e-14)
