"""Where a run meets what came before it, through the real CLI: float16 autocast asked for on the CPU, a run folder
that already holds a run, a resume under another optimizer setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import describe, run_train

FAST = ["logger=none", "~callbacks.progress_bar", "data=wine"]


@pytest.mark.parametrize("precision", ["16-mixed", "16"])
def test_float16_autocast_on_the_cpu_is_refused_with_the_fix(precision: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(f"trainer.precision={precision}", "trainer.accelerator=cpu", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    [line] = proc.stderr.strip().splitlines()
    assert f"trainer.precision={precision}" in line and "trainer.precision=bf16-mixed" in line, line
    assert not (run / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="accelerator auto picks the GPU here")
def test_float16_autocast_with_auto_accelerator_and_no_gpu_is_refused(tmp_path: Path) -> None:
    proc = run_train("trainer.precision=16-mixed", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "bf16-mixed" in proc.stderr, describe(proc)


@pytest.mark.slow
def test_bf16_mixed_on_the_cpu_still_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["trainer.precision=bf16-mixed", "trainer.accelerator=cpu", "trainer.max_epochs=1", *FAST]
    proc = run_train(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
