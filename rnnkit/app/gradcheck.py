"""``rnnkit gradcheck``: every registered cell's layer and a language model on it, against central
differences (``rnnkit.gradcheck``), in float64."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..gradcheck import _truncated_reference, gradcheck, relative_error


def _layer_checks(name: str, rng, seed: int) -> Iterator[tuple[str, float]]:
    """The cell's layer on a ragged batch: full BPTT w.r.t. inputs, initial state and weights;
    truncated BPTT against every window unrolled by brute force."""
    from ..layers.registry import make_recurrent

    T, B, I, H = 5, 3, 4, 3
    lengths = np.array([5, 2, 1])
    layer = make_recurrent(name, I, H, seed=seed, dtype="float64")
    x = rng.standard_normal((T, B, I))
    s0 = tuple(rng.standard_normal((1, B, H)) for _ in range(layer.cell.n_states))
    h0 = layer.public_state(s0)
    R = rng.standard_normal((T, B, H))

    def loss() -> float:
        y, _ = layer.forward(x, h0, lengths=lengths)
        return float((y * R).sum())

    for k in (None, 2):
        loss()
        dx, dh0 = layer.backward(R, bptt_truncate=k)
        if k is not None:  # truncated gradients are not the derivative of the loss: compare
            got = dict(layer.grads)  # with each output's window unrolled by brute force
            ref = _truncated_reference(layer, x, h0, lengths, R, k)
            err = max(float(relative_error(got[n], ref[n]).max()) for n in ref)
            yield f"{name} layer, bptt_truncate={k} vs windows", err
            continue
        d0 = layer.state_parts(dh0)
        ps = {"x": x, **{f"state0[{i}]": s for i, s in enumerate(s0)}, **dict(layer.params)}
        gs = {"x": dx, **{f"state0[{i}]": d for i, d in enumerate(d0)}, **layer.grads}
        yield f"{name} layer, ragged batch, full BPTT", gradcheck(loss, ps, gs).max_rel_error


def _lm_check(name: str, rng, seed: int) -> tuple[str, float]:
    """A language model on the cell, ragged batch: the gradient of the summed nll."""
    from ..models.lm import LanguageModel, LMConfig

    T, B = 5, 3
    lengths = np.array([5, 2, 1])
    model = LanguageModel(
        LMConfig(vocab_size=7, embed_size=3, hidden_size=4, cell=name, dtype="float64", seed=seed)
    )
    inp, tgt = rng.integers(0, 7, (T, B)), rng.integers(0, 7, (T, B))
    g = model.loss_and_grads((inp, tgt, lengths)).grads or {}  # of the summed nll

    def nll() -> float:
        return model.nll(inp, tgt, lengths)[0]

    return f"{name} language model, ragged batch", gradcheck(
        nll, dict(model.params), g
    ).max_rel_error


def check_cells(cell: str | None = None, seed: int = 0) -> Iterator[tuple[str, float]]:
    """Yield (description, max relative error) for each cell's layer -- on a ragged batch, with and
    without truncation, w.r.t. inputs, initial state and weights -- and for a language model on it.
    Used by ``rnnkit gradcheck``; float64 throughout."""
    from ..layers.registry import cell_names

    rng = np.random.default_rng(seed)
    for name in cell_names() if cell is None else (cell,):
        yield from _layer_checks(name, rng, seed)
        yield _lm_check(name, rng, seed)


def cmd_gradcheck(a) -> int:
    ok = True
    for name, err in check_cells(None if a.cell == "all" else a.cell):
        good = err < a.tol
        ok &= good
        print(f"{name:40s} max rel error {err:.2e}  {'ok' if good else 'FAIL'}")
    return 0 if ok else 1
