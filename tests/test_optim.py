"""Tests for rnnkit.optim: update rules, torch parity, clipping, state round trip, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import need

from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.optim import (
    SGD,
    Adagrad,
    Adam,
    Optimizer,
    RMSprop,
    clip_grad_norm,
    clip_grad_value,
    make_optimizer,
)

P0, G1, G2 = 1.0, 0.5, -0.2


def _two_steps(opt: Optimizer) -> float:
    params = {"w": np.array([P0])}
    opt.step(params, {"w": np.array([G1])})
    opt.step(params, {"w": np.array([G2])})
    return float(params["w"][0])


# ----------------------------------------------------------------------------------------------
# hand-computed two-step updates
# ----------------------------------------------------------------------------------------------


def test_sgd_plain_two_steps():
    assert _two_steps(SGD(0.1)) == pytest.approx(1.0 - 0.1 * 0.5 + 0.1 * 0.2, abs=1e-15)


def test_sgd_momentum_two_steps():
    # b1 = g1 = 0.5, p1 = 1 - 0.05 = 0.95; b2 = 0.9 * 0.5 - 0.2 = 0.25, p2 = 0.95 - 0.025
    assert _two_steps(SGD(0.1, momentum=0.9)) == pytest.approx(0.925, abs=1e-15)


def test_sgd_weight_decay_two_steps():
    # g1' = 0.5 + 0.1 * 1 = 0.6, p1 = 0.94; g2' = -0.2 + 0.1 * 0.94 = -0.106, p2 = 0.9506
    assert _two_steps(SGD(0.1, weight_decay=0.1)) == pytest.approx(0.9506, abs=1e-15)


def test_adagrad_two_steps():
    lr, eps, s0 = 0.1, 1e-10, 0.1
    s1 = s0 + G1**2
    p1 = P0 - lr * G1 / (math.sqrt(s1) + eps)
    s2 = s1 + G2**2
    p2 = p1 - lr * G2 / (math.sqrt(s2) + eps)
    got = _two_steps(Adagrad(lr, eps=eps, initial_accumulator_value=s0))
    assert got == pytest.approx(p2, abs=1e-15)
    # concretely: s1 = 0.35, s2 = 0.39
    assert got == pytest.approx(1 - 0.05 / math.sqrt(0.35) + 0.02 / math.sqrt(0.39), abs=1e-9)


def test_rmsprop_two_steps():
    lr, alpha, eps = 0.01, 0.9, 1e-8
    v1 = (1 - alpha) * G1**2
    p1 = P0 - lr * G1 / (math.sqrt(v1) + eps)
    v2 = alpha * v1 + (1 - alpha) * G2**2
    p2 = p1 - lr * G2 / (math.sqrt(v2) + eps)
    assert _two_steps(RMSprop(lr, alpha=alpha, eps=eps)) == pytest.approx(p2, abs=1e-15)


def test_adam_two_steps():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1**2
    p1 = P0 - lr / (1 - b1) * m1 / (math.sqrt(v1) / math.sqrt(1 - b2) + eps)
    # the first bias-corrected Adam step has size ~lr in the direction of -sign(g)
    assert p1 == pytest.approx(P0 - lr, abs=1e-6)
    m2, v2 = b1 * m1 + (1 - b1) * G2, b2 * v1 + (1 - b2) * G2**2
    p2 = p1 - lr / (1 - b1**2) * m2 / (math.sqrt(v2) / math.sqrt(1 - b2**2) + eps)
    assert _two_steps(Adam(lr, betas=(b1, b2), eps=eps)) == pytest.approx(p2, abs=1e-15)


def test_adam_weight_decay_is_coupled_l2():
    lr, wd = 0.1, 0.5
    b1, b2, eps = 0.9, 0.999, 1e-8
    g = G1 + wd * P0
    m1, v1 = (1 - b1) * g, (1 - b2) * g * g
    p1 = P0 - lr / (1 - b1) * m1 / (math.sqrt(v1) / math.sqrt(1 - b2) + eps)
    params = {"w": np.array([P0])}
    Adam(lr, weight_decay=wd).step(params, {"w": np.array([G1])})
    assert params["w"][0] == pytest.approx(p1, abs=1e-15)


# ----------------------------------------------------------------------------------------------
# parity with torch.optim
# ----------------------------------------------------------------------------------------------

TORCH_CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.5, "weight_decay": 0.01}),
    ("sgd", {"weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"eps": 1e-6, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05}),
    ("adam", {}),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.02}),
]


@pytest.mark.parametrize(("name", "kw"), TORCH_CASES)
def test_matches_torch_over_five_steps(name, kw):
    torch = need("torch")
    torch_cls = {
        "sgd": torch.optim.SGD,
        "adagrad": torch.optim.Adagrad,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
    }[name]
    lr = 0.05
    rng = np.random.default_rng(1234)
    shapes = {"weight_ih_l0": (6, 3), "weight_hh_l0": (6, 2), "bias_l0": (6,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grad_seq = [{k: rng.standard_normal(s) for k, s in shapes.items()} for _ in range(5)]

    tparams = {
        k: torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True)
        for k, v in params.items()
    }
    topt = torch_cls(list(tparams.values()), lr=lr, **kw)
    opt = make_optimizer(name, lr, **kw)
    for grads in grad_seq:
        for k, tp in tparams.items():
            tp.grad = torch.tensor(grads[k].copy(), dtype=torch.float64)
        topt.step()
        opt.step(params, {k: g.copy() for k, g in grads.items()})
        for k in params:
            np.testing.assert_allclose(
                params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=k
            )


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_matches_torch_after_lr_change(name):
    torch = need("torch")
    cls_name = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam"}[name]
    torch_cls = getattr(torch.optim, cls_name)
    kw = {"momentum": 0.9} if name == "sgd" else {}
    rng = np.random.default_rng(7)
    p = {"w": rng.standard_normal(5)}
    tp = torch.tensor(p["w"].copy(), requires_grad=True)
    topt = torch_cls([tp], lr=0.1, **kw)
    opt = make_optimizer(name, 0.1, **kw)
    for i in range(5):
        lr = 0.1 * 0.5**i
        opt.lr = lr
        for group in topt.param_groups:
            group["lr"] = lr
        g = rng.standard_normal(5)
        tp.grad = torch.tensor(g.copy())
        topt.step()
        opt.step(p, {"w": g})
    np.testing.assert_allclose(p["w"], tp.detach().numpy(), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# behaviour
# ----------------------------------------------------------------------------------------------


def test_adam_minimises_quadratic():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 5.0, size=(4, 3))
    c = rng.standard_normal((4, 3))
    params = {"x": np.zeros((4, 3))}

    def loss() -> float:
        return float(0.5 * np.sum(a * (params["x"] - c) ** 2))

    start = loss()
    opt = Adam(0.05)
    for _ in range(2000):
        opt.step(params, {"x": a * (params["x"] - c)})
    assert loss() < 1e-6 * start
    np.testing.assert_allclose(params["x"], c, atol=1e-3)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_float32_params_and_state_stay_float32(name):
    kw = {"momentum": 0.9} if name == "sgd" else {}
    opt = make_optimizer(name, 0.01, weight_decay=0.1, **kw)
    params = {"w": np.ones((3, 2), dtype=np.float32)}
    w = params["w"]
    for _ in range(3):
        opt.step(params, {"w": np.full((3, 2), 0.5, dtype=np.float32)})
    assert params["w"] is w and w.dtype == np.float32
    arrays, _ = opt.state_dict()
    assert arrays and all(arr.dtype == np.float32 for arr in arrays.values())


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_state_arrays_updated_in_place(name):
    kw = {"momentum": 0.9} if name == "sgd" else {}
    opt = make_optimizer(name, 0.01, **kw)
    params = {"w": np.ones(4)}
    opt.step(params, {"w": np.ones(4)})
    before = {s: {k: id(a) for k, a in store.items()} for s, store in opt.state.items()}
    opt.step(params, {"w": np.ones(4)})
    after = {s: {k: id(a) for k, a in store.items()} for s, store in opt.state.items()}
    assert before == after


def test_lr_is_mutable():
    opt = SGD(0.1)
    params = {"w": np.array([1.0])}
    opt.lr = 0.5
    opt.step(params, {"w": np.array([1.0])})
    assert params["w"][0] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------
# clipping
# ----------------------------------------------------------------------------------------------


def test_clip_grad_norm_scales_when_over():
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([[12.0]])}
    norm = clip_grad_norm(grads, 6.5)
    assert norm == pytest.approx(13.0)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(grads["a"], [3.0 * coef, 4.0 * coef], rtol=1e-15)
    np.testing.assert_allclose(grads["b"], [[12.0 * coef]], rtol=1e-15)
    new_norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    assert new_norm == pytest.approx(6.5, rel=1e-6) and new_norm <= 6.5


def test_clip_grad_norm_leaves_grads_under_threshold():
    a = np.array([3.0, 4.0])
    grads = {"a": a}
    assert clip_grad_norm(grads, 5.0) == pytest.approx(5.0)
    assert grads["a"] is a
    np.testing.assert_array_equal(a, [3.0, 4.0])
    assert clip_grad_norm(grads, 100.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(a, [3.0, 4.0])


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_non_finite_left_untouched(bad):
    grads = {"a": np.array([3.0, bad]), "b": np.array([100.0])}
    norm = clip_grad_norm(grads, 1.0)
    assert not math.isfinite(norm)
    np.testing.assert_array_equal(grads["b"], [100.0])
    assert grads["a"][0] == 3.0


def test_clip_grad_norm_matches_torch():
    torch = need("torch")
    rng = np.random.default_rng(3)
    grads = {"a": rng.standard_normal((5, 4)), "b": rng.standard_normal(7)}
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(ts, grads.values()):
        t.grad = torch.tensor(g.copy())
    tnorm = float(torch.nn.utils.clip_grad_norm_(ts, 1.0))
    norm = clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(tnorm, rel=1e-12)
    for t, g in zip(ts, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_in_place():
    a = np.array([-3.0, -0.5, 0.2, 7.0])
    grads = {"a": a}
    assert clip_grad_value(grads, 1.0) is None
    assert grads["a"] is a
    np.testing.assert_array_equal(a, [-1.0, -0.5, 0.2, 1.0])


def test_clip_rejects_bad_thresholds():
    with pytest.raises(RnnkitError, match="max_norm"):
        clip_grad_norm({"a": np.ones(2)}, 0.0)
    with pytest.raises(RnnkitError, match="clip_value"):
        clip_grad_value({"a": np.ones(2)}, -1.0)


# ----------------------------------------------------------------------------------------------
# state_dict round trip
# ----------------------------------------------------------------------------------------------

ROUND_TRIP_CASES = [
    ("sgd", {"momentum": 0.9, "weight_decay": 0.01}),
    ("adagrad", {"initial_accumulator_value": 0.1}),
    ("rmsprop", {"alpha": 0.95}),
    ("adam", {"betas": (0.85, 0.995), "weight_decay": 0.01}),
]


@pytest.mark.parametrize(("name", "kw"), ROUND_TRIP_CASES)
def test_state_dict_round_trip(name, kw, tmp_path):
    rng = np.random.default_rng(11)
    shapes = {"weight_hh_l0": (4, 4), "bias_l0": (4,)}
    params_a = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grad_seq = [{k: rng.standard_normal(s) for k, s in shapes.items()} for _ in range(5)]

    opt_a = make_optimizer(name, 0.03, **kw)
    for grads in grad_seq[:3]:
        opt_a.step(params_a, grads)
    arrays, meta = opt_a.state_dict()
    assert meta["name"] == name and meta["step"] == 3
    assert all("/" in k for k in arrays)
    if name == "adam":
        assert "exp_avg/weight_hh_l0" in arrays and "exp_avg_sq/bias_l0" in arrays

    # through JSON and an actual checkpoint file, as training would do
    save_checkpoint(tmp_path / "opt.npz", arrays, meta)
    arrays_loaded, meta_loaded = load_checkpoint(tmp_path / "opt.npz")
    meta_loaded = json.loads(json.dumps(meta_loaded))

    params_b = {k: v.copy() for k, v in params_a.items()}
    opt_b = make_optimizer(name, 1.0)  # hyper-parameters come from the saved state
    opt_b.load_state_dict(arrays_loaded, meta_loaded)
    assert opt_b.hyperparams() == opt_a.hyperparams()
    assert opt_b.step_count == 3
    for grads in grad_seq[3:]:
        opt_a.step(params_a, grads)
        opt_b.step(params_b, grads)
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k])


def test_state_dict_returns_copies():
    opt = Adam(0.1)
    params = {"w": np.ones(3)}
    opt.step(params, {"w": np.ones(3)})
    arrays, _ = opt.state_dict()
    arrays["exp_avg/w"][:] = 123.0
    assert not np.any(opt.state["exp_avg"]["w"] == 123.0)


def test_load_state_dict_rejects_other_optimizer():
    arrays, meta = Adam(0.1).state_dict()
    with pytest.raises(RnnkitError, match="adam"):
        SGD(0.1).load_state_dict(arrays, meta)


def test_load_state_dict_rejects_unknown_array():
    _, meta = Adam(0.1).state_dict()
    with pytest.raises(RnnkitError, match="momentum_buffer/w"):
        Adam(0.1).load_state_dict({"momentum_buffer/w": np.zeros(2)}, meta)


def test_loaded_state_shape_mismatch_names_key():
    opt = Adam(0.1)
    opt.step({"w": np.ones(3)}, {"w": np.ones(3)})
    arrays, meta = opt.state_dict()
    fresh = Adam(0.1)
    fresh.load_state_dict(arrays, meta)
    with pytest.raises(RnnkitError, match="w"):
        fresh.step({"w": np.ones(4)}, {"w": np.ones(4)})


# ----------------------------------------------------------------------------------------------
# errors and factory
# ----------------------------------------------------------------------------------------------


def test_missing_grad_names_key():
    with pytest.raises(RnnkitError, match="weight_hh_l0"):
        Adam(0.1).step({"weight_hh_l0": np.ones(2), "b": np.ones(2)}, {"b": np.ones(2)})


def test_shape_mismatch_names_key():
    with pytest.raises(RnnkitError, match="bias_l0"):
        SGD(0.1).step({"bias_l0": np.ones(3)}, {"bias_l0": np.ones(4)})


def test_failed_step_changes_nothing():
    opt = Adam(0.1)
    params = {"a": np.ones(2), "b": np.ones(2)}
    with pytest.raises(RnnkitError):
        opt.step(params, {"a": np.ones(2), "b": np.ones(3)})
    np.testing.assert_array_equal(params["a"], [1.0, 1.0])
    assert opt.step_count == 0


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_bad_lr_rejected(name, lr):
    with pytest.raises(RnnkitError, match="lr"):
        make_optimizer(name, lr)


def test_bad_hyperparameters_rejected():
    with pytest.raises(RnnkitError, match="beta1"):
        Adam(0.1, betas=(1.0, 0.999))
    with pytest.raises(RnnkitError, match="betas"):
        Adam(0.1, betas=0.9)
    with pytest.raises(RnnkitError, match="alpha"):
        RMSprop(0.1, alpha=-0.1)
    with pytest.raises(RnnkitError, match="momentum"):
        SGD(0.1, momentum=-1.0)
    with pytest.raises(RnnkitError, match="weight_decay"):
        Adagrad(0.1, weight_decay=-1.0)


def test_make_optimizer():
    opt = make_optimizer("adam", 0.01, betas=(0.8, 0.9), eps=1e-6)
    assert isinstance(opt, Adam) and opt.lr == 0.01 and opt.betas == (0.8, 0.9)
    assert isinstance(make_optimizer("SGD", 0.1, momentum=0.9), SGD)
    assert isinstance(make_optimizer("adagrad", 0.1), Adagrad)
    assert isinstance(make_optimizer("rmsprop", 0.1), RMSprop)


def test_make_optimizer_unknown_name_lists_valid():
    with pytest.raises(RnnkitError, match="adagrad, adam, rmsprop, sgd") as exc:
        make_optimizer("adamw", 0.1)
    assert "adamw" in str(exc.value)


def test_make_optimizer_unknown_option():
    with pytest.raises(RnnkitError, match="nesterov"):
        make_optimizer("sgd", 0.1, nesterov=True)
