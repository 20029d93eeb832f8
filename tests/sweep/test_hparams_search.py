"""hparams_search=optuna: Hydra's Optuna sweeper over λ (log scale) and the learning rate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from conftest import describe


@pytest.mark.slow  # three trials through the CLI
def test_three_optuna_trials_on_tiny_data(cli, tmp_path: Path) -> None:
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason="the [tune] extra (also in [dev], which CI installs)"
    )
    sweep = tmp_path / "sweep"
    proc = cli(
        "hparams_search=optuna",
        "+penalty=l1",
        "hydra.sweeper.n_trials=3",
        "data=iris",
        "trainer.max_epochs=2",
        "logger=none",
        "callbacks=none",
        "model.print_epochs=false",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, describe(proc)
    trials = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(3)]
    assert all(t["status"] == "completed" for t in trials)
    drawn = [yaml.safe_load((sweep / str(i) / ".hydra" / "overrides.yaml").read_text()) for i in range(3)]
    lambdas = [float(next(o for o in d if o.startswith("lambda=")).split("=")[1]) for d in drawn]
    rates = [float(next(o for o in d if o.startswith("optimizer.lr=")).split("=")[1]) for d in drawn]
    assert len(set(lambdas)) == 3 and all(1e-5 <= v <= 1e-1 for v in lambdas)
    assert all(1e-3 <= v <= 0.3 for v in rates)
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] == pytest.approx(min(t["val/loss"] for t in trials))  # minimizes what train returns
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 3  # and the sweep summary ran
