"""Echo state networks: the ridge readout, the reservoir's construction, state continuity,
closed-loop generation, classification, errors, state dicts."""

import numpy as np
import pytest

from rnnkit.data.synthetic import mackey_glass
from rnnkit.errors import RnnkitError
from rnnkit.reservoir import ESN, ridge_fit


def dense_W(esn: ESN) -> np.ndarray:
    r = esn.reservoir
    W = np.zeros((esn.units, esn.units))
    W[r.W_rows.astype(int), r.W_cols.astype(int)] = r.W_values
    return W


def mg_scaled(n=2100):
    d = mackey_glass(n)
    return 2 * (d - d.min()) / (d.max() - d.min()) - 1


def nrmse(p, y):
    return np.sqrt(np.mean((p - y) ** 2)) / np.std(y)


@pytest.mark.parametrize("feedback_input", [False, True])
@pytest.mark.parametrize("batched, units", [(False, 15), (True, 15), (False, 60)])
def test_ridge_readout_equals_lstsq_on_augmented_system(feedback_input, batched, units):
    """units=60 on 35 rows: the dual (N x N) system; the others the primal (F x F) one."""
    rng = np.random.default_rng(0)
    T, I, O, washout, ridge = 40, 3, 2, 5, 0.05
    shape = (T, 3) if batched else (T,)
    X = rng.standard_normal(shape + (I,))
    Y = rng.standard_normal(shape + (O,))
    kw = dict(
        spectral_radius=0.8,
        leak_rate=0.5,
        ridge=ridge,
        feedback_input=feedback_input,
        seed=3,
        bias_scaling=0.2,
    )
    esn = ESN(units, **kw).fit(X, Y, washout=washout)
    S = ESN(units, **kw).run(X)
    Z = np.concatenate([S, X], axis=-1) if feedback_input else S
    Z = Z[washout:].reshape(-1, Z.shape[-1])
    F = Z.shape[1]
    # [1, z] [c; W^T] = y, plus sqrt(ridge) [0, I] [c; W^T] = 0: the bias is not regularised
    A = np.vstack(
        [
            np.hstack([np.ones((len(Z), 1)), Z]),
            np.hstack([np.zeros((F, 1)), np.sqrt(ridge) * np.eye(F)]),
        ]
    )
    b = np.vstack([Y[washout:].reshape(-1, O), np.zeros((F, O))])
    sol = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(esn.readout.bias, sol[0], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(esn.readout.weight, sol[1:].T, rtol=1e-9, atol=1e-11)


def test_ridge_fit_without_ridge_on_rank_deficient_states_is_least_squares():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((30, 4))
    Z = np.hstack([Z, Z[:, :1]])  # a repeated column: singular normal equations
    Y = rng.standard_normal((30, 1))
    W, c = ridge_fit(Z, Y, 0.0)
    A = np.hstack([np.ones((30, 1)), Z])
    ref = np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(A @ np.concatenate([c, W[0]]), (A @ ref)[:, 0], atol=1e-10)


@pytest.mark.parametrize("units, sparse", [(60, None), (450, None), (450, False)])
def test_spectral_radius_and_input_weights_are_as_requested(units, sparse):
    esn = ESN(
        units,
        spectral_radius=1.25,
        input_scaling=0.3,
        connectivity=0.1,
        input_connectivity=0.2,
        seed=4,
        input_dim=2,
        sparse=sparse,
    )
    r = esn.reservoir
    assert r.sparse == (units >= 300 if sparse is None else sparse)
    assert r.W_values.size == round(0.1 * units * units)
    rho = np.max(np.abs(np.linalg.eigvals(dense_W(esn))))
    assert rho == pytest.approx(1.25, rel=1e-8)
    nz = r.W_in[r.W_in != 0]
    assert nz.size == round(0.2 * units * 2)
    assert set(np.round(nz, 12)) == {-0.3, 0.3}  # +-input_scaling, both signs
    # the default bias: U(-1, 1) times bias_scaling 1
    assert np.all(np.abs(r.bias) <= 1) and np.abs(r.bias).max() > 0.9
    assert np.all(ESN(units, bias_scaling=0, input_dim=2).reservoir.bias == 0)


def test_default_input_weights_are_dense():
    r = ESN(50, input_scaling=0.5, seed=1, input_dim=3).reservoir
    assert np.all(np.abs(r.W_in) == 0.5)  # every unit sees every input, +-input_scaling


def test_sparse_and_dense_products_give_the_same_states():
    X = np.random.default_rng(2).standard_normal((30, 2, 3))
    a = ESN(320, leak_rate=0.4, seed=5, sparse=True).run(X)
    b = ESN(320, leak_rate=0.4, seed=5, sparse=False).run(X)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    a1 = ESN(320, leak_rate=0.4, seed=5, sparse=True).run(X[:, 0])  # one series: the B=1 path
    np.testing.assert_allclose(a1, b[:, 0], rtol=1e-12, atol=1e-13)


def test_leaky_update_equation_step_by_step():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 2))
    esn = ESN(12, spectral_radius=0.9, leak_rate=0.3, bias_scaling=0.5, seed=1)
    S = esn.run(X)
    r, W, a = esn.reservoir, dense_W(esn), 0.3
    h = np.zeros(12)
    for t in range(6):
        h = (1 - a) * h + a * np.tanh(r.W_in @ X[t] + W @ h + r.bias)
        np.testing.assert_allclose(S[t], h, rtol=1e-13, atol=1e-15)


def test_predict_continues_the_state_of_fit():
    d = mg_scaled(400)
    X, Y = d[:-1], d[1:]
    kw = dict(spectral_radius=1.1, leak_rate=0.3, ridge=1e-6, seed=7)
    esn = ESN(50, **kw).fit(X[:200], Y[:200], washout=20)
    second = esn.predict(X[200:])
    S = ESN(50, **kw).run(X)  # the whole series in one run
    np.testing.assert_allclose(second, esn.readout(S[200:]), rtol=1e-12, atol=1e-13)
    # run in two pieces == one run; reset starts over
    e2 = ESN(50, **kw)
    np.testing.assert_allclose(
        np.concatenate([e2.run(X[:150]), e2.run(X[150:])]), S, rtol=1e-12, atol=1e-13
    )
    np.testing.assert_allclose(e2.reset().run(X[:10]), S[:10])


def test_generate_shapes_determinism_and_first_step():
    d = mg_scaled(600)
    X, Y = d[:-1], d[1:]

    def fitted(seed):
        return ESN(60, spectral_radius=1.25, leak_rate=0.3, ridge=1e-5, seed=seed).fit(
            X[:400], Y[:400], washout=50
        )

    g1, g2, g3 = fitted(0).generate(30), fitted(0).generate(30), fitted(1).generate(30)
    assert g1.shape == (30, 1)
    np.testing.assert_array_equal(g1, g2)
    assert not np.allclose(g1, g3)
    # the first generated value is the readout of the state where training ended (the forecast
    # of d(401)); the second is the prediction after feeding the first back as the input
    g = fitted(0).generate(2)
    ref = fitted(0)
    y0 = ref.readout(ref.state[None])[0]
    np.testing.assert_allclose(g[0], y0, rtol=1e-12)
    np.testing.assert_allclose(g[1], ref.predict(y0[None])[0], rtol=1e-12)
    # warmup: runs the given inputs first, then generates; batches generate per series
    Xb = np.stack([X[:200], X[100:300]], axis=1)
    eb = ESN(40, spectral_radius=1.2, leak_rate=0.3, seed=2).fit(
        Xb, np.stack([Y[:200], Y[100:300]], axis=1), washout=20
    )
    assert eb.generate(7).shape == (7, 2, 1)
    assert eb.generate(5, warmup=X[:20]).shape == (5, 1)
    with pytest.raises(RnnkitError, match="output dim"):
        ESN(10).fit(X[:50], np.hstack([Y[:50], Y[:50]])).generate(3)


def test_small_esn_predicts_mackey_glass_one_step():
    d = mg_scaled()
    X, Y = d[:-1], d[1:]
    esn = ESN(100, spectral_radius=1.25, leak_rate=0.3, ridge=1e-5, seed=0)
    esn.fit(X[:1600], Y[:1600], washout=100)
    assert nrmse(esn.predict(X[1600:]), Y[1600:]) < 0.1
    esn.fit(X[:1600], Y[:1600], washout=100)  # back to the end of training
    assert nrmse(esn.generate(50), d[1600:1650]) < 0.2  # closed loop stays on track a while


def _two_class_sequences(n, rng):
    """Class 0: slow sine (period ~20), class 1: fast (period ~5); random phase, length, noise."""
    labels = rng.integers(0, 2, n)
    seqs = []
    for c in labels:
        T = rng.integers(30, 60)
        period = 20.0 if c == 0 else 5.0
        t = np.arange(T)
        seqs.append(
            (
                np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
                + 0.2 * rng.standard_normal(T)
            )[:, None]
        )
    return seqs, labels


@pytest.mark.parametrize("feature", ["mean", "last"])
def test_classification_of_two_easy_sequence_classes(feature):
    rng = np.random.default_rng(0)
    train, ytr = _two_class_sequences(80, rng)
    test, yte = _two_class_sequences(80, rng)
    # a reservoir bias: without one the tanh reservoir is odd, and zero-mean inputs of either
    # class give mean states near 0 (accuracy ~0.55-0.7 here)
    esn = ESN(
        50,
        spectral_radius=0.9,
        leak_rate=0.5,
        ridge=1e-3,
        input_connectivity=0.5,
        bias_scaling=0.5,
        seed=1,
    )
    esn.fit_classifier(train, ytr, washout=5, feature=feature)
    assert np.mean(esn.predict_class(test) == yte) > 0.9
    # a (T, B, I) batch gives the same features as the list of its columns
    Xb = np.stack([s[:30] for s in test[:6]], axis=1)
    np.testing.assert_allclose(
        esn.sequence_features(Xb, 5, feature),
        esn.sequence_features([s[:30] for s in test[:6]], 5, feature),
        rtol=1e-12,
        atol=1e-14,
    )


def test_errors_users_can_cause():
    X = np.zeros((10, 2))
    with pytest.raises(RnnkitError, match="before|fit"):
        ESN(5).predict(X)
    with pytest.raises(RnnkitError, match="shape"):
        ESN(5).fit(np.zeros(10), np.zeros(10))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(RnnkitError, match="NaN"):
        ESN(5).fit(bad, np.zeros((10, 1)))
    with pytest.raises(RnnkitError, match="washout"):
        ESN(5).fit(X, np.zeros((10, 1)), washout=10)
    with pytest.raises(RnnkitError, match="leading"):
        ESN(5).fit(X, np.zeros((9, 1)))
    e = ESN(5).fit(X, np.zeros((10, 1)))
    with pytest.raises(RnnkitError, match="features"):
        e.predict(np.zeros((4, 3)))
    with pytest.raises(RnnkitError, match="leak_rate"):
        ESN(5, leak_rate=0.0)
    with pytest.raises(RnnkitError, match="units"):
        ESN(0)
    with pytest.raises(RnnkitError, match="labels"):
        ESN(5).fit_classifier([X, X], np.array([0.5, 1.0]))


def test_state_dict_round_trip_and_frozen_reservoir():
    d = mg_scaled(300)
    X, Y = d[:-1], d[1:]
    esn = ESN(30, spectral_radius=1.1, leak_rate=0.5, seed=3).fit(X[:200], Y[:200], washout=10)
    sd = esn.state_dict()
    assert set(sd) == {
        "reservoir.W_values",
        "reservoir.W_rows",
        "reservoir.W_cols",
        "reservoir.W_in",
        "reservoir.bias",
        "reservoir.leak_rate",
        "readout.weight",
        "readout.bias",
    }
    assert esn.trainable_names() == {"readout.weight", "readout.bias"}
    other = ESN(30, seed=99)  # another seed: everything comes from sd
    other.load_state_dict(sd)
    np.testing.assert_allclose(other.predict(X), ESN.predict(esn.reset(), X), rtol=1e-12)


def test_float32_and_a_reservoir_of_3000_units():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 2))
    Y = rng.standard_normal((40, 1))
    e32 = ESN(40, seed=1, dtype="float32").fit(X, Y, washout=5)
    assert e32.predict(X).dtype == np.float32 and e32.readout.weight.dtype == np.float32
    np.testing.assert_allclose(e32.reset().run(X), ESN(40, seed=1).run(X), atol=1e-5)
    big = ESN(3000, spectral_radius=0.9, seed=0).fit(X, Y, washout=5)
    assert big.reservoir.sparse and big.reservoir.W_values.size == 900_000
    out = big.predict(X[:10])
    assert out.shape == (10, 1) and np.all(np.isfinite(out))
    assert np.max(np.abs(big.run(X[:5]))) < 1


def test_a_reservoir_too_large_for_memory_is_a_one_line_error():
    with pytest.raises(RnnkitError, match=r"out of memory: 1,000,000 units at connectivity 0.1"):
        ESN(10**6)
