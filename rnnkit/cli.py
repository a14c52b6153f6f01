"""The ``rnnkit`` console entry point (``pyproject.toml``): the command line lives in
:mod:`rnnkit.app.cli`; this module keeps ``rnnkit.cli:main`` and ``rnnkit.cli.build_parser``."""

from __future__ import annotations

from .app.cli import build_parser, main

__all__ = ["main", "build_parser"]
