"""Shared test setup: one BLAS thread (the per-step products of a recurrence are small, and on a
shared 2-core machine two threads can collapse under load), so the suite's time is predictable."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
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
