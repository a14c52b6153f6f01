"""The optional-dependency gate of tests/conftest.py: a missing package skips a test, or fails it
under RNNKIT_REQUIRE_OPTIONAL=1 (what CI sets); an installed package that fails to import is an
error, never a skip."""

from __future__ import annotations

import sys

import conftest
import pytest


def test_need_returns_the_module():
    assert conftest.need("numpy.linalg") is sys.modules["numpy.linalg"]


def test_missing_package_skips_or_fails(monkeypatch):
    monkeypatch.setattr(conftest, "REQUIRE_OPTIONAL", False)
    with pytest.raises(pytest.skip.Exception, match=r"rnnkit_no_such_pkg\.sub is not installed"):
        conftest.need("rnnkit_no_such_pkg.sub")
    assert conftest.have("rnnkit_no_such_pkg") is False
    monkeypatch.setattr(conftest, "REQUIRE_OPTIONAL", True)
    with pytest.raises(pytest.fail.Exception, match="RNNKIT_REQUIRE_OPTIONAL=1"):
        conftest.need("rnnkit_no_such_pkg")
    with pytest.raises(pytest.fail.Exception, match="RNNKIT_REQUIRE_OPTIONAL=1"):
        conftest.have("rnnkit_no_such_pkg")


def test_a_broken_installed_package_is_an_error_not_a_skip(tmp_path, monkeypatch):
    pkg = tmp_path / "rnnkit_fake_broken_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import rnnkit_absent_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(conftest, "REQUIRE_OPTIONAL", False)
    with pytest.raises(ModuleNotFoundError, match="rnnkit_absent_dependency_xyz"):
        conftest.need("rnnkit_fake_broken_pkg")
    sys.modules.pop("rnnkit_fake_broken_pkg", None)
