"""Tests for rnnkit.models.lm.LanguageModel: initial loss, gradient checks (plain, ragged, carried
state, truncated BPTT), padded batches versus sentences alone, sampling and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit import RnnkitError, gradcheck
from rnnkit.models.lm import LanguageModel, LMConfig
from rnnkit.optim import make_optimizer

CELLS = ("rnn", "lstm", "gru")


def _model(cell="rnn", V=7, D=3, H=4, dtype="float64", seed=0) -> LanguageModel:
    return LanguageModel(
        LMConfig(vocab_size=V, embed_size=D, hidden_size=H, cell=cell, dtype=dtype, seed=seed)
    )


def _copy(d):
    return {k: np.array(v, copy=True) for k, v in d.items()}


def _lag(model, inp, tgt, lengths=None, state0=None, bptt_truncate=None):
    """(nll_sum, n_tokens, gradients of the MEAN nll, final state) from the model protocol."""
    r = model.loss_and_grads((inp, tgt, lengths), state0, bptt_truncate=bptt_truncate)
    n = max(r.count, 1)
    return r.loss_sum, r.count, {k: v / n for k, v in r.grads.items()}, r.carry


def _check(model, inp, tgt, lengths=None, state0=None, tol=1e-6):
    """gradcheck of the MEAN nll (what loss_and_grads differentiates) w.r.t. every parameter."""
    nll, n, g, _ = _lag(model, inp, tgt, lengths, state0)
    assert n == (inp.size if lengths is None else int(np.sum(lengths)))
    assert set(g) == set(model.params)
    for k, p in model.params.items():
        assert g[k].shape == p.shape and g[k].dtype == np.float64, k

    def loss():
        s, m, _ = model.nll(inp, tgt, lengths, state0)
        return s / m

    res = gradcheck(loss, model.params, g)
    assert res.max_rel_error < tol, str(res)
    return res


# ------------------------------------------------------------------------------- initial loss
@pytest.mark.parametrize("V", [50, 500])
def test_initial_loss_is_log_vocab(V):
    """At initialisation the model should be (nearly) uniform over the vocabulary, so the average
    per-token loss is close to ln(V): within 0.1 nats for V = 50 and V = 500 (default sizes)."""
    model = LanguageModel(LMConfig(vocab_size=V, seed=1))
    rng = np.random.default_rng(0)
    inp = rng.integers(0, V, (20, 16))
    tgt = rng.integers(0, V, (20, 16))
    nll, n, _ = model.nll(inp, tgt)
    assert n == 20 * 16
    assert abs(nll / n - math.log(V)) < 0.1, (nll / n, math.log(V))


# ------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_single_step_single_sequence(cell):
    model = _model(cell)
    _check(model, np.array([[3]]), np.array([[5]]))


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_ragged_lengths(cell):
    model = _model(cell, seed=1)
    rng = np.random.default_rng(1)
    T, B = 5, 3
    lengths = np.array([2, 5, 1])
    inp, tgt = rng.integers(0, 7, (T, B)), rng.integers(0, 7, (T, B))
    # padding with arbitrary ids must not matter: loss and grads are those of the padded ids 0
    inp2, tgt2 = inp.copy(), tgt.copy()
    mask = np.arange(T)[:, None] < lengths[None, :]
    inp2[~mask], tgt2[~mask] = 6, 2
    _check(model, inp, tgt, lengths)
    a = _lag(model, inp, tgt, lengths)
    b = _lag(model, inp2, tgt2, lengths)
    assert a[0] == pytest.approx(b[0], rel=1e-12) and a[1] == b[1] == 8
    for k in a[2]:
        np.testing.assert_allclose(a[2][k], b[2][k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_with_state0_stream_mode(cell):
    """Char-stream mode: a carried state enters; gradients w.r.t. params only (no gradient crosses
    the chunk boundary), and the state does change the loss."""
    model = _model(cell, seed=2)
    rng = np.random.default_rng(2)
    T, B = 4, 2
    inp, tgt = rng.integers(0, 7, (T, B)), rng.integers(0, 7, (T, B))
    state0 = tuple(rng.standard_normal((B, 4)) for _ in model.zero_state(B))
    _check(model, inp, tgt, state0=state0)
    with_state = model.nll(inp, tgt, state0=state0)[0]
    zero = model.nll(inp, tgt)[0]
    assert with_state != pytest.approx(zero, rel=1e-6)
    assert zero == model.nll(inp, tgt, state0=model.zero_state(B))[0]
    # the returned final state is what continuing from it needs: two halves == whole
    s_half = model.nll(inp[:2], tgt[:2], state0=state0)
    rest = model.nll(inp[2:], tgt[2:], state0=s_half[2])
    assert s_half[0] + rest[0] == pytest.approx(with_state, rel=1e-12)


def test_bptt_truncate_full_when_k_ge_T_and_different_when_small():
    model = _model("rnn", V=9, D=4, H=5, seed=3)
    rng = np.random.default_rng(3)
    T, B = 6, 2
    inp, tgt = rng.integers(0, 9, (T, B)), rng.integers(0, 9, (T, B))
    lengths = np.array([6, 4])
    for lens in (None, lengths):
        nll_f, n_f, g_full, s_full = _lag(model, inp, tgt, lens)
        g_full = _copy(g_full)
        for k in (T, T + 5):
            nll_k, n_k, g_k, s_k = _lag(model, inp, tgt, lens, bptt_truncate=k)
            assert nll_k == nll_f and n_k == n_f
            for name in g_full:
                np.testing.assert_allclose(
                    g_k[name], g_full[name], rtol=1e-12, atol=1e-15, err_msg=name
                )
        nll_1, _, g_1, _ = _lag(model, inp, tgt, lens, bptt_truncate=1)
        assert nll_1 == nll_f  # truncation changes the gradient, never the loss
        # output layer and embedding rows reached only at step t are unaffected; recurrent weights
        # differ
        np.testing.assert_allclose(g_1["out.weight"], g_full["out.weight"], rtol=1e-12, atol=1e-15)
        assert not np.allclose(
            g_1["rnn.weight_hh_l0"], g_full["rnn.weight_hh_l0"], rtol=1e-3, atol=1e-8
        )
        assert not np.allclose(
            g_1["rnn.weight_ih_l0"], g_full["rnn.weight_ih_l0"], rtol=1e-3, atol=1e-8
        )


def test_padded_batch_equals_sentences_alone():
    model = _model("rnn", V=11, D=4, H=6, seed=4)
    rng = np.random.default_rng(4)
    lengths = np.array([3, 7, 1, 5])
    T, B = int(lengths.max()), len(lengths)
    inp = np.zeros((T, B), np.int64)
    tgt = np.zeros((T, B), np.int64)
    for b, L in enumerate(lengths):
        inp[:L, b] = rng.integers(1, 11, L)
        tgt[:L, b] = rng.integers(1, 11, L)
    nll, n, g, s_n = _lag(model, inp, tgt, lengths)
    g = _copy(g)
    assert n == lengths.sum()
    tot_nll, tot_g, finals = 0.0, {k: np.zeros_like(v) for k, v in g.items()}, []
    for b, L in enumerate(lengths):
        nb, mb, gb, sb = _lag(model, inp[:L, b : b + 1], tgt[:L, b : b + 1])
        assert mb == L
        tot_nll += nb
        for k in gb:
            tot_g[k] += gb[k] * mb  # each alone is a mean over its own tokens
        finals.append(sb[0][0])
    assert nll == pytest.approx(tot_nll, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g[k] * n, tot_g[k], rtol=1e-10, atol=1e-13, err_msg=k)
    # the final state is taken at each sentence's own last step
    np.testing.assert_allclose(s_n[0], np.stack(finals), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------- sampling
def _greedy_reference(model, start_id, n):
    """Greedy decoding by full re-forward of the prefix through the layer API (not the Stepper)."""
    seq = [start_id]
    E, Wo, bo = model.params["embed.weight"], model.params["out.weight"], model.params["out.bias"]
    for _ in range(n):
        e = E[np.array(seq)][:, None, :]
        y, _ = model.rnn.forward(e)
        seq.append(int(np.argmax(y[-1, 0] @ Wo.T + bo)))
    return seq[1:]


@pytest.mark.parametrize("cell", CELLS)
def test_sample_deterministic_with_seed(cell):
    model = _model(cell, V=30, D=8, H=16, dtype="float32", seed=5)
    start = np.array([1, 2, 3])
    a = model.sample(start, 25, np.random.default_rng(7))
    b = model.sample(start, 25, np.random.default_rng(7))
    c = model.sample(start, 25, np.random.default_rng(8))
    assert a.shape == (25, 3) and a.dtype == np.int64
    assert a.min() >= 0 and a.max() < 30
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cell", CELLS)
def test_sample_never_emits_banned_ids(cell):
    model = _model(cell, V=12, D=6, H=8, dtype="float32", seed=6)
    # make the banned ids the most likely ones by far: they would dominate if not banned
    model.params["out.bias"][[0, 4]] = 8.0
    out = model.sample(np.zeros(64, np.int64), 40, np.random.default_rng(0), banned=(0, 4))
    assert not np.isin(out, [0, 4]).any()
    assert len(np.unique(out)) >= 5  # it still samples, not a constant
    unbanned = model.sample(np.zeros(64, np.int64), 40, np.random.default_rng(0))
    assert np.isin(unbanned, [0, 4]).mean() > 0.5


@pytest.mark.parametrize("cell", CELLS)
def test_top_k_1_is_greedy_argmax(cell):
    model = _model(cell, V=20, D=5, H=7, dtype="float64", seed=7)
    # assignment copies into the one array; a peaked distribution, so greedy is not trivially
    # constant
    model.out.weight *= 6.0
    for start_id in (0, 3, 11):
        out = model.sample(
            np.array([start_id]), 12, np.random.default_rng(start_id), top_k=1, temperature=1.7
        )
        assert out[:, 0].tolist() == _greedy_reference(model, start_id, 12)
    # parallel rows are independent of each other
    out = model.sample(np.array([0, 3, 11]), 12, np.random.default_rng(1), top_k=1)
    for j, s in enumerate((0, 3, 11)):
        assert out[:, j].tolist() == _greedy_reference(model, s, 12)


@pytest.mark.parametrize("cell", CELLS)
def test_stop_id_stops(cell):
    model = _model(cell, V=10, D=4, H=6, dtype="float32", seed=8)
    stop = 9
    model.params["out.bias"][stop] = 1.5  # likely enough that every row stops soon, not at once
    out = model.sample(np.zeros(16, np.int64), 500, np.random.default_rng(3), stop_id=stop)
    assert out.shape[0] < 500  # returned early: every row stopped
    assert (out[-1] == stop).all() and not (out[0] == stop).all()
    for col in out.T:
        first = int(np.argmax(col == stop))
        assert (col[first:] == stop).all()  # once stopped, only stop_id
    # when stopping is certain, the output is a single row
    model.params["out.bias"][stop] = 100.0
    out = model.sample(np.zeros(4, np.int64), 50, np.random.default_rng(0), stop_id=stop)
    assert out.shape == (1, 4) and (out == stop).all()


def test_sample_from_memorised_sentence_reproduces_it():
    """Train on one tiny sentence repeated; sampling (low temperature) reproduces it exactly."""
    V, bos, eos = 12, 1, 2
    sent = [5, 9, 3, 7, 3, 11, 4]
    model = LanguageModel(LMConfig(vocab_size=V, embed_size=8, hidden_size=24, seed=0))
    inp = np.array([bos] + sent)[:, None].repeat(4, axis=1)
    tgt = np.array(sent + [eos])[:, None].repeat(4, axis=1)
    opt = make_optimizer("adam", 0.02)
    first = None
    for _ in range(300):
        nll, n, g, _ = _lag(model, inp, tgt)
        first = nll / n if first is None else first
        opt.step(model.params, g)
    last = model.nll(inp, tgt)
    assert last[0] / last[1] < 0.01 < first
    out = model.sample(np.full(5, bos), 30, np.random.default_rng(0), temperature=0.5, stop_id=eos)
    for col in out.T:
        assert col.tolist() == sent + [eos]


# ------------------------------------------------------------------------------- errors
def test_bad_inputs_raise_rnnkit_error():
    model = _model("rnn")
    ok = np.array([[1, 2], [3, 4]])
    with pytest.raises(RnnkitError, match="out of range"):
        _lag(model, np.array([[1, 7]]), np.array([[1, 2]]))
    with pytest.raises(RnnkitError, match="out of range"):
        model.nll(ok, np.array([[1, 2], [3, -1]]))
    with pytest.raises(RnnkitError, match="shape"):
        _lag(model, ok, np.array([[1, 2, 3], [3, 4, 5]]))
    with pytest.raises(RnnkitError, match="shape"):
        model.nll(ok, ok[:1])
    with pytest.raises(RnnkitError):
        model.nll(ok.astype(float), ok)
    for t in (0.0, -1.0):
        with pytest.raises(RnnkitError, match="temperature"):
            model.sample(np.array([0]), 3, np.random.default_rng(0), temperature=t)
    with pytest.raises(RnnkitError, match="top_k"):
        model.sample(np.array([0]), 3, np.random.default_rng(0), top_k=0)
    with pytest.raises(RnnkitError, match="vocabulary"):
        LanguageModel(LMConfig(vocab_size=1))
    with pytest.raises(RnnkitError, match="cell"):
        LanguageModel(LMConfig(vocab_size=5, cell="transformer"))
    assert issubclass(RnnkitError, ValueError)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_chunked_stream_bptt(cell):
    """The long-text form of truncated BPTT: a stream cut into chunks of k steps, the state carried
    from chunk to chunk but no gradient across a boundary. k >= T is exactly full BPTT; k < T is
    the sum of each chunk's own gradient, started from the previous chunk's final state."""
    from rnnkit.data import stream_batches

    rng = np.random.default_rng(5)
    V, B = 9, 2
    stream = rng.integers(0, V, 2 * 13 + 2)
    model = LanguageModel(
        LMConfig(vocab_size=V, embed_size=3, hidden_size=4, cell=cell, dtype="float64", seed=1)
    )

    def chunked(k):
        total, n_all, state = None, 0, None
        for inp, tgt in stream_batches(stream, B, k):
            nll, n, g, state = _lag(model, inp, tgt, state0=state)
            g = {name: v * n for name, v in g.items()}  # back to sums over tokens
            total = g if total is None else {name: total[name] + g[name] for name in g}
            n_all += n
        return {name: v / n_all for name, v in total.items()}

    ((inp, tgt),) = list(stream_batches(stream, B, 100))
    _, _, full, _ = _lag(model, inp, tgt)
    T = inp.shape[0]
    for k in (T, T + 5):
        g = chunked(k)
        for name in full:
            np.testing.assert_allclose(g[name], full[name], rtol=0, atol=1e-14)
    g = chunked(4)
    assert max(np.abs(g[n] - full[n]).max() for n in full) > 1e-6
    # and by hand: each chunk alone from the carried (constant) state
    state, acc, n_all = None, None, 0
    chunks = list(stream_batches(stream, B, 4))
    for ci, (cin, ctg) in enumerate(chunks):
        if ci > 0:  # the carried state is the final state of the full forward up to this chunk
            prev_in = np.concatenate([c[0] for c in chunks[:ci]])
            prev_tg = np.concatenate([c[1] for c in chunks[:ci]])
            _, _, state = model.nll(prev_in, prev_tg)
        nll, n, gc, _ = _lag(model, cin, ctg, state0=state)
        gc = {name: v * n for name, v in gc.items()}
        acc = gc if acc is None else {name: acc[name] + gc[name] for name in gc}
        n_all += n
    for name in g:
        np.testing.assert_allclose(g[name], acc[name] / n_all, rtol=0, atol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_a_state_with_the_wrong_number_of_arrays_is_an_rnnkit_error(cell):
    """state0 / h0 with too few or too many arrays: a one-line RnnkitError from the layer, the
    step-level API and the language model alike (never a bare IndexError)."""
    from rnnkit.layers.stepper import StepFunction, Stepper

    model = _model(cell)
    layer, B, H = model.rnn, 2, 4
    n = layer.cell.n_states
    h = np.zeros((1, B, H))
    ids = np.zeros((3, B), np.int64)
    x = np.zeros((3, B, 3))
    for k in (0, 1, 2, 3):
        if k == n:
            continue
        bad = tuple(h for _ in range(k))
        for call in (
            lambda s: layer.forward(x, s),
            lambda s: StepFunction(layer).forward(x[0], s),
            lambda s: Stepper(layer, B, state0=s),
            lambda s: model.nll(ids, ids, None, s),
            lambda s: model.loss_and_grads((ids, ids, None), s),
        ):
            with pytest.raises(RnnkitError) as info:
                call(bad)
            assert "\n" not in str(info.value)
