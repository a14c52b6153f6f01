"""Sphinx configuration: the API reference (autodoc + napoleon, from the docstrings) and the
Markdown pages of docs/ (myst-parser) as one site.

Build it (warnings are errors, as in CI) from the repository root::

    pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)  # the package of this checkout, installed or not

import rnnkit  # noqa: E402

project = "rnnkit"
author = "the rnnkit authors"
copyright = "the rnnkit authors"
version = release = rnnkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    # being written by other engineers right now: added to the site once they land
]

# autodoc: signatures as written (no imports of optional packages happen at import time)
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# myst: headings become link targets, ``$...$`` stays literal text (the pages write equations
# in plain text)
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"rnnkit {release}"
