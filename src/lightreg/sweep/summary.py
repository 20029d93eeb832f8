"""A sweep folder as a table: one row per job (its overrides, status and final ``metrics.json`` figures).

Pure reading and writing, no Hydra and no Lightning: :func:`collect` reads ``<sweep>/<job>/.hydra/overrides.yaml``
and ``<sweep>/<job>/metrics.json``; :func:`write_csv`, :func:`rich_table` and :func:`lambda_figure` present them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from omegaconf import OmegaConf
from rich.table import Table

from lightreg import run_folder

SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"
VAL_METRICS = ("val/acc", "val/r2", "val/mae")
"""The validation metric shown beside the monitored one: the first of these a job wrote."""
SHOWN = ("sparsity/nnz", "features/selected", "fit_seconds")
"""Further figures on the console (``summary.csv`` has every figure)."""


@dataclass
class JobRow:
    """One job of a sweep: its folder, its overrides (``key -> value`` as typed) and its final figures."""

    job: str
    path: Path
    overrides: dict[str, str]
    typed: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.metrics.get("status", "failed"))

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def value(self, key: str) -> float | None:
        v = self.metrics.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _job_key(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 62, path.name)


def _split_override(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.lstrip("+~"), value


def collect(sweep_dir: str | Path) -> list[JobRow]:
    """Every job folder of ``sweep_dir`` (those with ``.hydra/overrides.yaml``), in job order. A job without a
    ``metrics.json`` (it failed before training) gets ``status: failed``."""
    rows = []
    for folder in sorted(
        (p for p in Path(sweep_dir).iterdir() if (p / ".hydra" / "overrides.yaml").is_file()), key=_job_key
    ):
        typed = [str(o) for o in OmegaConf.load(folder / ".hydra" / "overrides.yaml")]
        metrics = run_folder.read_metrics(folder) or {"status": "failed"}
        rows.append(JobRow(folder.name, folder, dict(_split_override(o) for o in typed), typed, metrics))
    return rows


def swept_keys(rows: Sequence[JobRow]) -> list[str]:
    """Override keys whose value differs between jobs (in first-seen order)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row.overrides if k not in keys]
    return [k for k in keys if len({row.overrides.get(k) for row in rows}) > 1]


def common_overrides(rows: Sequence[JobRow]) -> list[str]:
    """The overrides every job shares, as typed."""
    if not rows:
        return []
    swept = set(swept_keys(rows))
    return [o for o in rows[0].typed if _split_override(o)[0] not in swept]


def val_metric(rows: Sequence[JobRow]) -> str | None:
    """The task's validation metric (``val/acc`` for classification, ``val/r2`` for regression), if any job has it."""
    return next((m for m in VAL_METRICS if any(r.value(m) is not None for r in rows)), None)


def sort_rows(rows: Sequence[JobRow], monitor: str, mode: str) -> list[JobRow]:
    """Best ``monitor`` first (``mode`` min or max); jobs without the figure (failed ones) last, in job order."""
    sign = 1.0 if mode == "min" else -1.0

    def key(row: JobRow) -> tuple[int, float, tuple[int, str]]:
        v = row.value(monitor)
        return (0, sign * v, _job_key(row.path)) if v is not None and math.isfinite(v) else (1, 0.0, _job_key(row.path))

    return sorted(rows, key=key)


def columns(rows: Sequence[JobRow], monitor: str) -> list[str]:
    """Metric columns of the table: the monitored one, the validation metric, then sparsity and run facts."""
    wanted = [monitor, val_metric(rows), "val/loss", *SHOWN]
    out: list[str] = []
    for name in wanted:
        if name and name not in out and any(r.value(name) is not None for r in rows):
            out.append(name)
    return out


def write_csv(rows: Sequence[JobRow], path: str | Path) -> Path:
    """One line per job: ``job, status``, each swept key, every numeric figure of any job, the error if any, and
    all overrides as typed."""
    keys = swept_keys(rows)
    figures = sorted({k for r in rows for k in r.metrics if r.value(k) is not None})
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["job", "status", *keys, *figures, "error", "overrides"])
        for r in rows:
            values = [r.value(k) for k in figures]
            writer.writerow(
                [
                    r.job,
                    r.status,
                    *(r.overrides.get(k, "") for k in keys),
                    *("" if v is None else repr(v) for v in values),
                    r.metrics.get("error", ""),
                    " ".join(r.typed),
                ]
            )
    return path


def _short(name: str) -> str:
    return {"sparsity/nnz": "nnz", "features/selected": "inputs", "fit_seconds": "s"}.get(name, name)


def _short_value(text: str) -> str:
    """An override value as typed, numbers longer than 6 characters to 4 significant digits (Optuna's draws)."""
    try:
        return f"{float(text):.4g}" if len(text) > 6 else text
    except ValueError:
        return text


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name in ("sparsity/nnz", "features/selected"):
        return f"{value:.0f}"
    if name == "fit_seconds":
        return f"{value:.1f}"
    return f"{value:.4g}"


def rich_table(rows: Sequence[JobRow], monitor: str, mode: str, title: str) -> Table:
    """The console table, best job first; narrow enough for 80 columns with two or three swept keys."""
    keys, metrics = swept_keys(rows), columns(rows, monitor)
    table = Table(title=title, caption=" ".join(common_overrides(rows)) or None, caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    for k in keys:
        table.add_column(k, overflow="fold")
    table.add_column("status", no_wrap=True)
    for m in metrics:
        arrow = ("↓" if mode == "min" else "↑") if m == monitor else ""
        table.add_column(_short(m) + arrow, justify="right", no_wrap=True)
    for r in sort_rows(rows, monitor, mode):
        status = {"completed": "ok"}.get(r.status, r.status)
        table.add_row(
            r.job,
            *(_short_value(r.overrides.get(k, "")) for k in keys),
            status,
            *(_fmt(m, r.value(m)) for m in metrics),
            style="red" if r.failed else None,
        )
    return table


def lambda_figure(rows: Sequence[JobRow], lam_key: str = "lambda") -> Figure | None:
    """Validation metric and number of non-zero weights against λ (log axis), one line per setting of the other
    swept keys. ``None`` when λ is not swept or fewer than two jobs have a positive λ and figures."""
    if lam_key not in swept_keys(rows):
        return None
    others = [k for k in swept_keys(rows) if k != lam_key]
    metric = val_metric(rows) or "val/loss"
    groups: dict[str, list[tuple[float, float | None, float | None]]] = {}
    for r in rows:
        try:
            lam = float(r.overrides[lam_key])
        except (KeyError, ValueError):
            continue
        if r.failed or lam <= 0:
            continue
        label = " ".join(f"{k}={r.overrides.get(k, '')}" for k in others) or "sweep"
        groups.setdefault(label, []).append((lam, r.value(metric), r.value("sparsity/nnz")))
    if sum(len(g) for g in groups.values()) < 2:
        return None
    if len(groups) > 1 and max(len(g) for g in groups.values()) == 1:  # e.g. Optuna trials: every setting is new
        groups = {"trials": [p for g in groups.values() for p in g]}
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax_metric, ax_nnz = fig.subplots(1, 2)
    for label, points in groups.items():
        points.sort()
        lams = [p[0] for p in points]
        ax_metric.plot(lams, [p[1] for p in points], marker="o", label=label)
        ax_nnz.plot(lams, [p[2] for p in points], marker="o", label=label)
    for ax, name in ((ax_metric, metric), (ax_nnz, "non-zero penalized weights")):
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    if len(groups) > 1:
        ax_nnz.legend(fontsize="small")
    fig.suptitle(f"{metric} and nnz against λ")
    return fig


__all__ = [
    "SUMMARY_CSV",
    "SUMMARY_PNG",
    "JobRow",
    "collect",
    "columns",
    "common_overrides",
    "lambda_figure",
    "rich_table",
    "sort_rows",
    "swept_keys",
    "val_metric",
    "write_csv",
]
