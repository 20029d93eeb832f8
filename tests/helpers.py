"""Shared test helpers: run the real CLI in a subprocess and read what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
