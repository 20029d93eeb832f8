"""The import graph holds its layers: ``penalties ← optim/full_batch/kkt ← callbacks/models ← pipeline ← train``.

Read statically from the source (every ``import``, also inside functions, so a lazy import cannot hide a circle):
each module may import only modules of a lower layer, or of its own package; maths layers never import Lightning;
and there is no import cycle. A new module must be given its layer in ``LAYERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: dict[str, int] = {
    "lightreg.errors": 0,
    "lightreg.task_kinds": 1,  # the names of the prediction tasks
    "lightreg.run_folder": 0,  # every file name of a run folder, the one metrics.json writer
    "lightreg.penalties": 1,
    "lightreg.weight_stats": 1,  # sparsity figures of weight tensors
    "lightreg.solvers.threads": 1,  # intra-op threads of a CPU run (torch only)
    "lightreg.models.logging_steps": 1,  # when a step's figures reach a logger (duck-typed trainer, no Lightning)
    "lightreg.models.progress_line": 1,  # the epoch line a model prints
    "lightreg.solvers.full_batch": 2,  # the objective on the whole training set, under the solvers
    "lightreg.solvers": 3,  # prox steps, kernels, FISTA, the full-batch finish, KKT figures
    "lightreg.compact": 3,  # pure torch: removes dead units, filters and inputs of a module
    "lightreg.lambda_path": 3,  # grid, checks, selection rules, path.csv/plot: no Lightning
    "lightreg.data": 4,
    "lightreg.models": 4,
    "lightreg.callbacks": 4,
    "lightreg.report": 4,
    "lightreg.sweep": 4,  # a Hydra callback that reads the jobs' metrics.json
    "lightreg.cli.quiet": 5,  # Lightning's messages a user cannot act on
    "lightreg.cli.console": 5,  # train.log, the final block: plain text
    "lightreg.cli.checks": 5,  # config checks before Lightning is imported
    "lightreg.cli.build": 6,  # config node -> object, one-line errors for the user's values
    "lightreg.cli.guard": 7,  # resume checks and the divergence guard callback
    "lightreg.compact.run": 6,  # compaction of a run folder (checkpoint + Hydra config)
    "lightreg.cli.pipeline": 8,  # the one run pipeline: data, model, callbacks, loggers, trainer; fit; metrics
    "lightreg.lambda_path.runner": 9,  # a λ path: a loop over the pipeline
    "lightreg.sklearn": 9,  # estimators on the pipeline's pieces
    "lightreg.compact.__main__": 9,  # python -m lightreg.compact RUN_DIR
    "lightreg.cli.job": 10,  # one CLI job: checks, resume guard, path or run, train.log, one-line errors
    "lightreg.cli": 10,  # the package's docstring
    "lightreg": 11,  # the package facade (lazy ``lightreg.kkt_violation``), matched exactly
    "train": 12,
}
"""Module (or package) -> layer. Longest prefix wins; a module may import lower layers and its own package."""

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
    assert "lightreg.penalties.base" in GRAPH["lightreg.penalties.elementwise"]
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
