"""The end-of-run sparsity report: a console table, PNG plots, and side-by-side comparisons of runs.

Everything is rebuilt from a run directory's ``sparsity.json`` (written by
:class:`~lightreg.callbacks.SparsityMonitor`), ``metrics.json`` and Hydra's ``.hydra/overrides.yaml``::

    python -m lightreg.report RUN_DIR                      # table + RUN_DIR/plots/*.png
    python -m lightreg.report RUN_DIR --compare RUN_DIR2   # + a comparison table and RUN_DIR/compare/*.png
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from lightreg.report import plots, table
from lightreg.report.run_data import RunData, label_runs, load_run

PLOTS_DIR = "plots"
COMPARE_DIR = "compare"


def _console() -> Console:
    """The terminal's console; 80 columns when writing to a file or pipe (train.log, CI logs)."""
    console = Console()
    return console if console.is_terminal else Console(width=80)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, console: Console | None = None) -> list[Path]:
    """Print the run's sparsity table and save its four plots (default folder ``RUN_DIR/plots``); returns the PNGs."""
    run = load_run(run_dir)
    (console or _console()).print(table.run_report(run))
    folder = Path(out_dir) if out_dir is not None else run.path / PLOTS_DIR
    return [plots.save(make(run), folder / f"{name}.png") for name, make in plots.RUN_FIGURES.items()]


def compare_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path | None = None, console: Console | None = None
) -> list[Path]:
    """Print one row per run and save the comparison plots (default folder ``<first run>/compare``)."""
    runs = [load_run(d) for d in run_dirs]
    label_runs(runs)
    (console or _console()).print(table.compare_table(runs))
    folder = Path(out_dir) if out_dir is not None else runs[0].path / COMPARE_DIR
    return [plots.save(make(runs), folder / f"{name}.png") for name, make in plots.COMPARE_FIGURES.items()]


__all__ = ["RunData", "compare_runs", "label_runs", "load_run", "write_report"]
