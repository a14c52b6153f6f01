"""Every cell the package has is registered by ``import rnnkit`` (no import side effect elsewhere),
checked by every property of the conformance suite, and listed in the README; the README's
equation table names functions that exist and compute something."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ["rnn", "lstm", "gru", "leaky", "deep", "leaky-fixed", "skip", "clockwork"]


def _fresh(code: str) -> str:
    """stdout of ``code`` in a fresh interpreter run from the repository root."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_import_rnnkit_registers_every_cell():
    code = (
        "import json, rnnkit\n"
        "layer = rnnkit.make_recurrent('skip', 4, 4)\n"
        "print(json.dumps([rnnkit.layers.cell_names(), sorted(__import__('sys').modules)]))"
    )
    names, modules = json.loads(_fresh(code))
    assert names == BUILTIN
    assert "rnnkit.tasks.memory" not in modules and "numba" not in modules


def test_registry_imports_no_cell_module():
    src = (ROOT / "rnnkit" / "layers" / "registry.py").read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from|import) +(\S+)", src, re.M)
    cell_modules = ("rnn", "lstm", "gru", "extra_cells", "time_cells", "steps")
    assert not [m for m in imports if m.lstrip(".").split(".")[-1] in cell_modules]


def test_conformance_suite_covers_every_registered_cell():
    """Each property test of tests/test_cell_conformance.py is parametrised over ``cell`` with
    exactly the cells that ``import rnnkit`` registers (the module imported fresh, so no cell a
    test registered on the side counts)."""
    code = (
        "import importlib.util, json, rnnkit\n"
        "spec = importlib.util.spec_from_file_location('c', 'tests/test_cell_conformance.py')\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "out = {}\n"
        "for n, f in vars(m).items():\n"
        "    if n.startswith('test_') and callable(f):\n"
        "        marks = getattr(f, 'pytestmark', [])\n"
        "        ps = [mk.args for mk in marks if mk.name == 'parametrize']\n"
        "        out[n] = [list(a[1]) for a in ps if a[0] == 'cell']\n"
        "print(json.dumps([rnnkit.layers.cell_names(), list(m.CELLS), out]))"
    )
    names, cells, tests = json.loads(_fresh(code))
    assert cells == names == BUILTIN
    assert len(tests) >= 8
    for name, params in tests.items():
        assert params == [names], f"{name} is not parametrised over every registered cell"


def test_readme_lists_every_registered_cell():
    import rnnkit

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [n for n in rnnkit.layers.cell_names() if f"`{n}`" not in readme]
    assert not missing, f"README does not list {missing}"


def _equation_rows() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The equations and where they are computed", 1)[1].split("\n## ")[0]
    return [ln for ln in section.splitlines() if ln.startswith("|") and "`rnnkit/" in ln]


def test_equation_table_names_functions_that_exist():
    rows = _equation_rows()
    assert len(rows) >= 10
    named = 0
    for row in rows:
        cell = row.rstrip(" |").rsplit("|", 1)[1]
        for path, inner in re.findall(r"`(rnnkit/[\w/]+\.py)`(?: \(([^)]*)\))?", cell):
            assert (ROOT / path).is_file(), path
            module = importlib.import_module(path[:-3].replace("/", "."))
            for name in re.findall(r"`([\w.]+)`", inner):
                obj = module
                for part in name.split("."):
                    obj = getattr(obj, part, None)
                    assert obj is not None, f"{path} has no {name}"
                assert callable(obj), f"{path}: {name} is not a function"
                body = inspect.getsource(obj)
                assert "raise NotImplementedError" not in body, f"{path}: {name} is a stub"
                named += 1
    assert named >= 15
