"""Reading a finished run directory: ``sparsity.json`` (required), ``metrics.json`` and Hydra's overrides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lightreg.errors import UserError
from lightreg.run_folder import SPARSITY_FILE, read_metrics
from lightreg.weight_stats import SCHEMA_VERSION


@dataclass
class RunData:
    """What the report shows of one run. ``label`` names it in comparisons (see :func:`label_runs`)."""

    path: Path
    sparsity: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.sparsity.get("history", [])

    @property
    def features(self) -> dict[str, Any] | None:
        return self.sparsity.get("features")


def load_run(path: str | Path) -> RunData:
    """Load the run in ``path``; a missing or foreign ``sparsity.json`` is a :class:`UserError` saying how to get one."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{str(path)!r} is not a directory; pass a run directory such as outputs/<date>/<time>")
    file = path / SPARSITY_FILE
    if not file.is_file():
        raise UserError(
            f"no {SPARSITY_FILE} in {str(path)!r}: it is written at the end of a run that has a penalty "
            "(`python -m train +penalty=l1 lambda=1e-3`) or the monitor (`callbacks=sparsity`)"
        )
    try:
        sparsity = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{file} is not valid JSON ({exc}); the run may have been interrupted while writing it"
        ) from None
    if sparsity.get("version") != SCHEMA_VERSION:
        raise UserError(f"{file} has format version {sparsity.get('version')!r}, this lightreg reads {SCHEMA_VERSION}")
    metrics = read_metrics(path)
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in yaml.safe_load(overrides_file.read_text()) or []] if overrides_file.is_file() else []
    return RunData(path=path, sparsity=sparsity, metrics=metrics, overrides=overrides, label=path.name)


def label_runs(runs: Sequence[RunData]) -> None:
    """Label each run by the command-line overrides that differ between the runs (e.g. ``lambda=0.01``), ignoring
    ``hydra.*`` ones; runs with the same overrides fall back to their directory names."""

    def relevant(run: RunData) -> list[str]:
        return [o for o in run.overrides if not o.lstrip("+~").startswith("hydra.")]

    common = set.intersection(*(set(relevant(r)) for r in runs)) if runs else set()
    for run in runs:
        differing = [o for o in relevant(run) if o not in common]
        run.label = " ".join(differing) or run.path.name
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        for i, run in enumerate(runs):
            run.label = f"{i}: {run.label} ({run.path.name})"
