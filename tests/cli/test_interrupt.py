"""Ctrl-C, in training and in start-up: one line, ``status: interrupted`` in metrics.json, exit code 130, and during
training ``last.ckpt`` written where it stopped. A real process and a real SIGINT: the process is what is tested."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


def _start(run_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "train", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_in_training_writes_last_ckpt_and_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run, "trainer.max_epochs=100000", "logger=none", "~callbacks.progress_bar")
    lines: list[str] = []

    def epochs_seen() -> bool:
        line = proc.stdout.readline()
        lines.append(line)
        return re.match(r"Epoch\s+3/", line) is not None or proc.poll() is not None

    _wait_for(epochs_seen)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + out + err
    assert "Traceback" not in err and "lightreg: interrupted" in err and "last.ckpt" in err, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs"] >= 2
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == metrics["epochs"]  # written where it stopped, not at the last every-5-epochs write


def test_ctrl_c_in_start_up_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run, "trainer.max_epochs=1", "logger=none")
    # Hydra opens train.log as it starts the job; the job then imports Lightning for seconds: land in that import
    _wait_for(lambda: (run / "train.log").is_file() or proc.poll() is not None)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # 130 as a rule; a SIGINT that lands inside torch's own import can leave Python to end by the signal (-2) after
    # lightreg has said so and written metrics.json
    assert proc.returncode in (130, -signal.SIGINT), out + err
    ours = [line for line in err.splitlines() if line.startswith("lightreg:")]
    assert "Traceback" not in err and len(ours) == 1 and ours[0].startswith("lightreg: interrupted"), err
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"
