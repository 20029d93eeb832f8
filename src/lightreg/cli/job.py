"""One CLI job from start to end: checks, resume guard, training, final block, all of it copied into train.log."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lightreg import run_folder
from lightreg.cli import console
from lightreg.cli.checks import check_config
from lightreg.errors import UserError, report_user_error


def run(cfg: DictConfig) -> dict:
    """Train as ``cfg`` says: a λ path (``+path=...``, :func:`lightreg.lambda_path.runner.train_path`, a loop over
    the run pipeline) or one run (:func:`lightreg.cli.pipeline.train`); returns what ``metrics.json`` holds. The
    config is checked first (:func:`~lightreg.cli.checks.check_config`): this is the function to call on a composed
    config from Python (a notebook, a test)."""
    check_config(cfg)
    if cfg.get("path") is not None:
        from lightreg.lambda_path.runner import train_path

        return train_path(cfg)
    from lightreg.cli.pipeline import train

    return train(cfg)


EXIT_INTERRUPTED = 130
"""The exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell's convention)."""


def interrupted(out_dir: str) -> int:
    """Say in one line that the run was interrupted and where its checkpoint is; ``metrics.json`` gets
    ``status: interrupted`` (kept if training wrote it already). Returns :data:`EXIT_INTERRUPTED`."""
    metrics = run_folder.read_metrics(out_dir)
    metrics["status"] = "interrupted"
    run_folder.write_metrics(out_dir, metrics)
    last = Path(out_dir) / run_folder.CHECKPOINTS / "last.ckpt"
    where = f"; {last} holds the model where it stopped (resume: ckpt_path={last})" if last.is_file() else ""
    print(f"lightreg: interrupted{where}", file=sys.stderr)
    return EXIT_INTERRUPTED


def run_job(cfg: DictConfig) -> float | None:
    """Train as ``cfg`` says and return the final ``val/loss`` (for Hydra sweepers).

    A :class:`~lightreg.errors.UserError` is one ``lightreg: error: ...`` line on stderr and exit code 2; a resume
    with nothing left to train is a one-line notice, exit 0, and its new run folder is removed; Ctrl-C, during
    start-up or training, is one line, ``status: interrupted`` in ``metrics.json`` and exit code 130. Anything else
    keeps its traceback.
    """
    out_dir = cfg.paths.output_dir
    with console.session(out_dir):  # the console, copied into <run dir>/train.log
        try:
            check_config(cfg)  # before the slow Lightning import below
            from lightreg.cli.guard import NothingToDo, check_resume

            try:
                check_resume(cfg)
            except NothingToDo as notice:
                print(f"lightreg: {notice}")
                metrics = None
            else:
                metrics = run(cfg)
                console.print_final_block(out_dir, metrics)
        except UserError as exc:
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                raise  # one job of a sweep: recorded as a failed row by lightreg.sweep.SweepSummary, the sweep goes on
            sys.exit(report_user_error(exc))
        except (KeyboardInterrupt, SystemExit) as exc:
            if isinstance(exc, SystemExit) and getattr(exc, "status", None) != "interrupted":
                raise
            sys.exit(interrupted(out_dir))
    if metrics is None:
        console.discard_new_folder(out_dir)  # the resume had nothing to do: no new files
        return None
    return metrics.get("val/loss")
