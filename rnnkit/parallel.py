"""Communication for data-parallel training: K processes started by ``mpirun``, one model each.

``mpirun -n K rnnkit train TASK ...`` runs the same loop (:func:`rnnkit.fit.fit`) in K ranks. Each
rank holds a full copy of the parameters and of the optimizer state; every step

1. every rank builds the same GLOBAL batch (same seed, same data order) and computes the loss and
   the gradients of the SUM over its own share of it (``Task.shard(batch, rank, K)``);
2. one buffer-based ``Allreduce`` sums, in a single contiguous buffer, all the gradient sums, the
   loss sums, the counts and the stop flags (time budget spent, Ctrl-C, SIGTERM) of every rank;
3. every rank divides by the GLOBAL count (the sum of per-rank sums over the global count, never a
   mean of means), clips and applies the identical update.

So K ranks follow the same trajectory as one process with the same ``--batch-size`` (to floating-
point round-off: sums in another order). Rank 0 alone writes the checkpoint, metrics and plot.

The loop only calls the :class:`Comm` interface below; the one-process version (:data:`SERIAL`)
is trivial, and :func:`world` returns it when the program was not started by ``mpirun`` (then
mpi4py is never imported) or was started with one process.

Sharding (:func:`split_batch`, the default of ``Task.shard``): the batch is cut into K
contiguous blocks along its batch axis; :func:`block` gives rank ``r`` the examples
``[lo, hi)`` (the first ``n % K`` ranks one more). A rank whose block is empty gets ``None`` and
contributes zeros.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import RnnkitError

# environment variables by which launchers tell a process its rank and the job's size: Open MPI,
# MPICH/Intel MPI (Hydra, PMI), MVAPICH, Slurm's srun
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")

# counts travel in a float buffer as two parts, hi * 2**12 + lo: exact in float32 for a global
# count below 2**36 and fewer than 4096 ranks
_COUNT_BASE = 4096


class Comm:
    """One process: nothing to combine. The interface every communicator has.

    * ``allreduce_grads(grads, loss_sum, count, flags)`` sums, over ranks and in place, the
      gradient SUMS (dict name -> array), the loss sums, the counts and the stop flags; returns
      ``(loss_sum, count, flags)``, all global;
    * ``any(flag)`` / ``max(value)``: a collective decision outside the step (an epoch's end);
    * ``sum_values(total, count, extra)``: evaluation sums (summable ``extra`` counts) over ranks;
    * ``gather(obj)`` (a list on rank 0, None elsewhere), ``bcast(obj)`` (rank 0's object);
    * ``collective_errors()``: a context where an error on any rank is raised on every rank;
    * ``abort(code)``: end every rank now (a failure only this rank saw).
    """

    rank: int = 0
    size: int = 1

    def allreduce_grads(
        self, grads: dict[str, np.ndarray], loss_sum: float, count: int, flags: tuple = ()
    ) -> tuple[float, int, tuple]:
        return float(loss_sum), int(count), tuple(int(f) for f in flags)

    def any(self, flag: bool) -> bool:
        return bool(flag)

    def max(self, value: int) -> int:
        return int(value)

    def sum_values(self, total: float, count: int, extra: dict) -> tuple[float, int, dict]:
        return total, count, extra

    def gather(self, obj: Any) -> list | None:
        return [obj]

    def bcast(self, obj: Any) -> Any:
        return obj

    @contextlib.contextmanager
    def collective_errors(self) -> Iterator[None]:
        yield

    def check_same(self, params: dict[str, np.ndarray]) -> bool:
        return True

    def abort(self, code: int = 1) -> None:  # pragma: no cover - one process simply exits
        raise SystemExit(code)


SERIAL = Comm()
_CURRENT: Comm = SERIAL


class CollectiveError(RnnkitError):
    """An error raised on every rank at once (so every rank can exit normally)."""

    collective = True


class MPIComm(Comm):
    """K ranks of an MPI communicator (mpi4py). Gradients go through ONE ``Allreduce`` per step
    on a contiguous buffer of the gradients' dtype, laid out once (parameters in sorted name order,
    then the loss sum, the count in two parts and the flags) and reused every step.

    Statistics for benchmarks: ``steps``, ``allreduce_seconds`` (time inside the gradient
    Allreduce, waiting for the slowest rank included) and ``buffer_bytes`` (the buffer's size;
    a ring allreduce sends about 2 (K-1)/K times that per rank).
    """

    def __init__(self, mpi_comm):
        from mpi4py import MPI  # noqa: F401  (the caller checked that it imports)

        self._MPI = MPI
        self._c = mpi_comm
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self._layout: tuple | None = None
        self._buf: np.ndarray | None = None
        self.steps, self.allreduce_seconds, self.buffer_bytes = 0, 0.0, 0

    # -- the step ---------------------------------------------------------------------------------
    def _set_layout(self, grads: dict[str, np.ndarray], n_flags: int) -> None:
        names = sorted(grads)
        dtype = np.result_type(*[grads[k].dtype for k in names]) if names else np.dtype(np.float64)
        if dtype.kind != "f":
            dtype = np.dtype(np.float64)
        layout = (tuple((k, tuple(grads[k].shape)) for k in names), dtype.str, n_flags)
        if layout == self._layout:
            return
        # the first step (and any change): every rank must pack the same layout
        sig = zlib.crc32(repr(layout).encode())
        sigs = self._c.allgather(sig)
        if len(set(sigs)) != 1:
            raise RnnkitError(
                f"ranks disagree on the gradients to sum (names, shapes or dtype): "
                f"rank {self.rank} has {len(names)} arrays of {dtype}; a model must "
                f"return a gradient for every trained parameter on every rank"
            )
        n = sum(int(np.prod(s)) for _, s in layout[0])
        self._layout = layout
        self._buf = np.empty(n + 3 + n_flags, dtype)
        self.buffer_bytes = self._buf.nbytes

    def allreduce_grads(self, grads, loss_sum, count, flags=()):
        self._set_layout(grads, len(flags))
        buf, off = self._buf, 0
        for k, shape in self._layout[0]:
            n = int(np.prod(shape))
            buf[off : off + n] = grads[k].reshape(-1)
            off += n
        count = int(count)
        buf[off : off + 3] = (loss_sum, count // _COUNT_BASE, count % _COUNT_BASE)
        buf[off + 3 :] = [int(f) for f in flags]
        t0 = time.perf_counter()
        self._c.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - t0
        self.steps += 1
        off = 0
        for k, shape in self._layout[0]:
            n = int(np.prod(shape))
            np.copyto(grads[k], buf[off : off + n].reshape(shape))
            off += n
        total = float(buf[off])
        n_all = int(round(float(buf[off + 1]))) * _COUNT_BASE + int(round(float(buf[off + 2])))
        return total, n_all, tuple(int(round(float(f))) for f in buf[off + 3 :])

    # -- small collectives ----------------------------------------------------------------------
    def any(self, flag):
        return self.max(1 if flag else 0) > 0

    def max(self, value):
        return int(self._c.allreduce(int(value), op=self._MPI.MAX))

    def sum_values(self, total, count, extra):
        """Summed in rank order from an allgather: the same result, bit for bit, on every rank."""
        parts = self._c.allgather((float(total), int(count), dict(extra)))
        t, n, ex = 0.0, 0, {}
        for pt, pn, pe in parts:
            t, n = t + pt, n + pn
            for k, v in pe.items():
                ex[k] = ex.get(k, 0) + v
        return t, n, ex

    def gather(self, obj):
        return self._c.gather(obj, root=0)

    def bcast(self, obj):
        return self._c.bcast(obj, root=0)

    @contextlib.contextmanager
    def collective_errors(self):
        """Every rank leaves this block together: if a rank raised an RnnkitError or OSError (a
        locked run folder, a missing file), every rank raises the first such error (lowest rank),
        so that all of them exit normally instead of waiting for each other. Anything else (a
        bug, Ctrl-C) goes on as it is, to :meth:`abort`."""
        msg = None
        try:
            yield
        except (RnnkitError, OSError) as exc:
            msg = (
                str(exc)
                if isinstance(exc, RnnkitError)
                else f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            )
        msgs = self._c.allgather(msg)
        for r, m in enumerate(msgs):
            if m is not None:
                raise CollectiveError(m if r == 0 else f"rank {r}: {m}")

    def check_same(self, params):
        """True when every rank holds the same parameter bits (a CRC per rank, compared)."""
        crc = 0
        for k in sorted(params):
            crc = zlib.crc32(np.ascontiguousarray(params[k]).tobytes(), crc)
        return len(set(self._c.allgather(crc))) == 1

    def abort(self, code=1):
        sys.stderr.flush()
        self._c.Abort(code)


# -- which communicator ------------------------------------------------------------------------
def _env_int(names) -> int | None:
    for n in names:
        v = os.environ.get(n)
        if v is not None:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def launch_size() -> int:
    """The number of processes the launcher (mpirun, srun) started, from the environment; 1
    when there is none. Reads no MPI library."""
    return _env_int(_SIZE_VARS) or 1


def launch_rank() -> int:
    """This process's rank as the launcher set it in the environment (0 without one)."""
    return _env_int(_RANK_VARS) or 0


def world() -> Comm:
    """The communicator of this run: :data:`SERIAL` unless started by mpirun with K > 1
    processes, then an :class:`MPIComm` over ``MPI.COMM_WORLD`` (mpi4py imported only then).
    Started by mpirun without mpi4py: a one-line error (K separate runs would each train alone)."""
    global _CURRENT
    if isinstance(_CURRENT, MPIComm):
        return _CURRENT
    k = launch_size()
    if k <= 1:
        return SERIAL
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RnnkitError(
            f"started by mpirun with {k} processes, but mpi4py does not import "
            f"({exc}): pip install 'rnnkit[mpi]' (Debian: openmpi-bin and "
            f"libopenmpi-dev first)"
        ) from None
    c = MPI.COMM_WORLD
    if c.Get_size() == 1:
        return SERIAL
    _CURRENT = MPIComm(c)
    return _CURRENT


def current() -> Comm:
    """The communicator :func:`world` made (:data:`SERIAL` before or without one)."""
    return _CURRENT


# -- sharding ------------------------------------------------------------------------------------
def block(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous block ``[lo, hi)`` of ``n`` items cut into ``size`` blocks:
    sizes ``n // size``, the first ``n % size`` ranks one more (rank 0 first)."""
    q, r = divmod(int(n), int(size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


class Unshardable(RnnkitError):
    """The default sharding cannot tell the batch axis of this batch."""


_PASS = (type(None), bool, int, float, str, np.integer, np.floating)


def _fields(batch) -> list:
    if isinstance(batch, np.ndarray):
        return [batch]
    if isinstance(batch, dict):
        return list(batch.values())
    if isinstance(batch, (tuple, list)):
        return list(batch)
    raise Unshardable(f"a batch of type {type(batch).__name__}")


def batch_axes(batch) -> tuple[int, list]:
    """(B, axes): the batch width and, for each field, the axis to cut (None: pass as is).

    Time-major rule: B is the size of axis 1 of the first field with two or more dimensions
    ((T, B), (T, B, F)), else of axis 0 of the first 1-D field ((B,) lengths or labels). Each
    array is then cut along axis 1 if its axis 1 has size B, else along axis 0 if that has size
    B; scalars, strings and None pass unchanged. Anything else (nested containers, a field whose
    size does not match B) raises :class:`Unshardable`."""
    fields = _fields(batch)
    arrays = [f for f in fields if isinstance(f, np.ndarray) and f.ndim >= 1]
    if not arrays:
        raise Unshardable("a batch without arrays")
    wide = [a for a in arrays if a.ndim >= 2]
    width = wide[0].shape[1] if wide else arrays[0].shape[0]
    axes: list[int | None] = []
    for f in fields:
        if isinstance(f, np.ndarray) and f.ndim >= 1:
            if f.ndim >= 2 and f.shape[1] == width:
                axes.append(1)
            elif f.shape[0] == width:
                axes.append(0)
            else:
                raise Unshardable(f"an array of shape {f.shape} beside a batch width of {width}")
        elif isinstance(f, _PASS) or (isinstance(f, np.ndarray) and f.ndim == 0):
            axes.append(None)
        else:
            raise Unshardable(f"a field of type {type(f).__name__}")
    return width, axes


def split_batch(batch, rank: int, size: int):
    """Rank ``rank``'s share of a global ``batch`` by the time-major rule of :func:`batch_axes`:
    the contiguous block :func:`block` of the batch axis of every array, in the batch's own
    container (array, tuple, list or dict); ``None`` when the block is empty."""
    width, axes = batch_axes(batch)
    lo, hi = block(width, rank, size)
    if lo == hi:
        return None

    def cut(f, ax):
        if ax is None:
            return f
        return np.ascontiguousarray(f[lo:hi] if ax == 0 else f[:, lo:hi])

    if isinstance(batch, np.ndarray):
        return cut(batch, axes[0])
    if isinstance(batch, dict):
        return {k: cut(v, ax) for (k, v), ax in zip(batch.items(), axes)}
    out = [cut(f, ax) for f, ax in zip(batch, axes)]
    return tuple(out) if isinstance(batch, tuple) else out


def split_state(state, rank: int, size: int, axis: int = 1):
    """Rank ``rank``'s block of a recurrent state along its batch ``axis`` (the layers' states
    are (L*D, B, H), LSTM ones a tuple of two): the same blocks as :func:`split_batch` gives the
    columns of a (T, B) stream. None for None or an empty block."""
    if state is None:
        return None
    parts = state if isinstance(state, tuple) else (state,)
    lo, hi = block(parts[0].shape[axis], rank, size)
    if lo == hi:
        return None
    idx = (slice(None),) * axis + (slice(lo, hi),)
    cut = tuple(np.ascontiguousarray(p[idx]) for p in parts)
    return cut if isinstance(state, tuple) else cut[0]


def join_state(parts: list, axis: int = 1):
    """The inverse of :func:`split_state`: rank blocks (None for an empty one) joined along the
    batch ``axis`` in rank order; None when every block is None."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[i] for p in parts], axis=axis) for i in range(len(parts[0])))
    return np.concatenate(parts, axis=axis)


def rank_generators(model, seed: int, rank: int, size: int) -> int:
    """Give every ``np.random.Generator`` held by a module of ``model`` (dropout masks) its own
    stream on each rank: the i-th generator (in module order) of rank r draws from
    ``SeedSequence([seed, i]).spawn(size)[r]``. Returns how many were replaced. Without this
    every rank would draw the same masks for its different examples."""
    n = 0
    for _, m in model.named_modules():
        for name, v in list(vars(m).items()):
            if isinstance(v, np.random.Generator):
                child = np.random.SeedSequence([int(seed), n]).spawn(size)[rank]
                object.__setattr__(m, name, np.random.default_rng(child))
                n += 1
    return n


__all__ = [
    "Comm",
    "MPIComm",
    "SERIAL",
    "CollectiveError",
    "Unshardable",
    "world",
    "current",
    "launch_size",
    "launch_rank",
    "block",
    "batch_axes",
    "split_batch",
    "split_state",
    "join_state",
    "rank_generators",
]
