"""Nonconvex penalty configs through the real entry point (``python -m train +penalty=<name>``) in the three modes,
the λ path with MCP, and the scikit-learn estimators' ``penalty="mcp"/"scad"``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import describe
from helpers import QUIET, read_metrics, run_train

CASES = [
    ("mcp", "prox", ["penalty.gamma=3"]),
    ("scad", "grad", ["penalty.gamma=3.7"]),
    ("log_sum", "exact", ["penalty.eps=0.5"]),
    ("l0", "prox", []),
    ("l0", "exact", []),
    ("group_mcp", "exact", ["penalty.gamma=2"]),
    ("group_scad", "prox", ["penalty.gamma=4"]),
    ("mcp", "exact", ["penalty.gamma=1.5"]),
]


@pytest.mark.parametrize(
    ("name", "mode", "extra"),
    [pytest.param(*case, marks=[] if i == 0 else pytest.mark.slow) for i, case in enumerate(CASES)],
    ids=[f"{n}-{m}" for n, m, _ in CASES],
)
def test_penalty_config_trains_and_reports_sparsity(tmp_path: Path, name: str, mode: str, extra: list[str]) -> None:
    run = tmp_path / "run"
    lam = "0.002" if name == "l0" else ("0.05" if mode == "prox" else "0.02")
    proc = run_train(
        "data=breast_cancer", f"+penalty={name}", f"lambda={lam}", f"penalty.mode={mode}", *extra,
        "trainer.max_epochs=3", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert metrics["status"] == "completed"
    assert 0 < metrics["sparsity/nnz"] <= 30
    if mode != "grad":  # a gradient form gives no exact zeros
        assert metrics["sparsity/nnz"] < 30
    assert metrics[f"sparsity/{name}"] == pytest.approx(1 - metrics["sparsity/nnz"] / 30, abs=1e-6)
    assert metrics["train/objective"] > metrics["train/loss"] > 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["+penalty=mcp", "penalty.gamma=0.9"], "mcp gamma must be a finite number > 1, got 0.9"),
        (["+penalty=l0", "penalty.mode=grad"], "penalty l0 has no gradient"),
    ],
    ids=["bad-gamma", "l0-grad"],
)
def test_bad_nonconvex_config_is_one_line_exit_2(tmp_path: Path, args: list[str], match: str) -> None:
    proc = run_train("data=breast_cancer", "lambda=0.01", "trainer.max_epochs=1", *args, *QUIET, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightreg: error:") and match in lines[0], describe(proc)


@pytest.mark.slow  # a 5-point path
def test_mcp_lambda_path_warm_starts_down_the_grid(tmp_path: Path) -> None:
    """The path with MCP: λ_max by L1's rule (the model is empty there), supports grow as λ falls, MCP's knee
    follows each λ (the path's penalty is rebuilt at every point)."""
    proc = run_train(
        "data=synthetic", "+penalty=mcp", "penalty.mode=exact", "+path=geometric", "path.num=5", "path.min_ratio=0.05",
        "path.epochs_per_lambda=3", *QUIET, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "path.csv").open()))
    nnz = [int(r["nnz"]) for r in rows]
    assert len(rows) == 5 and nnz[0] == 0 and nnz[-1] >= 2
    assert metrics["lambda_max_source"] == "closed form"
    assert float(rows[0]["lambda"]) == pytest.approx(metrics["lambda_max"])


@pytest.mark.parametrize("penalty", ["mcp", "scad"])
def test_sklearn_regressor_accepts_nonconvex_penalties(penalty: str) -> None:
    from lightreg.sklearn import LightregRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8))
    y = x[:, 0] * 2 - x[:, 1] + 0.1 * rng.normal(size=120)
    est = LightregRegressor(penalty=penalty, lambda_=0.05, gamma=3.0, mode="exact", max_epochs=5).fit(x, y)
    assert est.coef_.shape == (8,)
    assert np.count_nonzero(est.coef_) < 8 and abs(est.coef_[0]) > 1
    with pytest.raises(ValueError, match="gamma applies to penalty='mcp' or 'scad' only"):
        LightregRegressor(penalty="l1", lambda_=0.05, gamma=3.0).fit(x, y)
