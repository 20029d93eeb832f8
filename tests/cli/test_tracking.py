"""``logger=mlflow`` through the real CLI: the run folder's own MLflow store holds the config as parameters, every
logged metric and the run's files; without MLflow installed it is one line and exit 2 before training."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from lightreg.cli.tracking import flat_params
from lightreg.run_folder import read_metrics

from conftest import describe, run_train


def test_flat_params_names_keys_as_overrides_do() -> None:
    nested = {"lambda": 0.1, "model": {"_target_": "M", "net": {"width": 4}}, "extra_penalties": {}}
    assert flat_params(nested) == {"lambda": 0.1, "model._target_": "M", "model.net.width": 4, "extra_penalties": {}}


@pytest.mark.slow
def test_mlflow_run_holds_params_metrics_and_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["logger=mlflow", "trainer.max_epochs=2", "+penalty=l1", "lambda=0.001", "~callbacks.progress_bar"]
    proc = run_train(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "mlflow" not in proc.stderr.lower() and "creating" not in proc.stdout.lower(), describe(proc)

    from mlflow.tracking import MlflowClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = MlflowClient(f"sqlite:///{run / 'mlruns' / 'mlflow.db'}")
        [found] = client.search_runs([client.get_experiment_by_name("lightreg").experiment_id])
    params, logged = found.data.params, found.data.metrics
    assert params["lambda"] == "0.001" and params["model._target_"] == "lightreg.models.LogisticRegression"
    assert params["optimizer.lr"] == "0.1"
    metrics = read_metrics(run)
    assert logged["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)
    assert logged["sparsity/l1"] == pytest.approx(metrics["sparsity/l1"], rel=1e-6)
    assert found.info.status == "FINISHED"
    top = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "config.yaml", "sparsity.json", "checkpoints", "plots"} <= top, top
    assert [a.path for a in client.list_artifacts(found.info.run_id, "checkpoints")] == ["checkpoints/best.ckpt"]
    assert any(a.path.endswith(".png") for a in client.list_artifacts(found.info.run_id, "plots"))


def test_mlflow_missing_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # importlib.util.find_spec("mlflow") -> None: not installed
    run = tmp_path / "run"
    proc = run_train("logger=mlflow", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("lightreg: error: logger.mlflow needs mlflow") and "lightreg[track]" in line, line
    assert not (run / "metrics.json").exists() and not (run / "mlruns").exists()
