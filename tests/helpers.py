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


def composed(run_dir: Path, *overrides: str) -> Any:
    """The config ``python -m train <overrides>`` composes, with its run folder at ``run_dir`` (as Hydra would set
    it): the in-process twin of :func:`run_cli` (lightning-hydra-template's way)."""
    from hydra import compose, initialize_config_module
    from omegaconf import open_dict

    with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


def train_in_process(run_dir: Path, *overrides: str) -> dict:
    """Check and run the composed config through the CLI's own pipeline (a single run or a λ path) in this process;
    returns what it wrote to ``metrics.json``."""
    from lightreg.cli.checks import check_config
    from lightreg.cli.job import run

    cfg = composed(run_dir, *overrides)
    check_config(cfg)
    run(cfg)
    return read_metrics(run_dir)
