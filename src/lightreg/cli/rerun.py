"""A run folder that already holds a run: refused, continued by a resume, or cleared with ``overwrite=true``.

:class:`RunFolderCheck` is a Hydra callback: it runs before Hydra writes ``.hydra/`` into the run folder, so a refused
run changes nothing in the folder it was pointed at. Sweeps are not checked (each job has its own folder).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightreg import run_folder
from lightreg.errors import UserError, listed, report_user_error

LOGGER_FOLDERS = ("csv", "tensorboard", "mlruns", "lightning_logs")
"""The loggers' folders inside a run folder (the shipped logger configs, and Lightning's default)."""


def run_files() -> list[str]:
    """Every file and folder name a run writes into its folder (:mod:`lightreg.run_folder`), with the loggers'."""
    names = [getattr(run_folder, name) for name in run_folder.__all__ if name.isupper()]
    return [*names, *LOGGER_FOLDERS]


def finished_run(run_dir: Path) -> list[str]:
    """What shows that ``run_dir`` holds a run that got somewhere: ``metrics.json`` with ``status: completed`` and
    its checkpoints (``checkpoints/last.ckpt``, ...); empty when it holds none."""
    found = []
    if run_folder.read_metrics(run_dir).get("status") == "completed":
        found.append(f"{run_folder.METRICS_FILE} status completed")
    found += [f"{run_folder.CHECKPOINTS}/{p.name}" for p in sorted((run_dir / run_folder.CHECKPOINTS).glob("*.ckpt"))]
    return found


def check_run_folder(run_dir: str | Path, overwrite: bool, ckpt_path: str | None) -> list[str]:
    """Refuse a run into a folder that holds a finished run (:func:`finished_run`), unless ``overwrite`` (its files
    are removed, :func:`clear_run`) or ``ckpt_path`` is one of its own checkpoints (the run continues in place: logs
    and ``train.log`` are appended to, checkpoints and ``metrics.json`` replaced). Returns what was removed."""
    run_dir = Path(run_dir)
    if not isinstance(overwrite, bool):
        raise UserError(f"overwrite must be true or false, got {overwrite!r}")
    found = finished_run(run_dir)
    if not found:
        return []
    inside = ckpt_path is not None and Path(ckpt_path).resolve().is_relative_to(run_dir.resolve())
    if inside and overwrite:
        raise UserError(
            f"overwrite=true would delete ckpt_path={ckpt_path} before resuming from it; drop overwrite=true to "
            f"continue the run in {run_dir}, or resume into another hydra.run.dir"
        )
    if inside:
        return []
    if not overwrite:
        last = run_dir / run_folder.CHECKPOINTS / "last.ckpt"
        resume = f", or continue it with ckpt_path={last}" if last.is_file() else ""
        raise UserError(
            f"{run_dir} already holds a run ({listed(found, 3)}); give this run another hydra.run.dir, add "
            f"overwrite=true to replace it{resume}"
        )
    return clear_run(run_dir)


def clear_run(run_dir: Path) -> list[str]:
    """Remove the files and folders a run wrote into ``run_dir`` (:func:`run_files`); anything else stays, and so
    does ``.hydra/`` (Hydra writes this run's config there next). Returns the names removed."""
    removed = []
    for name in run_files():
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


class RunFolderCheck(Callback):
    """Hydra callback: :func:`check_run_folder` on ``hydra.run.dir`` before a single run starts (on rank zero; the
    other DDP processes join the same run); a refusal is the one ``lightreg: error: ...`` line and exit code 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if any(os.environ.get(key, "0") != "0" for key in ("RANK", "LOCAL_RANK")):
            return  # a DDP process that Lightning started for this run: rank zero checked the folder
        try:
            run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir", throw_on_resolution_failure=True)))
        except OmegaConfBaseException:
            return  # a run folder Hydra cannot name yet: Hydra reports it itself
        try:
            removed = check_run_folder(run_dir, config.get("overwrite", False), config.get("ckpt_path"))
        except UserError as exc:
            sys.exit(report_user_error(exc))
        if removed:
            print(f"lightreg: overwrite=true: removed the previous run in {run_dir} ({listed(removed, 6)})")


__all__ = ["LOGGER_FOLDERS", "RunFolderCheck", "check_run_folder", "clear_run", "finished_run", "run_files"]
