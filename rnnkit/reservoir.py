"""Echo state networks (Deep Learning book, section 10.8): a fixed random reservoir, a trained
linear readout.

The reservoir is a leaky-integrator recurrent layer whose weights are drawn once and never trained:

    h(t) = (1 - a) h(t-1) + a tanh(W_in x(t) + W h(t-1) + b),      h(0) = 0 after ``reset()``

with leak rate a in (0, 1]. Only the readout is learned, in closed form by ridge regression on the
states collected after a washout:

    y(t) = W_out z(t) + c,   z(t) = h(t)  (or [h(t), x(t)] with ``feedback_input=True``)
    (W_out, c) = argmin_{W, c}  sum_t ||W z(t) + c - y(t)||^2 + ridge ||W||_F^2

The bias c is not regularised (reservoirpy 0.4.2's ``Ridge`` does the same: it centres the
states and targets, solves for W, and sets c = mean(y) - W mean(z)). W comes from one linear
solve of the normal equations (Zc^T Zc + ridge I) W^T = Zc^T Yc (or of their N x N dual form
when there are fewer rows than features), never an explicit inverse: see ``ridge_fit``.

Initialisation draws what reservoirpy 0.4.2's default initialisers draw (``Reservoir(W=normal,
Win=bernoulli)``), with one ``SeedSequence`` child per matrix, but two defaults differ, chosen by
experiment (``benchmarks/bench_esn.py``, docs/long_memory.md):

* W: round(connectivity units^2) nonzeros at uniformly drawn positions, values N(0, 1), then
  scaled so that its spectral radius (largest ``|eigenvalue|``, computed) equals
  ``spectral_radius``;
* W_in: round(input_connectivity units inputs) nonzeros (at least one), values +-1 with equal
  probability, times ``input_scaling`` (a float, or one per input feature). Default
  ``input_connectivity=1``: every unit sees every input. reservoirpy's 0.1 feeds a one-dimensional
  input to a tenth of the units only; on Mackey-Glass (500 units, spectral radius 1.25, leak 0.3)
  that gave a 10x larger median test NRMSE over 60 seeds (1.5e-2 against 1.4e-3) and a bad draw
  (NRMSE > 0.05) in 30% of reservoirs, against none;
* b: U(-1, 1) times ``bias_scaling`` (default 1; reservoirpy's reservoir has no bias). A bias
  breaks the tanh's odd symmetry; on the same task it lowered the median NRMSE a further 25%
  (1.45e-3 to 1.10e-3 at 500 units, 5.5e-3 to 4.3e-3 at 100), and it is what whole-sequence
  classification of zero-mean signals needs (``sequence_features``).

``ESN(..., input_connectivity=0.1, bias_scaling=0)`` draws from reservoirpy's distributions.
Given reservoirpy's own W and W_in, this module reproduces reservoirpy 0.4.2's ESN (same leaky
update, same ridge) to rounding: readout 4e-8 relative, predictions 3e-9 (500 units,
``benchmarks/bench_esn.py``).

Speed: the input term W_in x(t) + b of all steps is one matrix product before the loop; the loop
does one product with W, a tanh and the leak per step, for all series of a batch at once. W is
multiplied as a dense array below 300 units and as a scipy CSR matrix from 300 units on
(measured on one core, the product alone: 100 units dense 1.6 us vs CSR 2.8 us a step; 500
units 29 vs 14 us; 3000 units 2.9 ms vs 0.5 ms). The spectral radius comes from
``np.linalg.eigvals`` below 400 units and from ARPACK (``scipy.sparse.linalg.eigs(k=1,
which="LM")``) above, with ncv=40 and tol=1e-9: ARPACK's default subspace (ncv=3 for k=1)
converges to a wrong eigenvalue on these matrices (10.22 instead of 10.30 for 1000 units; the
default is what reservoirpy 0.4.2 uses). scipy is optional: without it W stays dense and
eigvals is used (slow past ~2000 units).

Arrays are time-major: one series is (T, I) in and (T, O) out; B series are (T, B, I) and
(T, B, O).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import RnnkitError, check_memory
from .layers.dense import linear_forward
from .module import Module

__all__ = ["ESN", "Reservoir", "Readout", "ridge_fit", "spectral_radius"]

SPARSE_FROM_UNITS = 300  # CSR products pay off from about here (see the module docstring)
ARPACK_FROM_UNITS = 400  # eigvals below, ARPACK from here on


def _scipy_sparse():
    try:
        import scipy.sparse as sp

        return sp
    except ImportError:
        return None


def spectral_radius(W) -> float:
    """max ``|eigenvalue|`` of a square dense or scipy sparse matrix W (n, n)."""
    n = W.shape[0]
    sp = _scipy_sparse()
    if n >= ARPACK_FROM_UNITS and sp is not None:
        from scipy.sparse.linalg import ArpackNoConvergence, eigs

        A = sp.csr_array(W) if not sp.issparse(W) else W
        try:
            ev = eigs(
                A.astype(np.float64),
                k=1,
                which="LM",
                ncv=min(n - 1, 40),
                tol=1e-9,
                maxiter=20 * n,
                v0=np.ones(n),
                return_eigenvectors=False,
            )
            return float(np.max(np.abs(ev)))
        except ArpackNoConvergence:  # pragma: no cover - fall back to the dense answer
            pass
    dense = W.toarray() if sp is not None and sp.issparse(W) else np.asarray(W)
    return float(np.max(np.abs(np.linalg.eigvals(dense.astype(np.float64)))))


def ridge_fit(Z: np.ndarray, Y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unregularised bias: Z (N, F), Y (N, O) -> weight (O, F), bias (O,).

    Minimises ||Z W^T + 1 c^T - Y||^2 + ridge ||W||^2 by centring (c = mean(Y) - W mean(Z)) and
    one linear solve (``np.linalg.solve``) in float64 of the smaller of the two equivalent
    systems: (Zc^T Zc + ridge I) W^T = Zc^T Yc (F x F, when N >= F), or, with fewer rows than
    features, W^T = Zc^T (Zc Zc^T + ridge I)^-1 Yc (N x N). NumPy computes the Gram products
    Zc^T Zc and Zc Zc^T with a symmetric rank-k update (half a GEMM). ridge = 0 gives the
    least-squares minimum-norm solution (``np.linalg.lstsq``).

    Only NumPy's BLAS is used: scipy's own BLAS would be a second thread pool, which a
    ``threadpool_limits`` set before scipy is first imported does not pin.
    """
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    mz, my = Z.mean(axis=0), Y.mean(axis=0)
    Zc = Z - mz
    Yc = Y - my
    if ridge == 0:
        Wt = np.linalg.lstsq(Zc, Yc, rcond=None)[0]
    elif Zc.shape[0] >= Zc.shape[1]:
        A = Zc.T @ Zc
        A[np.diag_indices_from(A)] += ridge
        Wt = np.linalg.solve(A, Zc.T @ Yc)
    else:
        A = Zc @ Zc.T
        A[np.diag_indices_from(A)] += ridge
        Wt = Zc.T @ np.linalg.solve(A, Yc)
    if not np.all(np.isfinite(Wt)):
        raise RnnkitError("the ridge solution is not finite (huge or NaN states?)")
    return Wt.T, my - mz @ Wt


class Readout(Module):
    """The trained linear readout y = z weight^T + bias; weight (O, F), bias (O,)."""

    def __init__(self, n_in: int, n_out: int, dtype: np.dtype) -> None:
        super().__init__()
        self.add_param("weight", np.zeros((n_out, n_in), dtype=dtype))
        self.add_param("bias", np.zeros(n_out, dtype=dtype))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """z (..., F) -> (..., O)."""
        return linear_forward(z, self.weight, self.bias)


class Reservoir(Module):
    """The fixed random part: W_in (units, I), bias (units,), the leak rate a (a 0-d array, so
    that a state dict holds everything the recurrence needs), and W (units, units) kept as its
    nonzeros, ``W_values`` (nnz,), at ``W_rows`` and ``W_cols`` (nnz,; exact integer indices held
    as float64, since parameters are float arrays), sorted by row. All frozen."""

    def __init__(
        self,
        units: int,
        input_dim: int,
        *,
        spectral_radius: float,
        leak_rate: float,
        input_scaling,
        connectivity: float,
        input_connectivity: float,
        bias_scaling: float,
        seed: int,
        dtype: np.dtype,
        sparse: bool | None,
    ) -> None:
        super().__init__()
        self.units, self.input_dim, self.dtype = units, input_dim, dtype
        sp = _scipy_sparse()
        self.sparse = (units >= SPARSE_FROM_UNITS) if sparse is None else bool(sparse)
        if self.sparse and sp is None:
            raise RnnkitError("a sparse reservoir needs scipy (pip install scipy)")
        g_in, g_w, g_b = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
        # W: sparse N(0, 1), scaled to the spectral radius
        nnz = max(1, int(round(connectivity * units * units)))
        for _ in range(100):  # a very sparse W can be nilpotent: draw again
            flat = np.sort(g_w.choice(units * units, nnz, replace=False))
            rows, cols = np.divmod(flat, units)
            values = g_w.standard_normal(nnz)
            rho = spectral_radius_of_coo(values, rows, cols, units) if spectral_radius > 0 else 1.0
            if rho > 1e-12:
                break
        else:
            raise RnnkitError(
                f"W has spectral radius 0 in 100 draws (connectivity={connectivity}"
                f" too low for {units} units); cannot scale it"
            )
        values *= spectral_radius / rho
        self.add_param("W_values", values.astype(dtype))
        self.add_param("W_rows", rows.astype(np.float64))
        self.add_param("W_cols", cols.astype(np.float64))
        # W_in: sparse Bernoulli +-1 times the input scaling
        k = max(1, int(round(input_connectivity * units * input_dim)))
        w_in = np.zeros(units * input_dim)
        w_in[g_in.choice(units * input_dim, k, replace=False)] = np.where(
            g_in.random(k) < 0.5, -1.0, 1.0
        )
        w_in = w_in.reshape(units, input_dim) * np.asarray(input_scaling, dtype=np.float64)
        self.add_param("W_in", w_in.astype(dtype))
        self.add_param("bias", (g_b.uniform(-1.0, 1.0, units) * bias_scaling).astype(dtype))
        self.add_param("leak_rate", np.array(leak_rate, dtype=np.float64))  # 0-d
        self.freeze()

    def matrix(self):
        """W as the array the loop multiplies: dense (units, units) or scipy CSR, rebuilt from the
        stored nonzeros at every run (so loaded or edited values always take effect; about 0.2 ms
        for 500 units, 10 ms for 3000)."""
        return _coo_to(self.W_values, self.W_rows, self.W_cols, self.units, self.sparse)

    def run(self, X: np.ndarray, h: np.ndarray) -> np.ndarray:
        """States of B series: X (T, B, I), h = h(0) (B, units) -> S (T, B, units), S[t] = h(t+1).

        The leak equation of the module docstring, one Python iteration per step."""
        T, B = X.shape[:2]
        U = linear_forward(X, self.W_in, self.bias)  # W_in x(t) + b, one product
        S = np.empty((T, B, self.units), dtype=self.dtype)
        step = self.stepper(B)
        for t in range(T):
            h = step(h, U[t], S[t])
        return S

    def stepper(self, B: int):
        """A function (h (B, units), u (B, units), out (B, units)) -> out = the next state."""
        W, a = self.matrix(), float(self.leak_rate)
        if self.sparse and B == 1:

            def mv(h: np.ndarray, out: np.ndarray) -> None:
                np.copyto(out[0], W @ h[0])

        elif self.sparse:

            def mv(h: np.ndarray, out: np.ndarray) -> None:
                np.copyto(out, (W @ h.T).T)

        else:
            WT = np.ascontiguousarray(W.T)

            def mv(h: np.ndarray, out: np.ndarray) -> None:
                np.matmul(h, WT, out=out)

        def step(h: np.ndarray, u: np.ndarray, out: np.ndarray) -> np.ndarray:
            mv(h, out)
            out += u
            np.tanh(out, out=out)
            if a != 1.0:  # out = h + a (tanh(.) - h)
                out -= h
                out *= a
                out += h
            return out

        return step


def _coo_to(values, rows, cols, n: int, sparse: bool):
    r, c = rows.astype(np.intp), cols.astype(np.intp)
    if sparse:
        sp = _scipy_sparse()
        indptr = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
        if np.any(np.diff(r) < 0):  # not row-sorted (edited by hand): sort first
            o = np.lexsort((c, r))
            values, c = values[o], c[o]
        return sp.csr_array((values, c, indptr), shape=(n, n))
    W = np.zeros((n, n), dtype=values.dtype)
    W[r, c] = values
    return W


def spectral_radius_of_coo(values, rows, cols, n: int) -> float:
    """Spectral radius of the (n, n) matrix with the given nonzeros."""
    use_sparse = n >= ARPACK_FROM_UNITS and _scipy_sparse() is not None
    return spectral_radius(_coo_to(values, rows, cols, n, use_sparse))


def _check_reservoir_fits(units: int, connectivity: float) -> None:
    """A one-line error, before drawing, for a reservoir that cannot fit in memory: drawing W
    takes about 48 bytes per nonzero (positions, values, sorting)."""
    nnz = connectivity * units * units
    check_memory(
        48 * nnz,
        f"{units:,} units at connectivity {connectivity:g} make {nnz:,.0f} recurrent weights "
        f"to draw",
        "lower units or connectivity",
    )


class ESN(Module):
    """An echo state network: fixed reservoir, ridge-regression readout (see the module docstring).

    Parameters (dotted names): ``reservoir.W_values``, ``reservoir.W_rows``, ``reservoir.W_cols``,
    ``reservoir.W_in``, ``reservoir.bias``, ``reservoir.leak_rate`` (frozen) and
    ``readout.weight`` (O, F), ``readout.bias`` (O,), F = units (+ I with ``feedback_input``).
    The reservoir is drawn when the input dimension is first known (``input_dim=`` or the first
    fit/run); the readout at the first fit (or ``output_dim=``). ``load_state_dict`` builds both
    from the shapes it is given.

    ``feedback_input=True`` also feeds the input x(t) to the readout: z(t) = [h(t), x(t)].
    ``sparse``: None picks CSR from 300 units on (needs scipy); True/False forces it.
    """

    def __init__(
        self,
        units: int,
        spectral_radius: float = 0.9,
        leak_rate: float = 1.0,
        input_scaling: float | Sequence[float] = 1.0,
        connectivity: float = 0.1,
        bias_scaling: float = 1.0,
        ridge: float = 1e-6,
        input_connectivity: float = 1.0,
        feedback_input: bool = False,
        seed: int = 0,
        dtype: str = "float64",
        *,
        input_dim: int | None = None,
        output_dim: int | None = None,
        sparse: bool | None = None,
    ) -> None:
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise RnnkitError(f"units must be a positive integer, got {units!r}")
        checks = [
            ("spectral_radius", spectral_radius >= 0),
            ("leak_rate", 0 < leak_rate <= 1),
            ("connectivity", 0 < connectivity <= 1),
            ("ridge", ridge >= 0),
            ("input_connectivity", 0 < input_connectivity <= 1),
            ("bias_scaling", bias_scaling >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise RnnkitError(f"bad {name}: {locals()[name]!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise RnnkitError(f"dtype must be float32 or float64, got {dtype!r}")
        _check_reservoir_fits(int(units), float(connectivity))
        self.units = int(units)
        self.spectral_radius, self.leak_rate = float(spectral_radius), float(leak_rate)
        self.input_scaling = input_scaling
        self.connectivity, self.input_connectivity = float(connectivity), float(input_connectivity)
        self.bias_scaling, self.ridge = float(bias_scaling), float(ridge)
        self.feedback_input, self.seed = bool(feedback_input), int(seed)
        self.dtype = np.dtype(dtype)
        self._sparse_opt = sparse
        self.add_module("reservoir", None)  # drawn once the input dimension is known
        self.add_module("readout", None)
        self._h: np.ndarray | None = None  # current state (B, units), None = zero
        self._x_last: np.ndarray | None = None  # last input (B, I), for generate's first output
        self._single = True  # whether the current state is of one series
        self.classify_feature = "mean"
        if input_dim is not None:
            self._build_reservoir(input_dim)
            if output_dim is not None:
                self._build_readout(output_dim)

    # -- building --------------------------------------------------------------------------------
    def _build_reservoir(self, input_dim: int) -> None:
        scaling = np.asarray(self.input_scaling, dtype=np.float64)
        if scaling.ndim > 1 or (scaling.ndim == 1 and scaling.shape[0] != input_dim):
            raise RnnkitError(
                f"input_scaling must be a float or {input_dim} values, got shape {scaling.shape}"
            )
        self.reservoir = Reservoir(
            self.units,
            int(input_dim),
            spectral_radius=self.spectral_radius,
            leak_rate=self.leak_rate,
            input_scaling=scaling,
            connectivity=self.connectivity,
            input_connectivity=self.input_connectivity,
            bias_scaling=self.bias_scaling,
            seed=self.seed,
            dtype=self.dtype,
            sparse=self._sparse_opt,
        )

    def _build_readout(self, output_dim: int) -> None:
        self.readout = Readout(self.n_features, int(output_dim), self.dtype)

    @property
    def input_dim(self) -> int | None:
        return None if self.reservoir is None else self.reservoir.input_dim

    @property
    def n_features(self) -> int:
        """F, the readout's input size: units (+ input_dim with feedback_input)."""
        return self.units + ((self.input_dim or 0) if self.feedback_input else 0)

    def load_state_dict(self, d: dict, strict: bool = True) -> None:
        """As Module's; an unbuilt ESN is first built from the shapes in ``d``."""
        if self.reservoir is None and "reservoir.W_in" in d:
            self._build_reservoir(np.shape(d["reservoir.W_in"])[1])
        if self.reservoir is not None and self.readout is None and "readout.weight" in d:
            self._build_readout(np.shape(d["readout.weight"])[0])
        super().load_state_dict(d, strict)

    # -- input checks -----------------------------------------------------------------------------
    def _as_series(self, X, name: str = "X") -> tuple[np.ndarray, bool]:
        """(T, I) or (T, B, I) -> ((T, B, I) array of self.dtype, whether it was one series)."""
        X = np.asarray(X)
        if X.dtype.kind not in "fiub":
            raise RnnkitError(f"{name} must be numeric, got dtype {X.dtype}")
        if X.ndim not in (2, 3) or X.shape[0] == 0 or 0 in X.shape:
            raise RnnkitError(
                f"{name} must be (T, features) or (T, B, features) and non-empty, "
                f"got shape {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise RnnkitError(f"{name} contains NaN or inf")
        single = X.ndim == 2
        X = X[:, None, :] if single else X
        return X.astype(self.dtype, copy=False), single

    def _ensure_reservoir(self, X: np.ndarray) -> None:
        if self.reservoir is None:
            self._build_reservoir(X.shape[-1])
        elif X.shape[-1] != self.input_dim:
            raise RnnkitError(
                f"inputs have {X.shape[-1]} features, the reservoir expects {self.input_dim}"
            )

    def _check_fitted(self) -> None:
        if self.readout is None:
            raise RnnkitError("the ESN has no readout yet: call fit() (or fit_classifier()) first")

    # -- states -----------------------------------------------------------------------------------
    def reset(self) -> ESN:
        """Set the state to zero (the next run/predict starts a fresh series)."""
        self._h = None
        self._x_last = None
        return self

    @property
    def state(self) -> np.ndarray | None:
        """The current state h: (units,) after one series, (B, units) after B, None if zero."""
        if self._h is None:
            return None
        return self._h[0].copy() if self._single else self._h.copy()

    def _run3(self, X3: np.ndarray, single: bool) -> np.ndarray:
        """Run from the current state (zero when None or when its batch size differs) and keep
        the final state. X3 (T, B, I) -> states (T, B, units)."""
        B = X3.shape[1]
        h = self._h
        if h is None or h.shape[0] != B:
            h = np.zeros((B, self.units), dtype=self.dtype)
        S = self.reservoir.run(X3, h)
        self._h = S[-1].copy()
        self._x_last = X3[-1].copy()
        self._single = single
        return S

    def run(self, X) -> np.ndarray:
        """Reservoir states, continuing from the current state: X (T, I) -> (T, units), or
        (T, B, I) -> (T, B, units). A batch of a different size than the current state starts
        from zero."""
        X3, single = self._as_series(X)
        self._ensure_reservoir(X3)
        S = self._run3(X3, single)
        return S[:, 0] if single else S

    def _features(self, S: np.ndarray, X3: np.ndarray) -> np.ndarray:
        """z(t): S (T, B, units) [, X (T, B, I)] -> (T, B, F)."""
        return np.concatenate([S, X3], axis=-1) if self.feedback_input else S

    # -- regression -------------------------------------------------------------------------------
    def fit(self, X, Y, washout: int = 0) -> ESN:
        """Fit the readout: X (T, I) and Y (T, O), or (T, B, I) and (T, B, O) for B series.

        Every series starts from the zero state; the states z(t), t >= washout, of all series are
        stacked ((T - washout) B rows) and the ridge readout of the module docstring is solved.
        Afterwards the state is where the series ended, so ``predict`` continues them."""
        X3, single = self._as_series(X)
        Y = np.asarray(Y)
        Y3, ysingle = self._as_series(Y, "Y")
        if ysingle != single or Y3.shape[:2] != X3.shape[:2]:
            raise RnnkitError(
                f"X {np.shape(X)} and Y {Y.shape} must have the same leading (T[, B]) dimensions"
            )
        washout = self._check_washout(washout, X3.shape[0])
        self._ensure_reservoir(X3)
        self.reset()
        S = self._run3(X3, single)
        Z = self._features(S[washout:], X3[washout:]).reshape(-1, self.n_features)
        W, c = ridge_fit(Z, Y3[washout:].reshape(-1, Y3.shape[-1]), self.ridge)
        if self.readout is None or self.readout.weight.shape[0] != Y3.shape[-1]:
            self._build_readout(Y3.shape[-1])
        self.readout.weight = W
        self.readout.bias = c
        return self

    @staticmethod
    def _check_washout(washout, T: int) -> int:
        if isinstance(washout, bool) or not isinstance(washout, (int, np.integer)) or washout < 0:
            raise RnnkitError(f"washout must be a non-negative integer, got {washout!r}")
        if T <= washout:
            raise RnnkitError(f"series of {T} steps is not longer than the washout ({washout})")
        return int(washout)

    def predict(self, X) -> np.ndarray:
        """Outputs y(t) for X (T, I) -> (T, O) or (T, B, I) -> (T, B, O), continuing from the
        state where fit or the last predict/run ended (a batch of another size starts from
        zero)."""
        self._check_fitted()
        X3, single = self._as_series(X)
        self._ensure_reservoir(X3)
        Yh = self.readout(self._features(self._run3(X3, single), X3))
        return Yh[:, 0] if single else Yh

    def generate(self, n: int, warmup=None) -> np.ndarray:
        """Closed loop from the current state: n outputs, each fed back as the next input.

        ``warmup`` (T, I) or (T, B, I), if given, is first run teacher-forced. The first output is
        the readout of the current state, the prediction that follows the last input; then
        x <- y, h <- step(h, x), y <- readout(h[, x]). Needs output dim == input dim.
        Returns (n, O), or (n, B, O) when the state holds B series."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise RnnkitError(f"n must be a positive integer, got {n!r}")
        if self.readout.weight.shape[0] != self.input_dim:
            raise RnnkitError(
                f"generate feeds outputs back as inputs: output dim "
                f"{self.readout.weight.shape[0]} != input dim {self.input_dim}"
            )
        if warmup is not None:
            X3, single = self._as_series(warmup, "warmup")
            self._ensure_reservoir(X3)
            self._run3(X3, single)
        I = int(self.readout.weight.shape[0])  # == input_dim, checked above
        if self._h is None or self._x_last is None:  # both are set together
            B = 1
            h = np.zeros((1, self.units), dtype=self.dtype)
            x = np.zeros((1, I), dtype=self.dtype)
        else:
            h, x = self._h, self._x_last
            B = h.shape[0]
        res, ro = self.reservoir, self.readout
        out = np.empty((n, B, ro.weight.shape[0]), dtype=self.dtype)
        feat = (
            (lambda h, x: np.concatenate([h, x], axis=-1))
            if self.feedback_input
            else (lambda h, x: h)
        )
        step = res.stepper(B)
        bufs = np.empty((2, B, self.units), dtype=self.dtype)
        y = ro(feat(h, x))
        for k in range(n):
            out[k] = y
            if k == n - 1:
                break
            x = y
            h = step(h, linear_forward(x, res.W_in, res.bias), bufs[k % 2])
            y = ro(feat(h, x))
        self._h, self._x_last = h.copy(), x.copy()
        return out[:, 0] if self._single and B == 1 else out

    # -- whole-sequence classification ------------------------------------------------------------
    def sequence_features(self, X, washout: int = 0, feature: str = "mean") -> np.ndarray:
        """One feature row per sequence, each run from the zero state (the ESN's own state is
        left alone): X a list of (T_i, I) arrays or one (T, B, I) array -> (B, F).

        ``feature="mean"`` (the default): the mean of z(t) over washout <= t < T_i;
        ``"last"``: z(T_i - 1). Ragged lists are padded and run as one batch.

        Without a reservoir bias (``bias_scaling=0``) h is an odd function of the inputs, so
        zero-mean symmetric signals give mean states near zero whatever their class: keep
        ``bias_scaling > 0`` (the default 1) for classifying such signals."""
        if feature not in ("mean", "last"):
            raise RnnkitError(f"feature must be 'mean' or 'last', got {feature!r}")
        if isinstance(X, np.ndarray) and X.ndim == 3:
            seqs = None
            X3, _ = self._as_series(X)
            lengths = np.full(X3.shape[1], X3.shape[0])
        else:
            seqs = [self._as_series(x, f"X[{i}]") for i, x in enumerate(X)]
            if not seqs or any(not s for _, s in seqs):
                raise RnnkitError(
                    "X must be a non-empty list of (T_i, features) arrays or one "
                    "(T, B, features) array"
                )
            dims = {x.shape[-1] for x, _ in seqs}
            if len(dims) != 1:
                raise RnnkitError(f"sequences have different feature sizes {sorted(dims)}")
            lengths = np.array([x.shape[0] for x, _ in seqs])
            X3 = np.zeros((lengths.max(), len(seqs), dims.pop()), dtype=self.dtype)
            for i, (x, _) in enumerate(seqs):
                X3[: lengths[i], i] = x[:, 0]
        self._check_washout(washout, int(lengths.min()))
        self._ensure_reservoir(X3)
        h0 = np.zeros((X3.shape[1], self.units), dtype=self.dtype)
        Z = self._features(self.reservoir.run(X3, h0), X3)  # (T, B, F)
        cols = np.arange(X3.shape[1])
        if feature == "last":
            return Z[lengths - 1, cols]
        if seqs is None:
            return Z[washout:].mean(axis=0)
        t = np.arange(X3.shape[0])[:, None]
        mask = (t >= washout) & (t < lengths[None, :])  # (T, B)
        return np.einsum("tb,tbf->bf", mask.astype(self.dtype), Z) / (lengths - washout)[:, None]

    def fit_classifier(self, X, labels, washout: int = 0, feature: str = "mean") -> ESN:
        """Fit a readout from per-sequence features (``sequence_features``) to one-hot targets of
        ``labels`` (B,) ints in [0, C); C = max label + 1. ``predict_class`` returns the argmax."""
        labels = np.asarray(labels)
        if (
            labels.ndim != 1
            or labels.dtype.kind not in "iu"
            or labels.size == 0
            or labels.min() < 0
        ):
            raise RnnkitError("labels must be a 1-D array of non-negative integers")
        F = self.sequence_features(X, washout, feature)
        if F.shape[0] != labels.shape[0]:
            raise RnnkitError(f"{F.shape[0]} sequences but {labels.shape[0]} labels")
        onehot = np.eye(int(labels.max()) + 1)[labels]
        W, c = ridge_fit(F, onehot, self.ridge)
        self._build_readout(onehot.shape[1])
        self.readout.weight = W
        self.readout.bias = c
        self.classify_feature, self._classify_washout = feature, washout
        return self

    def class_scores(self, X, washout: int | None = None) -> np.ndarray:
        """Readout outputs (B, C) of each sequence's features (one-hot regression scores)."""
        self._check_fitted()
        w = getattr(self, "_classify_washout", 0) if washout is None else washout
        return self.readout(self.sequence_features(X, w, self.classify_feature))

    def predict_class(self, X, washout: int | None = None) -> np.ndarray:
        """The predicted class (B,) int64 of each sequence (argmax of ``class_scores``); the
        washout defaults to fit_classifier's."""
        return np.argmax(self.class_scores(X, washout), axis=1).astype(np.int64)
