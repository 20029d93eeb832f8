"""The import graph holds the layers of docs/development.md (``penalties ← solvers ← models/callbacks/data ← cli ←
train``): the table there is the one layer map, read here.

Read statically from the source (every ``import``, also inside functions, so a lazy import cannot hide a circle):
each module may import only modules of a lower layer, or of its own package; maths layers never import Lightning;
and there is no import cycle. A new module must be given its layer in that table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

DEVELOPMENT = SRC.parent / "docs" / "development.md"


def _layer_table() -> dict[str, int]:
    """The layer map as the Development page shows it (the rows between its ``layers`` markers)."""
    text = DEVELOPMENT.read_text()
    table = text[text.index("<!-- layers:start -->") : text.index("<!-- layers:end -->")]
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([\w.]+)` \| (\d+) \|", table, flags=re.M)}


LAYERS: dict[str, int] = _layer_table()
"""Module (or package) -> layer, read from docs/development.md. Longest prefix wins; a module may import lower layers
and its own package."""

PURE = (
    "lightreg.task_kinds",
    "lightreg.penalties",
    "lightreg.weight_stats",
    "lightreg.solvers.full_batch",
    "lightreg.solvers",
    "lightreg.solvers.kkt",
    "lightreg.compact.core",
    "lightreg.lambda_path.config",
    "lightreg.lambda_path.rules",
)
"""Maths without Lightning: none of these may import ``lightning`` (``errors.warn`` may, lazily, to warn on rank 0)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """The ``LAYERS`` key that owns ``module`` (longest prefix)."""
    keys = [k for k in LAYERS if module == k or (k != "lightreg" and module.startswith(k + "."))]
    if not keys:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return max(keys, key=len)


def _imports(path: Path, module: str, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module ``path`` imports; ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {m: {i for i in _imports(p, m, set(modules)) if i in modules and i != m} for m, p in modules.items()}


def _all_imports() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {m: _imports(p, m) for m, p in modules.items()}


GRAPH = _graph()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_lower_layers(module: str) -> None:
    unit = _unit(module)
    upward = [
        target
        for target in GRAPH[module]
        if _unit(target) != unit and LAYERS[_unit(target)] >= LAYERS[unit] and not module.startswith(_unit(target))
    ]
    assert not upward, f"{module} (layer {LAYERS[unit]}) imports {upward}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith(PURE)))
def test_maths_layers_do_not_import_lightning(module: str) -> None:
    imported = _all_imports()[module]
    assert not any(i == "lightning" or i.startswith("lightning.") for i in imported), sorted(imported)


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(GRAPH):
        if start not in state:
            visit(start, [start])


def test_the_checker_sees_a_known_edge() -> None:
    assert "lightreg.penalties.penalty" in GRAPH["lightreg.penalties.elementwise"]
    assert "lightreg.callbacks.regularization" in GRAPH["lightreg.callbacks.sparsity"]


def test_pyproject_lists_every_package() -> None:
    """The explicit package list (needed by the conf/ mapping) names every package and config group, so the wheel
    holds them all (CI also trains from the built wheel)."""
    import tomllib

    root = SRC.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = {_module_name(p.parent / "__init__.py") for p in (SRC / "lightreg").rglob("__init__.py")}
    conf = root / "conf"  # groups and nested groups (hydra/launcher): package data does not recurse
    groups = {
        "lightreg.conf." + ".".join(d.relative_to(conf).parts)
        for d in conf.rglob("*")
        if d.is_dir() and not any(part.startswith("_") for part in d.relative_to(conf).parts)
    }
    assert listed == code | groups | {"lightreg.conf"}


def test_the_layer_table_is_read() -> None:
    assert LAYERS["lightreg.errors"] == 0 and LAYERS["train"] == max(LAYERS.values()) and len(LAYERS) > 20


def test_no_module_names_collide() -> None:
    """Every module has its own name: no two modules (``__init__``/``__main__`` aside) share a file name, and no module
    is named like a package (``report.py`` beside the ``report`` package)."""
    package = SRC / "lightreg"
    modules = [
        p for p in package.rglob("*.py") if p.name not in ("__init__.py", "__main__.py") and "conf" not in p.parts
    ]
    names: dict[str, list[str]] = {}
    for path in modules:
        names.setdefault(path.stem, []).append(str(path.relative_to(SRC)))
    clashes = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not clashes, clashes
    packages = {p.parent.name for p in package.rglob("__init__.py")}
    assert not packages & set(names), sorted(packages & set(names))
