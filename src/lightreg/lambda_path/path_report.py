"""What a path writes: ``path.csv`` (one row per λ), ``plots/path.png`` and a short console summary."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from rich.console import Console

from lightreg.run_folder import PATH_CSV

METRIC_ORDER = ("val/acc", "val/r2", "val/mae", "val/loss")
NAME_SEPARATOR = "; "
"""Between input names in ``path.csv``'s ``kept`` and ``entered`` columns (names such as ``mean radius`` hold spaces)."""


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One line per λ, columns in first-seen order; floats written exactly (``repr``)."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: repr(v) if isinstance(v, float) else v for c, v in row.items()})
    return Path(path)


def _metric(rows: Sequence[dict[str, Any]], monitor: str) -> str:
    return next((m for m in METRIC_ORDER if m != monitor and m in rows[0]), monitor)


def path_figure(
    rows: Sequence[dict[str, Any]], monitor: str, chosen: dict[str, int], features: Sequence[str] | None
) -> Figure:
    """Validation figures and nnz against λ (log x, the best and one-SE λ marked), with the coupled groups kept
    where the rows have them; coefficient paths for linear models (``features`` given)."""
    lambdas = [r["lambda"] for r in rows]
    panels = 3 if features else 2
    fig = Figure(figsize=(4.2 * panels, 3.6), layout="constrained")
    axes = fig.subplots(1, panels)
    metric = _metric(rows, monitor)
    ax = axes[0]
    ax.errorbar(
        lambdas,
        [r[monitor] for r in rows],
        yerr=[r[f"{monitor}_se"] for r in rows],
        marker="o",
        ms=3,
        capsize=2,
        label=monitor,
    )
    ax.set_ylabel(monitor)
    if metric != monitor:
        twin = ax.twinx()
        twin.plot(lambdas, [r[metric] for r in rows], color="tab:green", marker=".", label=metric)
        twin.set_ylabel(metric, color="tab:green")
    axes[1].plot(lambdas, [r["nnz"] for r in rows], marker="o", ms=3, label="nnz")
    axes[1].plot(lambdas, [r["features_kept"] for r in rows], marker="s", ms=3, label="inputs kept")
    if "groups_kept" in rows[0]:  # groups=coupled
        axes[1].plot(lambdas, [r["groups_kept"] for r in rows], marker="^", ms=3, label="coupled groups kept")
    axes[1].set_ylabel("count")
    axes[1].legend(fontsize="small")
    if features:
        for name in features:
            axes[2].plot(lambdas, [r[f"coef:{name}"] for r in rows], lw=1)
        axes[2].set_ylabel("coefficient" if all(r.get(f"coef:{features[0]}", 0) is not None for r in rows) else "")
        axes[2].set_title("coefficient paths", fontsize="medium")
    for a in axes:
        a.set_xscale("log")
        a.set_xlabel("λ")
        a.grid(True, alpha=0.3)
        for rule, k in chosen.items():
            a.axvline(
                lambdas[k],
                color="tab:red" if rule == "best" else "tab:purple",
                ls="--",
                lw=1,
                label=f"{rule} λ={lambdas[k]:.3g}",
            )
    axes[0].legend(fontsize="small", loc="best")
    fig.suptitle("Regularization path: warm started from λ_max (right) down to min_ratio·λ_max (left)")
    return fig


def print_summary(
    rows: Sequence[dict[str, Any]], monitor: str, chosen: dict[str, int], lam_max: float, source: str
) -> None:
    """Two lines: λ_max and the chosen models."""
    console = Console()
    console.print(f"λ_max = {lam_max:.6g} ({source}); {len(rows)} points down to {rows[-1]['lambda']:.3g}")
    for rule, k in chosen.items():
        r = rows[k]
        value = r[monitor]
        shown = r["kept"] if r["features_kept"] <= 12 else f"{r['features_kept']} inputs"
        groups = f"  groups {r['groups_kept']}  MACs {r['macs_after']:,}" if "groups_kept" in r else ""
        console.print(
            f"{rule:>6}: λ = {r['lambda']:.4g}  {monitor} {value:.4f} ± {r[f'{monitor}_se']:.4f}  nnz {r['nnz']}  "
            f"kept: {shown or '(none)'}{groups}" + (f"  → {r['checkpoint']}" if r["checkpoint"] else ""),
            soft_wrap=True,
        )
    if any(not math.isfinite(r[monitor]) for r in rows):
        console.print(f"[yellow]some points have a non-finite {monitor}")


__all__ = ["PATH_CSV", "path_figure", "print_summary", "write_csv"]
