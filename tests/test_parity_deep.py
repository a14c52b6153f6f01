"""Stacked and bidirectional layers against PyTorch: a torch state dict loads as it is, and
outputs, final states and every gradient match in float64, packed ragged batches included."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need

from rnnkit.layers import GRU, LSTM, RNN

torch = need("torch")

KINDS = {"rnn": (RNN, "RNN"), "lstm": (LSTM, "LSTM"), "gru": (GRU, "GRU")}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "num_layers,bidirectional,ragged",
    [(3, True, True), (3, True, False), (2, False, True), (1, True, True)],
)
def test_matches_torch(kind, num_layers, bidirectional, ragged):
    torch.manual_seed(num_layers * 7 + bidirectional)
    rng = np.random.default_rng(num_layers)
    T, B, I, H = 6, 4, 3, 5
    ours_cls, tname = KINDS[kind]
    ref = getattr(torch.nn, tname)(
        I, H, num_layers=num_layers, bidirectional=bidirectional
    ).double()
    ours = ours_cls(I, H, num_layers=num_layers, bidirectional=bidirectional, dtype="float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    D = 2 if bidirectional else 1
    lengths = np.array([6, 3, 1, 5]) if ragged else np.full(B, T)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((num_layers * D, B, H))
    c0 = rng.standard_normal((num_layers * D, B, H))
    dy = rng.standard_normal((T, B, D * H)) * (np.arange(T)[:, None] < lengths)[:, :, None]
    dhn, dcn = rng.standard_normal(h0.shape), rng.standard_normal(c0.shape)

    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), enforce_sorted=False
    )
    out, st = ref(packed, (h0t, c0t) if kind == "lstm" else h0t)
    yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    loss = (yt * torch.tensor(dy)).sum()
    if kind == "lstm":
        loss = loss + (st[0] * torch.tensor(dhn)).sum() + (st[1] * torch.tensor(dcn)).sum()
    else:
        loss = loss + (st * torch.tensor(dhn)).sum()
    loss.backward()

    s0 = (h0, c0) if kind == "lstm" else h0
    y, hn = ours.forward(x, s0, lengths=lengths)
    dx, dh0 = ours.backward(dy, (dhn, dcn) if kind == "lstm" else dhn)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-11)
    want_states = (st[0], st[1]) if kind == "lstm" else (st,)
    got_states = hn if kind == "lstm" else (hn,)
    for a, b in zip(got_states, want_states):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    got_d0 = dh0 if kind == "lstm" else (dh0,)
    for a, b in zip(got_d0, (h0t, c0t) if kind == "lstm" else (h0t,)):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-7, atol=1e-9)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(
            ours.grads[name], p.grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=name
        )


def test_names_shapes_like_torch():
    ref = torch.nn.LSTM(3, 5, num_layers=3, bidirectional=True)
    ours = LSTM(3, 5, num_layers=3, bidirectional=True)
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }
    assert list(ref.state_dict()) == list(ours.state_dict())


def test_merge_modes_and_dropout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 3))
    cat = GRU(3, 5, bidirectional=True, dtype="float64", seed=1)
    ycat, _ = cat.forward(x)
    for merge, f in (
        ("sum", lambda a, b: a + b),
        ("mean", lambda a, b: (a + b) / 2),
        ("product", lambda a, b: a * b),
    ):
        m = GRU(3, 5, bidirectional=True, merge=merge, dtype="float64", seed=1)
        y, _ = m.forward(x)
        np.testing.assert_allclose(y, f(ycat[..., :5], ycat[..., 5:]), rtol=1e-12)
    d = RNN(3, 5, num_layers=2, dropout=0.5, dtype="float64", seed=2)
    y1, _ = d.forward(x)
    y2, _ = d.forward(x)
    assert not np.allclose(y1, y2)  # a fresh dropout mask per forward in training mode
    d.eval()
    y3, _ = d.forward(x)
    y4, _ = d.forward(x)
    np.testing.assert_array_equal(y3, y4)
