"""Shared test helpers: run the real CLI in a subprocess and read what it wrote; a quiet Lightning Trainer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L

QUIET = ["logger=none", "callbacks=none", "model.print_epochs=false"]


def run_cli(run_dir: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m train <overrides> hydra.run.dir=<run_dir>``; raises with stderr when it fails and ``check``."""
    result = subprocess.run(
        [sys.executable, "-m", "train", *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"python -m train {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
    return result


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def quiet_trainer(callbacks: Iterable[L.Callback] = (), **options: Any) -> L.Trainer:
    """A CPU ``L.Trainer`` without logger, checkpoints, progress bar or model summary, 1 epoch; ``options`` override."""
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
    )
    return L.Trainer(callbacks=list(callbacks), **{**defaults, **options})
