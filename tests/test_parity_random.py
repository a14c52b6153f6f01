"""RNN, LSTM and GRU against torch.nn.RNN/LSTM/GRU on random shapes (hypothesis), float64.

Each example draws the cell (tanh or relu Elman, LSTM, GRU), T, B, input and hidden sizes,
num_layers, bidirectional, bias, an initial state or none, ragged lengths or none (torch gets a
``pack_padded_sequence(enforce_sorted=False)`` batch), and the numba or pure-NumPy path for the
gated cells. It loads torch's state dict into the rnnkit layer and compares:

* the outputs: equal at the valid steps, exactly zero at padded steps (as ``recurrent_forward``
  documents, and as ``pad_packed_sequence`` pads);
* the final states h_n (and c_n), each sequence's own at its last step (the top layer's are also
  checked directly against y: forward direction at step length-1, reverse direction at step 0);
* the gradients of a random linear function of y, h_n (and c_n) -- with random, nonzero weights
  on the padded outputs too, which must get no gradient -- with respect to every weight (by
  PyTorch name), the input and the initial state (torch differentiates an explicit zero state
  when the example has none), to 1e-10 relative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import need
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.layers import GRU, LSTM, RNN, RecurrentLayer, _fast

torch = need("torch")

RTOL, ATOL = 1e-10, 1e-12
KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


@dataclass(frozen=True)
class Case:
    kind: str
    T: int
    B: int
    I: int
    H: int
    num_layers: int
    bidirectional: bool
    bias: bool
    with_h0: bool
    lengths: tuple[int, ...] | None
    fast: bool
    seed: int


@st.composite
def cases(draw, kind: str) -> Case:
    T = draw(st.integers(1, 7))
    B = draw(st.integers(1, 5))
    lengths = None
    if draw(st.booleans()):
        ls = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
        ls[draw(st.integers(0, B - 1))] = T  # the batch is as long as its longest sequence
        lengths = tuple(ls)
    return Case(
        kind=kind,
        T=T,
        B=B,
        I=draw(st.integers(1, 6)),
        H=draw(st.integers(1, 6)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        with_h0=draw(st.booleans()),
        lengths=lengths,
        fast=kind in ("lstm", "gru") and _fast.AVAILABLE and draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def _close(got, want, what: str) -> None:
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def check(c: Case) -> None:
    """Run one case through rnnkit and torch and compare everything (asserts)."""
    torch.manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    lstm = c.kind == "lstm"
    D = 2 if c.bidirectional else 1
    LD = c.num_layers * D
    common: dict[str, Any] = dict(
        num_layers=c.num_layers, bidirectional=c.bidirectional, bias=c.bias
    )
    ours: RecurrentLayer
    if c.kind.startswith("rnn"):
        act = c.kind.split("_")[1]
        ref = torch.nn.RNN(c.I, c.H, nonlinearity=act, **common).double()
        ours = RNN(c.I, c.H, nonlinearity=act, dtype="float64", **common)
    else:
        ref = getattr(torch.nn, c.kind.upper())(c.I, c.H, **common).double()
        ours = (LSTM if lstm else GRU)(c.I, c.H, dtype="float64", **common)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})

    n_states = 2 if lstm else 1
    x = rng.standard_normal((c.T, c.B, c.I))
    shape = (LD, c.B, c.H)  # no initial state: torch differentiates explicit zeros
    s0 = [rng.standard_normal(shape) if c.with_h0 else np.zeros(shape) for _ in range(n_states)]
    dy = rng.standard_normal((c.T, c.B, D * c.H))  # nonzero at padded steps too
    ds = [rng.standard_normal(shape) for _ in range(n_states)]
    lengths = None if c.lengths is None else np.array(c.lengths)
    valid = np.ones((c.T, c.B), bool) if lengths is None else np.arange(c.T)[:, None] < lengths

    # torch
    xt = torch.tensor(x, requires_grad=True)
    s0t = [torch.tensor(s, requires_grad=True) for s in s0]
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), enforce_sorted=False
        )
    out, st_n = ref(inp, tuple(s0t) if lstm else s0t[0])
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=c.T)
    st_n = list(st_n) if lstm else [st_n]
    loss = (out * torch.tensor(dy)).sum()
    for s, d in zip(st_n, ds):
        loss = loss + (s * torch.tensor(d)).sum()
    loss.backward()

    # rnnkit
    was = _fast.ENABLED
    _fast.set_enabled(c.fast)
    try:
        y, hn = ours.forward(x, (tuple(s0) if lstm else s0[0]) if c.with_h0 else None, lengths)
        dx, ds0 = ours.backward(dy, tuple(ds) if lstm else ds[0])
    finally:
        _fast.set_enabled(was)
    hn = list(hn) if lstm else [hn]
    ds0 = list(ds0) if lstm else [ds0]

    assert y.shape == (c.T, c.B, D * c.H)
    assert np.all(y[~valid] == 0.0), "outputs at padded steps must be exactly zero"
    _close(y[valid], out.detach().numpy()[valid], "y at valid steps")
    for k, (a, b) in enumerate(zip(hn, st_n)):
        _close(a, b, f"final state {'hc'[k]}_n")
    last = (c.num_layers - 1) * D  # top layer, forward direction: h_n is y at step length-1
    ends = np.full(c.B, c.T - 1) if lengths is None else lengths - 1
    _close(hn[0][last], y[ends, np.arange(c.B), : c.H], "h_n vs y at each sequence's last step")
    if D == 2:  # top layer, reverse direction: it ends at step 0
        _close(hn[0][last + 1], y[0, :, c.H :], "reverse h_n vs y at step 0")
    _close(dx, xt.grad, "dL/dx")
    for k, (a, b) in enumerate(zip(ds0, s0t)):
        _close(a, b.grad, f"dL/d{'hc'[k]}0")
    names = {n for n, _ in ref.named_parameters()}
    assert set(ours.grads) == names
    for name, p in ref.named_parameters():
        _close(ours.grads[name], p.grad, f"dL/d{name}")


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize("kind", KINDS)
def test_random_shapes_match_torch(kind):
    @SETTINGS
    @given(cases(kind))
    def run(c: Case) -> None:
        check(c)

    run()
