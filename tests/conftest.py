"""Shared test setup.

* One BLAS thread (the per-step products of a recurrence are small, and on a shared 2-core
  machine two threads can collapse under load), so the suite's time is predictable.
* Optional dependencies (torch, numba, scipy, scikit-learn, mpi4py and mpirun, nltk, matplotlib,
  tqdm, threadpoolctl): a test that needs one calls :func:`need` (or carries
  ``@pytest.mark.needs("module")``). Without the package the test is skipped, saying what to
  install -- unless ``RNNKIT_REQUIRE_OPTIONAL=1`` (set by ``.ci/run``), where it fails instead, so
  that CI cannot pass with the parity tests quietly skipped.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

REQUIRE_OPTIONAL = os.environ.get("RNNKIT_REQUIRE_OPTIONAL", "") == "1"

# what to install for each optional module a test may need
INSTALL = {
    "torch": "pip install torch",
    "numba": "pip install numba (or rnnkit[fast])",
    "scipy": "pip install scipy (or rnnkit[esn])",
    "sklearn": "pip install scikit-learn (or rnnkit[classify])",
    "mpi4py": "pip install mpi4py (or rnnkit[mpi]) against an MPI library",
    "nltk": "pip install nltk",
    "matplotlib": "pip install matplotlib",
    "tqdm": "pip install tqdm",
    "threadpoolctl": "pip install threadpoolctl",
}


def missing(reason: str) -> NoReturn:
    """Skip the calling test for a missing optional dependency; fail it under
    ``RNNKIT_REQUIRE_OPTIONAL=1``."""
    if REQUIRE_OPTIONAL:
        pytest.fail(f"RNNKIT_REQUIRE_OPTIONAL=1, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # a test, or a whole module that needs it


def need(module_name: str) -> ModuleType:
    """Import and return ``module_name`` (e.g. ``"torch"``, ``"scipy.special"``), or skip the
    test (fail it under ``RNNKIT_REQUIRE_OPTIONAL=1``) when its package is not installed.

    Only a missing package counts: an installed package that raises while importing is an error
    of the test, as it should be."""
    top = module_name.split(".")[0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != top:
            raise  # the package is there but needs something else: a real error
        missing(f"{module_name} is not installed ({INSTALL.get(top, 'pip install ' + top)})")


def have(module_name: str) -> bool:
    """Whether ``module_name`` imports, for a test whose later part needs it; under
    ``RNNKIT_REQUIRE_OPTIONAL=1`` a missing package fails the test instead of returning False."""
    try:
        need(module_name)
    except pytest.skip.Exception:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(module): the test needs an optional module (skipped without it, failed under "
        "RNNKIT_REQUIRE_OPTIONAL=1)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        for name in mark.args:
            need(name)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the tests run, with NumPy's own thread count
        if REQUIRE_OPTIONAL:
            pytest.fail("RNNKIT_REQUIRE_OPTIONAL=1, but threadpoolctl is not installed", False)
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


try:  # property tests: the same examples every run, and no time limits on a busy machine
    from hypothesis import settings

    settings.register_profile("rnnkit", derandomize=True, deadline=None)
    settings.load_profile("rnnkit")
except ImportError:
    pass


def run_cli(argv, stdin: str | None = None) -> tuple[int | str | None, str, str]:
    """``rnnkit.cli.main(argv)`` in process: (exit status, stdout, stderr); argparse's SystemExit
    becomes the status; ``stdin`` (text) replaces standard input for the call."""
    import contextlib
    import io
    import sys

    from rnnkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str | None
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()
