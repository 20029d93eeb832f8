"""penalty.groups=coupled through the real entry point: whole coupled channel groups reach zero together."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import describe, run_train
from helpers import QUIET, read_metrics


@pytest.mark.slow
def test_cli_coupled_group_lasso_zeroes_filters_with_their_consumers(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", "penalty.groups=coupled", "lambda=0.008",
        "trainer.max_epochs=3", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert 0 < metrics["sparsity/group_lasso"] < 1
    assert metrics["train/penalty"] > 0


@pytest.mark.slow
def test_cli_coupled_with_mode_exact_is_one_line(tmp_path: Path) -> None:
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", "penalty.groups=coupled", "penalty.mode=exact",
        "lambda=1e-3", *QUIET, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, describe(proc)
    assert "mode=exact" in proc.stderr.strip().splitlines()[-1]
