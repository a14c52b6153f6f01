"""The command line: ``rnnkit train TASK``, ``eval``, ``generate``, ``predict``, ``gradcheck``,
``bench memory``, ``inspect gradients``.

    rnnkit train lm --time-budget 60                 # word LM on the embedded corpus, ~1 minute
    rnnkit train lm --level char --cell lstm --corpus my.txt --out runs/char
    rnnkit generate runs/lm -n 5 --temperature 0.8
    rnnkit eval runs/lm --json
    rnnkit predict RUN INPUT ...                     # whatever the run's task predicts

``rnnkit train TASK`` builds its flags from the task's config dataclasses (``Config`` for data,
``ModelConfig``) and the shared :class:`~rnnkit.fit.FitConfig`: every task's flags look alike, and
each help text says its default once. ``--resume`` keeps the checkpoint's model, data and training
settings: a flag that differs from them is a one-line error naming it, except the few a resumed run
may change (``--epochs``, ``--time-budget``, ``--lr``, ``--eval-every``, ``--log-every``).

Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from ..errors import RnnkitError
from .parser import build_parser

__all__ = ["main", "build_parser"]


def show_library_log() -> None:
    """The library logs (never prints) what a person may want to know while a command runs,
    e.g. that numba is compiling: its INFO lines go to stderr as they are, once per process."""
    log = logging.getLogger("rnnkit")
    if not any(getattr(h, "_rnnkit_cli", False) for h in log.handlers):
        handler = _StderrHandler()
        handler._rnnkit_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to the sys.stderr of the moment (tests and MPI ranks swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    from ..parallel import launch_rank

    show_library_log()

    if launch_rank() > 0:  # under mpirun: rank 0 alone prints (errors only it saw excepted)
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            with contextlib.redirect_stderr(null):
                args = build_parser().parse_args(argv)  # the same usage errors on every rank
            return _main(args)
    return _main(build_parser().parse_args(argv))


def _main(args) -> int:
    # the command's BLAS thread limit, restored when it returns (main() may run in a process
    # that goes on: tests, a notebook)
    with _limit_blas_threads(args.threads):
        return _dispatch(args)


def _command(name: str):
    """The function that runs the command ``name``."""
    if name == "train":
        from .train import cmd_train

        return cmd_train
    if name in ("eval", "generate", "predict"):
        from .commands import cmd_eval, cmd_generate, cmd_predict

        return {"eval": cmd_eval, "generate": cmd_generate, "predict": cmd_predict}[name]
    if name == "bench":
        from .memory_bench import run

        return run
    if name == "inspect":
        from .inspect_grads import run

        return run
    from .gradcheck import cmd_gradcheck

    return cmd_gradcheck


def _dispatch(args) -> int:
    try:
        return _command(args.command)(args)
    except MemoryError as exc:
        return _fail(
            "out of memory: choose smaller sizes (--hidden-size, --embed-size, "
            "--vocab-size, --batch-size)",
            2,
            exc,
        )
    except (RnnkitError, OSError) as exc:
        msg = (
            str(exc)
            if isinstance(exc, RnnkitError)
            else f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        )
        return _fail(msg.splitlines()[0] if msg else type(exc).__name__, 2, exc)
    except KeyboardInterrupt as exc:
        return _fail("interrupted; nothing was saved", 130, exc, prefix="rnnkit: ")
    except Exception:
        from ..parallel import current

        if current().size > 1:  # a bug on one rank: say where, then end every rank (not a hang)
            import traceback

            traceback.print_exc()
            _fail("an unexpected error (traceback above)", 1, None)
        raise


def _fail(msg: str, code: int, exc, prefix: str = "rnnkit: error: ") -> int:
    """Report an error and return the exit status. Under mpirun, an error every rank raised
    together (``collective``) is printed by rank 0 and every rank exits normally; one that only
    this rank saw is printed with its rank, then every rank is ended (MPI_Abort), since the
    others would wait for it forever."""
    from ..parallel import current, launch_rank

    comm = current()
    if comm.size > 1 and not getattr(exc, "collective", False):
        print(
            f"{prefix}{msg} (rank {comm.rank} of {comm.size}; stopping every rank)",
            file=sys.stderr,
            flush=True,
        )
        comm.abort(code)
    if launch_rank() == 0:
        print(f"{prefix}{msg}", file=sys.stderr)
    return code


def _limit_blas_threads(n: int) -> contextlib.AbstractContextManager:
    """A context that pins NumPy's BLAS to n threads while the command runs (no-op without
    threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


if __name__ == "__main__":
    sys.exit(main())
