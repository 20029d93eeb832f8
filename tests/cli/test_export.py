"""``lightreg export RUN_DIR --format onnx|torchscript``: the exported file takes raw rows (preprocessing inside, any
batch size), carries the model's facts, and predicts as the run measured; a model with a skip path exports whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from lightreg.cli.commands import main
from trained_runs import raw_rows, read_table, train_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return train_csv(tmp_path_factory.mktemp("cancer"), "breast_cancer", "diagnosis")


def _export(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_onnx_takes_raw_rows_and_carries_the_facts(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, metrics = cancer
    code, said, err = _export(capsys, run, "--format", "onnx", "-o", tmp_path / "model.onnx", "--checkpoint", "last")
    assert code == 0, err
    diff = float(said.rsplit(":", 1)[1])
    assert "validation rows" in said and diff <= 1e-5
    proto = onnx.load(str(tmp_path / "model.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["task"] == "binary" and json.loads(meta["classes"]) == metrics["classes"] == ["benign", "malignant"]
    names = json.loads(meta["feature_names"])
    assert len(names) == 30 and "mean radius" in names
    rows = read_table(run.parent / "holdout.csv")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (rows[:1], rows):  # a dynamic batch dimension
        logits = session.run(None, {"x": raw_rows(batch, names)})[0]
        assert logits.shape == (len(batch), 1)
    labels = np.where(logits.reshape(-1) > 0, "malignant", "benign")
    accuracy = np.mean(labels == [r["diagnosis"] for r in rows])
    assert accuracy == pytest.approx(metrics["val/acc"], abs=1.5 / len(rows))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_matches(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, metrics = cancer
    code, said, err = _export(capsys, run, "--format", "torchscript", "-o", tmp_path / "model.pt")
    assert code == 0 and "(torchscript); max abs diff from PyTorch on" in said, err
    scripted = torch.jit.load(str(tmp_path / "model.pt"))
    rows = read_table(run.parent / "holdout.csv")
    names = json.loads(_saved_feature_names(run))
    logits = scripted(torch.from_numpy(raw_rows(rows, names)))
    labels = np.where(logits.detach().reshape(-1).numpy() > 0, "malignant", "benign")
    assert abs(np.mean(labels == [r["diagnosis"] for r in rows]) - metrics["val/acc"]) <= 0.02


def _saved_feature_names(run: Path) -> str:
    """The feature names as the model saved them (its checkpoint's hyperparameters), as JSON."""
    hparams = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    return json.dumps(hparams["feature_names"])


def test_without_onnx_the_install_line(cancer: tuple[Path, dict], tmp_path: Path, capsys, monkeypatch) -> None:
    run, _ = cancer
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    code, _, err = _export(capsys, run, "--format", "onnx", "-o", tmp_path / "model.onnx")
    assert code == 2 and len(err.strip().splitlines()) == 1 and 'pip install "lightreg[export]"' in err
