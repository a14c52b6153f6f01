"""The package's layers, written once, and the rules they keep.

Read bottom-up, each layer imports only from itself and the layers below it, and no set of modules
imports each other in a circle. Every import counts, those made inside functions included (they
run too: an import moved into a function hides a dependency, it does not remove it). README's
"Layout" section is checked against the same list, and so are the rules that keep the library
quiet: printing and argparse belong to the command-line application alone.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rnnkit"

# (layer, the modules and packages in it), bottom first. A module belongs to the layer of the
# longest prefix that names it; "rnnkit" alone is the package root (rnnkit/__init__.py).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "rnnkit.errors",
            "rnnkit.module",
            "rnnkit.kernels",
            "rnnkit.functional",
            "rnnkit.optim",
            "rnnkit.checkpoint",
            "rnnkit.gradcheck",
        ),
    ),
    ("data", ("rnnkit.data",)),
    ("layers", ("rnnkit.layers", "rnnkit")),
    ("models", ("rnnkit.models", "rnnkit.trees", "rnnkit.reservoir")),
    ("training", ("rnnkit.parallel", "rnnkit.rundir", "rnnkit.training", "rnnkit.fit")),
    ("tasks", ("rnnkit.tasks", "rnnkit.train")),
    ("app", ("rnnkit.app", "rnnkit.cli", "rnnkit.__main__")),
]

# functions over 80 lines allowed to stay: data cleaning, a flat list of cases read top to bottom
LONG_FUNCTIONS_ALLOWED = {
    ("rnnkit.data.bigcorpus", "encode_to_memmap"),
    ("rnnkit.data.corpus", "_clean_docstring"),
}


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package``."""
    out = {}
    for p in sorted(package.rglob("*.py")):
        parts = list(p.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _target(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` -- code that runs only when the module is the program."""
    t = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
    )


def library_nodes(path: Path):
    """Every AST node of a module, functions included, except its ``__main__`` block: the
    command a ``python -m`` module hands to the application is not a dependency of the library."""
    tree = ast.parse(path.read_text(), str(path))
    for stmt in tree.body:
        if not _is_main_guard(stmt):
            yield from ast.walk(stmt)


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports, anywhere in its body (functions included)."""
    files = module_files(package)
    top = package.name
    graph: dict[str, set[str]] = {m: set() for m in files}
    for m, path in files.items():
        is_package = path.name == "__init__.py"
        for node in library_nodes(path):
            if isinstance(node, ast.ImportFrom):
                t = _target(m, is_package, node)
                for alias in node.names:
                    full = f"{t}.{alias.name}"
                    graph[m].add(full if full in files else t)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names)
        graph[m] = {t for t in graph[m] if (t == top or t.startswith(top + ".")) and t != m}
    return graph


def layer_of(module: str, layers=LAYERS) -> int:
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            matches = (
                module == p if p.count(".") == 0 else module == p or module.startswith(p + ".")
            )
            if matches and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    out = []
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            if layer_of(t, layers) > layer_of(m, layers):
                out.append(f"{m} ({layers[layer_of(m, layers)][0]}) imports {t}")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next((w for w in it if w in graph), None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return found


GRAPH = import_graph(PACKAGE)


def test_every_module_has_a_layer():
    assert not [m for m in GRAPH if layer_of(m) < 0]


def test_imports_only_go_down():
    assert upward_imports(GRAPH) == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / "pkg" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "pkg"


def test_the_checks_see_imports_inside_functions(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "def f():\n    from .high import g\n",
            "high.py": "from . import low\n",
            "sub/__init__.py": "from .a import x\n",
            "sub/a.py": "from . import b\nx = 1\n",
            "sub/b.py": "def h():\n    from pkg.sub import a\n",
            "main.py": "if __name__ == '__main__':\n    from pkg import high\n",
        },
    )
    graph = import_graph(pkg)
    layers = [("bottom", ("pkg.low", "pkg.sub", "pkg.main")), ("top", ("pkg.high", "pkg"))]
    assert upward_imports(graph, layers) == ["pkg.low (bottom) imports pkg.high"]
    assert cycles(graph) == [["pkg.high", "pkg.low"], ["pkg.sub.a", "pkg.sub.b"]]


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_functions_a_reader_can_hold():
    long = {
        (m, f.name)
        for m, p in module_files(PACKAGE).items()
        for f in _functions(p)
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > 80
    }
    assert long <= LONG_FUNCTIONS_ALLOWED, sorted(long - LONG_FUNCTIONS_ALLOWED)


@pytest.mark.parametrize("name", ["print", "argparse"])
def test_only_the_application_prints_or_parses_arguments(name):
    app = next(i for i, (n, _) in enumerate(LAYERS) if n == "app")
    found = []
    for m, p in module_files(PACKAGE).items():
        if layer_of(m) == app:
            continue
        for node in library_nodes(p):
            if name == "print" and isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name) and node.func.id == "print":
                    found.append(f"{m}:{node.lineno}")
            elif name == "argparse" and isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                if "argparse" in mods:
                    found.append(f"{m}:{node.lineno}")
    assert found == []


def _readme_layout() -> dict[str, set[str]]:
    """README's Layout block: one line per layer, ``  NAME  path path ...`` (continuation lines
    that start deeper belong to the line above)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Layout\n.*?```\n(.*?)```", text, re.S | re.M)
    assert block, "README.md has no Layout section with a code block"
    layers: dict[str, set[str]] = {}
    current = None
    for line in block.group(1).splitlines():
        m = re.match(r"^  (\w+)\s{2,}(.*)$", line)
        if m and m.group(1) in dict(LAYERS):
            current = m.group(1)
            layers[current] = set()
            rest = m.group(2)
        elif current and line.startswith("    "):
            rest = line
        else:
            current = None
            continue
        layers[current].update(re.findall(r"(?<![\w.])([a-z_]+(?:/|\.py))", rest))
    return layers


def _as_paths(prefixes: tuple[str, ...]) -> set[str]:
    out = set()
    for p in prefixes:
        if p == "rnnkit":
            out.add("__init__.py")
            continue
        rel = p.split(".", 1)[1].replace(".", "/")
        out.add(rel + "/" if (PACKAGE / rel).is_dir() else rel + ".py")
    return out


def test_readme_layout_is_the_layer_order():
    layout = _readme_layout()
    assert list(layout) == [n for n, _ in LAYERS], "README's Layout lists the layers in order"
    for name, prefixes in LAYERS:
        present = {p for p in _as_paths(prefixes) if (PACKAGE / p).exists()}
        named = {p for p in layout[name] if (PACKAGE / p).exists()}
        assert named == present, f"README's {name} line: {sorted(present ^ named)}"
