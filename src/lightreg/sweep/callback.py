"""The Hydra callback that ends every multirun with a summary of its jobs (``hydra.callbacks`` in
``conf/hydra/default.yaml``).

After each job: a failed job (an exception in ``train``) is recorded in its ``metrics.json`` (``status: failed``,
``error``) and the sweep goes on; Hydra's own sweeper would stop at it and never reach the summary. After the last
job: ``<sweep dir>/summary.csv``, a rich table on the console (best job first by the monitored metric) and, when
``lambda`` is swept, ``<sweep dir>/summary.png``. The process then exits with 2 if jobs failed on bad input only,
1 if any crashed, so a sweep with failures never looks green.

Imports stay light (no Lightning, matplotlib or rich until the sweep ends): Hydra builds this callback for every run.
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from typing_extensions import override

from lightreg import run_folder
from lightreg.errors import UserError, report_user_error

log = logging.getLogger(__name__)
DEFAULT_MONITOR = ("val/loss", "min")


class SweepSummary(Callback):
    """Summarize a Hydra multirun in its sweep folder.

    Args:
        monitor: metric that orders the table; ``None`` = the ``callbacks.model_checkpoint`` monitor of the jobs'
            config, else ``val/loss``.
        mode: ``min`` or ``max`` for ``monitor`` (``None``: the checkpoint's mode, else ``min``).
        plot: save ``summary.png`` (validation metric and nnz against λ) when ``lambda`` is swept.
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None, plot: bool = True) -> None:
        if mode not in (None, "min", "max"):
            raise UserError(f"hydra.callbacks.sweep_summary.mode must be min or max, got {mode!r}")
        self.monitor, self.mode, self.plot = monitor, mode, plot

    # -- one job -------------------------------------------------------------------------------------------------
    @override
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or job_return.status != JobStatus.FAILED:
            return
        # the job's exception; the public getter re-raises it after printing Hydra's own banner
        exc = getattr(job_return, "_return_value", None)
        self._record_failure(config, exc if isinstance(exc, BaseException) else RuntimeError(repr(exc)))
        # the sweep goes on; a NaN result is a failed trial for Optuna too
        job_return.status = JobStatus.COMPLETED
        job_return.return_value = math.nan

    def _record_failure(self, config: DictConfig, exc: BaseException) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        overrides = " ".join(config.hydra.overrides.task)
        user = isinstance(exc, UserError)
        if user:
            report_user_error(exc, f"job {config.hydra.job.num} ({overrides})")
        else:
            print(f"lightreg: job {config.hydra.job.num} ({overrides}) crashed:", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)
        metrics = run_folder.read_metrics(job_dir)
        first_line = (str(exc).splitlines() or [""])[0]
        metrics.update(
            status="failed", error=f"{type(exc).__name__}: {first_line}", error_kind="user" if user else "crash"
        )
        run_folder.write_metrics(job_dir, metrics)

    # -- the whole sweep -----------------------------------------------------------------------------------------
    def _monitor(self, config: DictConfig) -> tuple[str, str]:
        checkpoint = (config.get("callbacks") or {}).get("model_checkpoint") or {}
        monitor = self.monitor or checkpoint.get("monitor") or DEFAULT_MONITOR[0]
        mode = (
            self.mode
            or (checkpoint.get("mode") if checkpoint.get("monitor") == monitor else None)
            or DEFAULT_MONITOR[1]
        )
        return monitor, mode

    @override
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.console import Console

        from lightreg.sweep import summary

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summary.collect(sweep_dir)
        if not rows:
            return
        monitor, mode = self._monitor(config)
        csv_path = summary.write_csv(summary.sort_rows(rows, monitor, mode), sweep_dir / summary.SUMMARY_CSV)
        console = Console()
        console.print(summary.rich_table(rows, monitor, mode, title=f"Sweep {sweep_dir} ({len(rows)} jobs)"))
        written = [csv_path]
        figure = summary.lambda_figure(rows) if self.plot else None
        if figure is not None:
            figure.savefig(sweep_dir / summary.SUMMARY_PNG, dpi=110)
            written.append(sweep_dir / summary.SUMMARY_PNG)
        console.print("Summary: " + ", ".join(str(p) for p in written), soft_wrap=True)
        failed = [r for r in rows if r.failed]
        if failed:
            user_only = all(r.metrics.get("error_kind") == "user" for r in failed)
            print(
                f"lightreg: error: {len(failed)} of {len(rows)} jobs failed (jobs {', '.join(r.job for r in failed)}; "
                f"see {csv_path.name})",
                file=sys.stderr,
            )
            sys.exit(2 if user_only else 1)


__all__ = ["SweepSummary"]
