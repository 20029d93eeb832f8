"""``python -m train`` end to end, in subprocesses; results are read from metrics.json, never stdout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from conftest import describe

pytestmark = pytest.mark.slow  # every test here starts `python -m train` in a subprocess

FAST = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_default_job(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = cli("trainer.max_epochs=2", f"hydra.run.dir={run}")
    assert proc.returncode == 0, describe(proc)
    metrics = _metrics(run)
    for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert isinstance(metrics[key], float), key
    assert metrics["epochs"] == 2 and metrics["seed"] == 0
    assert metrics["status"] == "completed"
    assert metrics["val/acc"] > 0.8
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / ".hydra" / "config.yaml").is_file()
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert config["lambda"] == 0.0 and config["trainer"]["max_epochs"] == 2
    with (run / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and "val/loss" in rows[0]
    assert {r["epoch"] for r in rows if r.get("val/loss")} == {"0", "1"}
    assert not (tmp_path / "outputs").exists(), "hydra.run.dir is where everything goes"


def test_mlp_on_synthetic(cli, tmp_path: Path) -> None:
    proc = cli("model=mlp", "data=synthetic", "trainer.max_epochs=2", *FAST, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, describe(proc)
    metrics = _metrics(tmp_path)
    assert metrics["epochs"] == 2 and metrics["global_step"] == 2 * 13  # 800 rows, batch 64
    assert metrics["val/acc"] > 0.7
    config = yaml.safe_load((tmp_path / ".hydra" / "config.yaml").read_text())
    assert config["model"]["_target_"] == "lightreg.models.MLP"


def test_breast_cancer(cli, tmp_path: Path) -> None:
    proc = cli("data=breast_cancer", "trainer.max_epochs=2", *FAST, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, describe(proc)
    metrics = _metrics(tmp_path)
    assert metrics["val/acc"] > 0.85
    assert metrics["global_step"] == 2 * 8  # 455 rows, batch 64


def test_multirun(cli, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = cli("-m", "trainer.max_epochs=1", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, describe(proc)
    found = sorted(sweep.glob("*/metrics.json"))
    assert len(found) == 2, found
    metrics = [json.loads(p.read_text()) for p in found]
    assert sorted(m["seed"] for m in metrics) == [0, 1]
    assert all(m["epochs"] == 1 for m in metrics)
    assert metrics[0]["val/loss"] != metrics[1]["val/loss"], "different seeds, different splits"


def test_resume_from_last_checkpoint(cli, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["data=wine", "logger=none", "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]
    proc = cli("trainer.max_epochs=1", *common, f"hydra.run.dir={first}")
    assert proc.returncode == 0, describe(proc)
    before = _metrics(first)
    ckpt = first / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    proc = cli("trainer.max_epochs=3", f"ckpt_path={ckpt}", *common, f"hydra.run.dir={second}")
    assert proc.returncode == 0, describe(proc)
    after = _metrics(second)
    assert before["epochs"] == 1 and after["epochs"] == 3
    assert after["global_step"] == 3 * before["global_step"], "the resumed run continued, it did not restart"


def test_default_run_reaches_accuracy(cli, tmp_path: Path) -> None:
    proc = cli(f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, describe(proc)
    metrics = _metrics(tmp_path)
    assert metrics["epochs"] == 20
    assert metrics["val/acc"] >= 0.93, metrics
