"""How the gradient fades through time in a recurrent layer (Deep Learning book 10.7): the norm
of dL/dh(t) for a loss at the last step, and each step's Jacobian ds(t)/ds(t-1), both exact.

* ``gradient_norms``: ||dL/dh(t)|| of the top layer (10.20-10.21 without the output terms of
  steps before T), the layer taken back one step at a time (``StepFunction``)::

      dL/dh(t) = (dh(t+1)/dh(t))^T dL/dh(t+1)

* ``step_jacobians`` / ``jacobian_norms``: J(t) = ds(t)/ds(t-1) of the whole recurrent state s
  (every layer; (h, c) for the LSTM, the delay line of the skip cell, the clockwork counter),
  formed row by row: the step is run once on a batch holding each sequence n times (n = size of
  s) and taken back once with the n basis vectors e_i as dL/ds(t), which gives the rows
  e_i^T J(t); then ||J(t)||_2 = sqrt(largest eigenvalue of J J^T), and ||J(t)||_F / sqrt(n), the
  root-mean-square singular value.

``rnnkit inspect gradients`` (``rnnkit.app.inspect_grads``) plots them for trained runs
(``rnnkit.tasks.gradients``).
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnkitError
from ..layers.stepper import StepFunction

__all__ = ["gradient_norms", "step_jacobians", "jacobian_norms"]


def _check_layer(layer) -> None:
    if layer.num_directions != 1:
        raise RnnkitError(
            "inspect gradients needs a unidirectional recurrent layer (a "
            "bidirectional one has no single last step)"
        )


def gradient_norms(layer, x: np.ndarray, dloss_dy_last) -> tuple[np.ndarray, float]:
    """||dL/dh(t)|| of the top layer for every sequence, L the loss at the last step only.

    layer: a unidirectional ``RecurrentLayer``; x (T, B, I) floats or (T, B) ids;
    dloss_dy_last: y(T) (B, H) -> (loss (float), dL/dy(T) (B, H)). Returns (norms (T, B), loss)
    with norms[t-1] = ||dL/dh(t)|| of each sequence."""

    _check_layer(layer)
    f = StepFunction(layer)
    s, tapes = None, []
    for x_t in x:
        y_t, s, tape = f.forward(x_t, s)
        tapes.append(tape)
    loss, dy = dloss_dy_last(y_t)
    T = len(tapes)
    norms = np.empty((T, dy.shape[0]))
    norms[T - 1] = np.linalg.norm(dy, axis=-1)
    ds = None
    for t in range(T - 1, 0, -1):  # tapes[t] is step t+1; it gives dL/ds(t)
        _, ds = f.backward(tapes[t], dy if t == T - 1 else None, ds)
        norms[t - 1] = np.linalg.norm(f.layer.state_parts(ds)[0][-1], axis=-1)
    return norms, float(loss)


def _states(layer, x: np.ndarray) -> list[tuple]:
    """s(0), ..., s(T-1): the state entering each step, each a tuple of (L, B, H) arrays."""

    f = StepFunction(layer)
    B = x.shape[1]
    s = tuple(
        np.zeros((layer.num_layers, B, layer.hidden_size), layer.dtype)
        for _ in range(layer.cell.n_states)
    )
    out = [s]
    for x_t in x[:-1]:
        _, s, _ = f.forward(x_t, layer.public_state(s))
        s = layer.state_parts(s)
        out.append(s)
    return out


def step_jacobians(layer, x_t: np.ndarray, s_prev: tuple) -> np.ndarray:
    """J = ds(t)/ds(t-1) of one step, exactly: (B, n, n), n = n_states * L * H, the state
    flattened as (state kind, layer, unit). x_t (B, I) or (B,) ids; s_prev: tuple of (L, B, H).

    The step runs on a batch holding each sequence n times; its backward with dL/ds(t) = e_i for
    copy i gives dL/ds(t-1) = J^T e_i, row i of J."""
    _check_layer(layer)
    K, L, H = layer.cell.n_states, layer.num_layers, layer.hidden_size
    B, n = x_t.shape[0], K * L * H
    rep = lambda a, ax: np.repeat(a, n, axis=ax)  # noqa: E731  sequence b -> rows b*n .. b*n+n-1
    xr = rep(x_t, 0)[None]
    sr = tuple(rep(s, 1) for s in s_prev)
    basis = np.zeros((K, L, B * n, H), layer.dtype)
    eye = np.eye(n, dtype=layer.dtype).reshape(n, K, L, H)  # e_i as (kind, layer, unit)
    basis[...] = np.tile(eye.transpose(1, 2, 0, 3), (1, 1, B, 1))
    layer.forward(xr, layer.public_state(sr))
    keep, layer.bptt_truncate = getattr(layer, "bptt_truncate", None), None  # the full step,
    try:  # whatever truncation the model was trained with (0 would cut ds(t)/ds(t-1) itself)
        _, ds0 = layer.backward(None, layer.public_state(tuple(basis)))
    finally:
        layer.bptt_truncate = keep
    rows = np.stack(layer.state_parts(ds0))  # (K, L, B*n, H): row i of J for copy i
    return rows.transpose(2, 0, 1, 3).reshape(B, n, n)


def jacobian_norms(layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(||J(t)||_2, ||J(t)||_F / sqrt(n)), each (T, B), of J(t) = ds(t)/ds(t-1) for every step
    t = 1..T (index t-1) and sequence: the largest and the root-mean-square singular value."""
    states = _states(layer, x)
    spec, rms = np.empty((2, x.shape[0], x.shape[1]))
    for t, (x_t, s) in enumerate(zip(x, states)):
        J = step_jacobians(layer, x_t, s).astype(np.float64)
        lam = np.linalg.eigvalsh(J @ J.swapaxes(-1, -2))[..., -1]
        spec[t] = np.sqrt(np.maximum(lam, 0.0))
        rms[t] = np.sqrt((J * J).mean(axis=(-2, -1)) * J.shape[-1])
    return spec, rms
