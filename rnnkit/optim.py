"""Gradient clipping and first-order optimizers for flat parameter dicts.

Parameters are a ``dict[str, np.ndarray]`` (float32 or float64) and gradients a dict with the
same keys and shapes. ``Optimizer.step`` updates the parameter arrays in place. Each optimizer
reproduces the update rule of the PyTorch optimizer of the same name with its default flags
(no Nesterov, no dampening, no AMSGrad, not centered, no ``maximize``, coupled L2 weight decay,
Adagrad's ``lr_decay=0``). Below, ``g`` is the gradient, ``p`` the parameter, ``t`` the step
count (1 on the first step) and ``wd`` the weight decay; every optimizer first forms
``g <- g + wd * p`` when ``wd != 0``.

* SGD:      ``b <- g`` on the first step, then ``b <- momentum * b + g``;
            ``p <- p - lr * b`` (``b = g`` when ``momentum == 0``).
* Adagrad:  ``s <- s + g^2`` (``s`` starts at ``initial_accumulator_value``);
            ``p <- p - lr * g / (sqrt(s) + eps)``.
* RMSprop:  ``v <- alpha * v + (1 - alpha) * g^2``; ``p <- p - lr * g / (sqrt(v) + eps)``.
* Adam:     ``m <- beta1 * m + (1 - beta1) * g``; ``v <- beta2 * v + (1 - beta2) * g^2``;
            ``p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.

State arrays are kept in each parameter's dtype. One scratch array per parameter (two with
weight decay) is allocated on the first step and reused, so later steps allocate nothing of
parameter size.

``state_dict()`` returns ``(arrays, meta)``: arrays keyed ``"<state>/<param>"`` (for example
``"exp_avg/weight_hh_l0"``) and a JSON-able dict with the optimizer's name, hyper-parameters and
step count; ``load_state_dict(arrays, meta)`` restores it exactly, so training can resume.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = [
    "Adagrad",
    "Adam",
    "Optimizer",
    "RMSprop",
    "SGD",
    "clip_grad_norm",
    "clip_grad_value",
    "make_optimizer",
]


# --------------------------------------------------------------------------------------------
# gradient clipping
# --------------------------------------------------------------------------------------------


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    ``norm = sqrt(sum_k ||grads[k]||^2)``; when ``norm > max_norm`` every gradient is multiplied
    by ``max_norm / (norm + 1e-6)`` (as ``torch.nn.utils.clip_grad_norm_``). Returns the norm
    before clipping. A non-finite norm (inf or nan) is returned as is and the gradients are left
    untouched, so the caller can skip the step.
    """
    max_norm = float(max_norm)
    if not max_norm > 0 or not math.isfinite(max_norm):
        raise RnnkitError(f"max_norm must be a positive finite number, got {max_norm}")
    total_sq = 0.0
    for g in grads.values():
        n = float(np.linalg.norm(g.ravel()))
        total_sq += n * n
    total = math.sqrt(total_sq)
    if not math.isfinite(total):
        return total
    if total > max_norm:
        coef = max_norm / (total + 1e-6)
        for g in grads.values():
            g *= coef
    return total


def clip_grad_value(grads: dict[str, np.ndarray], clip_value: float) -> None:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    if not clip_value > 0 or not math.isfinite(clip_value):
        raise RnnkitError(f"clip_value must be a positive finite number, got {clip_value}")
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)


# --------------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------------


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise RnnkitError(f"{name} must be a positive finite number, got {value}")
    return value


def _check_non_negative(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0 or not math.isfinite(value):
        raise RnnkitError(f"{name} must be a non-negative finite number, got {value}")
    return value


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise RnnkitError(f"{name} must be in [0, 1), got {value}")
    return value


class Optimizer:
    """Base class: validation, weight decay, scratch buffers and state (de)serialisation.

    Subclasses set ``name`` and ``state_names`` and implement ``_update(key, p, g, tmp)``,
    which applies one step to parameter ``p`` given the (weight-decayed) gradient ``g`` and a
    scratch array ``tmp`` of ``p``'s shape and dtype. ``self.step_count`` already counts the
    current step when ``_update`` runs.
    """

    name: str = ""
    state_names: tuple[str, ...] = ()

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = _check_positive("lr", lr)
        self.weight_decay = _check_non_negative("weight_decay", weight_decay)
        self.step_count = 0
        # state[state_name][param_key] -> array of the parameter's shape and dtype
        self.state: dict[str, dict[str, np.ndarray]] = {n: {} for n in self.state_names}
        self._tmp: dict[str, np.ndarray] = {}
        self._gbuf: dict[str, np.ndarray] = {}

    # -- hooks for subclasses ------------------------------------------------------------------

    def hyperparams(self) -> dict[str, Any]:
        """JSON-able hyper-parameters, the keyword arguments of the constructor."""
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def _set_hyperparams(self, hp: dict[str, Any]) -> None:
        self.lr = _check_positive("lr", hp["lr"])
        self.weight_decay = _check_non_negative("weight_decay", hp["weight_decay"])

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------

    def _state(self, state_name: str, key: str, p: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The ``state_name`` array for ``key``, created as ``fill`` on first use."""
        store = self.state[state_name]
        arr = store.get(key)
        if arr is None:
            arr = np.full_like(p, fill)
            store[key] = arr
        elif arr.shape != p.shape:
            raise RnnkitError(
                f"optimizer state {state_name}/{key} has shape {arr.shape}, "
                f"parameter {key} has shape {p.shape}"
            )
        elif arr.dtype != p.dtype:
            arr = arr.astype(p.dtype)
            store[key] = arr
        return arr

    @staticmethod
    def _scratch(store: dict[str, np.ndarray], key: str, p: np.ndarray) -> np.ndarray:
        buf = store.get(key)
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
            buf = np.empty_like(p)
            store[key] = buf
        return buf

    # -- public API ----------------------------------------------------------------------------

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Apply one update to every array of ``params`` in place, using ``grads``."""
        for key, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise RnnkitError(f"parameter {key} must be a float numpy array")
            if key not in grads:
                raise RnnkitError(f"missing gradient for parameter {key}")
            g = grads[key]
            if not isinstance(g, np.ndarray) or g.shape != p.shape:
                shape = getattr(g, "shape", None)
                raise RnnkitError(
                    f"gradient for {key} has shape {shape}, parameter has shape {p.shape}"
                )
        for key in grads:
            if key not in params:
                raise RnnkitError(f"gradient {key} has no matching parameter")

        self.step_count += 1
        wd = self.weight_decay
        for key, p in params.items():
            g = grads[key]
            if wd != 0.0:
                gbuf = self._scratch(self._gbuf, key, p)
                np.multiply(p, wd, out=gbuf)
                gbuf += g  # g <- g + wd * p
                g = gbuf
            self._update(key, p, g, self._scratch(self._tmp, key, p))

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, meta)``: copies of the state arrays keyed ``"<state>/<param>"`` and a
        JSON-able dict ``{"name", "hyperparams", "step"}``."""
        arrays = {
            f"{state_name}/{key}": arr.copy()
            for state_name, store in self.state.items()
            for key, arr in store.items()
        }
        meta = {"name": self.name, "hyperparams": self.hyperparams(), "step": self.step_count}
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore the state saved by ``state_dict`` (hyper-parameters, step count, arrays)."""
        if not isinstance(meta, dict) or meta.get("name") != self.name:
            got = meta.get("name") if isinstance(meta, dict) else meta
            raise RnnkitError(f"optimizer state is for {got!r}, not {self.name!r}")
        try:
            hp = dict(meta["hyperparams"])
            step = meta["step"]
            self._set_hyperparams(hp)
        except (KeyError, TypeError) as exc:
            raise RnnkitError(f"malformed {self.name} optimizer state: missing {exc}") from None
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise RnnkitError(f"optimizer step count must be a non-negative int, got {step!r}")
        state: dict[str, dict[str, np.ndarray]] = {n: {} for n in self.state_names}
        for full_key, arr in arrays.items():
            state_name, sep, key = full_key.partition("/")
            if not sep or state_name not in state:
                raise RnnkitError(f"unexpected {self.name} optimizer state array {full_key}")
            arr = np.asarray(arr)
            if arr.dtype.kind != "f":
                raise RnnkitError(f"optimizer state array {full_key} must be float")
            state[state_name][key] = arr.copy()
        self.state = state
        self.step_count = step
        self._tmp.clear()
        self._gbuf.clear()

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (heavy-ball) momentum.

    ``b_1 = g_1``, ``b_t = momentum * b_{t-1} + g_t``; ``p <- p - lr * b_t``
    (with ``momentum == 0`` simply ``p <- p - lr * g``). As ``torch.optim.SGD`` with
    ``dampening=0, nesterov=False``.
    """

    name = "sgd"
    state_names = ("momentum_buffer",)

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = _check_non_negative("momentum", momentum)

    def hyperparams(self) -> dict[str, Any]:
        return {**super().hyperparams(), "momentum": self.momentum}

    def _set_hyperparams(self, hp: dict[str, Any]) -> None:
        super()._set_hyperparams(hp)
        self.momentum = _check_non_negative("momentum", hp["momentum"])

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        if self.momentum != 0.0:
            store = self.state["momentum_buffer"]
            if key not in store:
                store[key] = np.array(g, dtype=p.dtype, copy=True)  # b_1 = g_1
                buf = store[key]
            else:
                buf = self._state("momentum_buffer", key, p)
                buf *= self.momentum
                buf += g
            g = buf
        np.multiply(g, self.lr, out=tmp)
        p -= tmp


class Adagrad(Optimizer):
    """Adagrad: ``s <- s + g^2``; ``p <- p - lr * g / (sqrt(s) + eps)``.

    ``s`` starts at ``initial_accumulator_value``. As ``torch.optim.Adagrad`` with
    ``lr_decay=0``.
    """

    name = "adagrad"
    state_names = ("sum",)

    def __init__(
        self,
        lr: float,
        eps: float = 1e-10,
        initial_accumulator_value: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        self.eps = _check_non_negative("eps", eps)
        self.initial_accumulator_value = _check_non_negative(
            "initial_accumulator_value", initial_accumulator_value
        )

    def hyperparams(self) -> dict[str, Any]:
        return {
            **super().hyperparams(),
            "eps": self.eps,
            "initial_accumulator_value": self.initial_accumulator_value,
        }

    def _set_hyperparams(self, hp: dict[str, Any]) -> None:
        super()._set_hyperparams(hp)
        self.eps = _check_non_negative("eps", hp["eps"])
        self.initial_accumulator_value = _check_non_negative(
            "initial_accumulator_value", hp["initial_accumulator_value"]
        )

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        s = self._state("sum", key, p, self.initial_accumulator_value)
        np.multiply(g, g, out=tmp)
        s += tmp  # s <- s + g^2
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp  # p <- p - lr * g / (sqrt(s) + eps)


class RMSprop(Optimizer):
    """RMSprop: ``v <- alpha * v + (1 - alpha) * g^2``; ``p <- p - lr * g / (sqrt(v) + eps)``.

    ``v`` starts at zero. As ``torch.optim.RMSprop`` with ``momentum=0, centered=False``.
    """

    name = "rmsprop"
    state_names = ("square_avg",)

    def __init__(
        self, lr: float, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.alpha = _check_unit("alpha", alpha)
        self.eps = _check_non_negative("eps", eps)

    def hyperparams(self) -> dict[str, Any]:
        return {**super().hyperparams(), "alpha": self.alpha, "eps": self.eps}

    def _set_hyperparams(self, hp: dict[str, Any]) -> None:
        super()._set_hyperparams(hp)
        self.alpha = _check_unit("alpha", hp["alpha"])
        self.eps = _check_non_negative("eps", hp["eps"])

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        v = self._state("square_avg", key, p)
        v *= self.alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.alpha
        v += tmp  # v <- alpha * v + (1 - alpha) * g^2
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp  # p <- p - lr * g / (sqrt(v) + eps)


class Adam(Optimizer):
    """Adam with bias correction, eps added outside the corrected square root.

    ``m <- beta1 * m + (1 - beta1) * g``; ``v <- beta2 * v + (1 - beta2) * g^2``;
    ``p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
    As ``torch.optim.Adam`` with ``amsgrad=False`` (weight decay is the coupled L2 form, not
    AdamW's decoupled one).
    """

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        self.betas = self._check_betas(betas)
        self.eps = _check_non_negative("eps", eps)

    @staticmethod
    def _check_betas(betas: Any) -> tuple[float, float]:
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise RnnkitError(f"betas must be a pair of floats, got {betas!r}") from None
        return _check_unit("beta1", b1), _check_unit("beta2", b2)

    def hyperparams(self) -> dict[str, Any]:
        return {**super().hyperparams(), "betas": list(self.betas), "eps": self.eps}

    def _set_hyperparams(self, hp: dict[str, Any]) -> None:
        super()._set_hyperparams(hp)
        self.betas = self._check_betas(hp["betas"])
        self.eps = _check_non_negative("eps", hp["eps"])

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        beta1, beta2 = self.betas
        t = self.step_count
        m = self._state("exp_avg", key, p)
        v = self._state("exp_avg_sq", key, p)
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=tmp)
        m += tmp  # m <- beta1 * m + (1 - beta1) * g
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp  # v <- beta2 * v + (1 - beta2) * g^2
        step_size = self.lr / (1.0 - beta1**t)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp


_OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float, **kw: Any) -> Optimizer:
    """Build an optimizer by name (``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``).

    Extra keyword arguments go to the optimizer's constructor; an unknown one raises
    ``RnnkitError`` naming it.
    """
    cls = _OPTIMIZERS.get(str(name).lower())
    if cls is None:
        valid = ", ".join(sorted(_OPTIMIZERS))
        raise RnnkitError(f"unknown optimizer {name!r} (valid: {valid})")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "lr"}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise RnnkitError(
            f"unknown option(s) for optimizer {cls.name}: {', '.join(unknown)} "
            f"(valid: {', '.join(sorted(allowed))})"
        )
    return cls(lr, **kw)
