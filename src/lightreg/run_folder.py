"""The run folder: every file name a run writes, the one ``metrics.json`` writer and the filter of final figures.

Plain Python (no torch, no Lightning), so the CLI, the λ path, the sweep callback, the callbacks and the report all
name the same files. A run folder holds::

    metrics.json            final figures and run facts (write_metrics / read_metrics)
    sparsity.json           the sparsity monitor's summary (SPARSITY_FILE)
    path.csv                one row per λ of a path (PATH_CSV)
    compact.json, .pt, .md  the compaction report, the compacted model and its table (COMPACT_*)
    checkpoints/            CHECKPOINTS: last.ckpt, best.ckpt, lambda_XX.ckpt, best/one_se of a path
    plots/                  PLOTS: the report's and the path's figures
    train.log               the console of the run
    .hydra/                 Hydra's composed config and overrides
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"
SPARSITY_FILE = "sparsity.json"
PATH_CSV = "path.csv"
COMPACT_REPORT = "compact.json"
COMPACT_MODEL = "compact.pt"
COMPACT_TABLE = "compact.md"
CHECKPOINTS = "checkpoints"
PLOTS = "plots"
LOG_FILE = "train.log"


def write_metrics(run_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics`` to ``<run_dir>/metrics.json`` (sorted keys, indented) atomically: a reader never sees half a
    file, and a crash while writing leaves the previous one. Returns the file's path."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / METRICS_FILE
    partial = target.with_name(f".{METRICS_FILE}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n")
    partial.replace(target)
    return target


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``<run_dir>/metrics.json`` as a dict; ``{}`` when the run wrote none."""
    file = Path(run_dir) / METRICS_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def is_final_figure(name: str, prefixes: tuple[str, ...] = ()) -> bool:
    """Whether a logged figure belongs in an epoch-level summary: not a per-step value (``*_step``), not one
    penalty's share (``train/penalty/<name>``), and, when ``prefixes`` are given, starting with one of them."""
    return not name.endswith("_step") and "/penalty/" not in name and (not prefixes or name.startswith(prefixes))


def final_figures(logged: Mapping[str, Any], prefixes: tuple[str, ...] = ()) -> dict[str, float]:
    """The epoch-level scalar figures of a Trainer's ``callback_metrics`` (tensors or numbers) as floats, chosen by
    :func:`is_final_figure`."""
    figures = {}
    for name, value in logged.items():
        if not is_final_figure(name, prefixes):
            continue
        if hasattr(value, "numel"):
            if value.numel() != 1:
                continue
            value = value.item()
        figures[name] = float(value)
    return figures


__all__ = [
    "CHECKPOINTS",
    "COMPACT_MODEL",
    "COMPACT_REPORT",
    "COMPACT_TABLE",
    "LOG_FILE",
    "METRICS_FILE",
    "PATH_CSV",
    "PLOTS",
    "SPARSITY_FILE",
    "final_figures",
    "is_final_figure",
    "read_metrics",
    "write_metrics",
]
