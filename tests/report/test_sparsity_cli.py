"""The monitor and the report through the command line: ``python -m train`` runs, read back from their run dirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import describe, run_train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ["feature_importance.png", "losses.png", "sparsity_over_epochs.png", "weight_histograms.png"]
SEED_001 = ["data=synthetic", "model=mlp", "model.hidden_sizes=[6]", "logger=none"]

pytestmark = pytest.mark.slow  # each test starts `python -m train` (10-20 s on 2 cores)


@pytest.fixture(scope="module")
def group_lasso_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed-001 setup, group lasso on the input columns of the first layer, full-batch proximal gradient steps (no
    momentum) so that columns reach zero."""
    cwd = tmp_path_factory.mktemp("cli")
    run = cwd / "run"
    proc = run_train(
        *SEED_001,
        "trainer.max_epochs=30",
        "data.batch_size=null",
        "optimizer.lr=0.5",
        "optimizer.momentum=0",
        "+penalty=group_lasso",
        "penalty.include=[net.fc1.weight]",
        "lambda=0.03",
        f"hydra.run.dir={run}",
        cwd=cwd,
    )
    assert proc.returncode == 0, describe(proc)
    return run


def test_penalized_run_writes_sparsity_json_and_plots(group_lasso_run: Path) -> None:
    summary = json.loads((group_lasso_run / "sparsity.json").read_text())
    weight = torch.load(group_lasso_run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"][
        "net.fc1.weight"
    ]
    nonzero_columns = torch.nonzero(weight.abs().sum(dim=0) > 0).flatten().tolist()
    features = summary["features"]
    assert features["layer"] == "net.fc1.weight"
    assert features["selected"] == nonzero_columns
    assert features["selected_names"] == [f"x{j}" for j in nonzero_columns]
    assert {"x0", "x1"} <= set(features["selected_names"])  # the informative inputs are kept ...
    assert len(features["dropped"]) > 0  # ... and 30 full-batch prox steps at lambda=0.03 drop some others
    assert [layer["name"] for layer in summary["layers"]] == ["net.fc1.weight"]
    assert summary["layers"][0]["zeros"] == int((weight == 0).sum())
    assert summary["penalties"][0]["name"] == "group_lasso" and summary["penalties"][0]["strength"] == 0.03
    assert [r["epoch"] for r in summary["history"]] == list(range(30))
    assert all({"train/loss", "val/loss", "train/penalty"} <= set(r["metrics"]) for r in summary["history"])
    metrics = json.loads((group_lasso_run / "metrics.json").read_text())
    assert metrics["sparsity/total"] == pytest.approx(summary["total"]["zero_fraction"])
    assert metrics["features/selected"] == len(nonzero_columns)
    assert metrics["sparsity/dropped_inputs"] == len(features["dropped"])
    assert sorted(p.name for p in (group_lasso_run / "plots").iterdir()) == PLOTS
    assert all((group_lasso_run / "plots" / name).read_bytes()[:8] == PNG_MAGIC for name in PLOTS)


def test_report_command_rebuilds_a_finished_run(group_lasso_run: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lightreg.report", str(group_lasso_run), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == PLOTS
    assert "net.fc1.weight" in proc.stdout and "Selected inputs" in proc.stdout


def test_monitor_without_penalty_through_the_callbacks_option(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = cli(
        *SEED_001, "trainer.max_epochs=2", "callbacks=sparsity", "callbacks.sparsity.atol=0.01", f"hydra.run.dir={run}"
    )
    assert proc.returncode == 0, describe(proc)
    summary = json.loads((run / "sparsity.json").read_text())
    assert summary["penalties"] == [] and summary["atol"] == 0.01
    assert [layer["name"] for layer in summary["layers"]] == ["net.fc1.weight", "net.out.weight"]  # all weights
    assert json.loads((run / "metrics.json").read_text())["sparsity/total"] == pytest.approx(0.0)  # nothing pushes to 0


def test_no_penalty_no_monitor(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = cli(*SEED_001, "trainer.max_epochs=1", f"hydra.run.dir={run}")
    assert proc.returncode == 0, describe(proc)
    assert not (run / "sparsity.json").exists() and not (run / "plots").exists()
    assert "sparsity/total" not in json.loads((run / "metrics.json").read_text())
