"""Rich console tables: one run's layers, or several runs side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from lightreg.report.run_data import RunData

MAX_NAMES = 20
SHORT_LIST = 8
COMPACT_STYLE: dict[str, Any] = dict(
    title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1), collapse_padding=True
)
"""No vertical rules and tight padding, so that the tables stay whole at 80 columns."""


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}"


def _of(count: int | None, total: int | None) -> str:
    return "-" if count is None or total is None else f"{count}/{total}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f", ... (+{len(names) - MAX_NAMES})" if len(names) > MAX_NAMES else "") if names else "(none)"


def selection_summary(features: dict[str, Any]) -> str:
    """Short description of the selected inputs: their names when few, else the dropped ones ("all but ...")."""
    selected, dropped = features["selected_names"], features["dropped_names"]
    if len(selected) <= SHORT_LIST:
        return _names(selected)
    if len(dropped) <= SHORT_LIST:
        return f"all but {_names(dropped)}" if dropped else "all"
    return f"{len(selected)} (listed in sparsity.json)"


def penalties_line(sparsity: dict[str, Any]) -> str:
    """``l1: L1() lambda=0.003 mode=prox on net.fc1.weight`` for each penalty, or a note that there is none."""
    lines = [
        f"{p['name']}: {p['penalty']} lambda={p['strength']:g} mode={p['mode']} on {', '.join(p['params'])}"
        if isinstance(p.get("strength"), (int, float))
        else f"{p['name']} on {', '.join(p['params'])}"
        for p in sparsity.get("penalties", [])
    ]
    return "; ".join(lines) or "no regularization callback (monitored: weights with ndim >= 2)"


def features_lines(features: dict[str, Any] | None) -> list[str]:
    """``Selected inputs (k of d, layer): names`` and the dropped ones."""
    if not features:
        return []
    return [
        f"Selected inputs ({len(features['selected'])} of {features['count']}, columns of {features['layer']}): "
        f"{_names(features['selected_names'])}",
        f"Dropped inputs ({len(features['dropped'])}): {_names(features['dropped_names'])}",
    ]


def layer_table(run: RunData) -> Table:
    """Per monitored tensor: shape, nnz, % exact zeros, % ``|w| <= atol``, dead units, dropped inputs; then the total.
    Compact (no vertical rules, short headers) so that it stays whole at 80 columns."""
    s = run.sparsity
    table = Table(
        title=f"Sparsity at the end of {run.path}",
        **COMPACT_STYLE,
        caption=f"zeros %: exactly 0; ≤atol %: |w| ≤ {s['atol']:g}; dead: all-zero units; dropped: all-zero inputs",
        caption_justify="left",
    )
    table.add_column("layer", overflow="fold", ratio=None)
    table.add_column("shape", no_wrap=True)
    for header in ("nnz", "zeros %", "≤atol %", "dead", "dropped"):
        table.add_column(header, justify="right", no_wrap=True)
    for layer in s["layers"]:
        table.add_row(
            layer["name"],
            "x".join(map(str, layer["shape"])),
            str(layer["nnz"]),
            _pct(layer["zero_fraction"]),
            _pct(layer["near_zero_fraction"]),
            _of(layer["dead_units"], layer["units"]),
            _of(layer["dropped_inputs"], layer["inputs"]),
        )
    t = s["total"]
    table.add_section()
    table.add_row(
        "total",
        str(t["numel"]),
        str(t["nnz"]),
        _pct(t["zero_fraction"]),
        _pct(t["near_zero_fraction"]),
        _of(t["dead_units"], t["units"]),
        _of(t["dropped_inputs"], t["inputs"]),
        style="bold",
    )
    return table


def run_report(run: RunData) -> Group:
    """The layer table with the penalties above it and the selected features and final metrics below."""
    val = {k: v for k, v in run.metrics.items() if k.startswith("val/")}
    lines = [Text(f"Penalties: {penalties_line(run.sparsity)}"), layer_table(run)]
    lines += [Text(line) for line in features_lines(run.features)]
    if run.metrics.get("classes") is not None:
        lines.append(
            Text("Classes (index: label): " + ", ".join(f"{i}: {c}" for i, c in enumerate(run.metrics["classes"])))
        )
    if val:
        lines.append(Text("Final " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(val.items()))))
    return Group(*lines)


def _strengths(sparsity: dict[str, Any]) -> str:
    """``l1 0.001 prox, l2_rest 0.01 grad``: each penalty's name, λ and mode."""
    named = [
        f"{p['name']} {p['strength']:g} {p.get('mode') or ''}".rstrip().replace("group_lasso", "group lasso")
        for p in sparsity.get("penalties", [])
        if p.get("strength") is not None
    ]
    return ", ".join(named) or "-"


def compare_table(runs: Sequence[RunData]) -> Table:
    """One row per run: its label, penalties, final validation figures, sparsity and selected inputs (80 columns for
    two validation figures; dead units are in each run's own table)."""
    val_keys = sorted({k for r in runs for k in r.metrics if k.startswith("val/")})
    table = Table(title="Runs side by side", **COMPACT_STYLE)
    table.add_column("run", no_wrap=True)
    table.add_column("penalties", overflow="fold", min_width=12)
    for header in (*val_keys, "zeros %", "nnz", "inputs"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("selected", overflow="fold", min_width=8)
    for run in runs:
        t, f = run.sparsity["total"], run.features
        table.add_row(
            run.label,
            _strengths(run.sparsity),
            *(f"{run.metrics[k]:.4f}" if k in run.metrics else "-" for k in val_keys),
            _pct(t["zero_fraction"]),
            str(t["nnz"]),
            _of(len(f["selected"]), f["count"]) if f else "-",
            selection_summary(f) if f else "-",
        )
    return table
