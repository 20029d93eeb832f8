"""A λ path with a nonconvex penalty through the CLI: each point is warm started from the previous one, from the empty
model at λ_max (as ncvreg's paths are). From the same warm start, skglm's coordinate descent reaches no lower
objective at any λ, in the units the model trains in (standardized inputs, and a standardized regression target)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lightreg.cli.pipeline import build_data

from conftest import describe

QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false", "path.checkpoints=none"]
GAMMA = 3.0


def _mcp(w: np.ndarray, lam: float) -> float:
    a = np.abs(w)
    return float(np.where(a <= GAMMA * lam, lam * a - a**2 / (2 * GAMMA), GAMMA * lam**2 / 2).sum())


def _training_rows(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's training split as the model sees it: standardized inputs, and the target in the model's units."""
    datamodule = build_data(OmegaConf.load(run / ".hydra" / "config.yaml"))
    datamodule.setup("fit")
    xs, ys = zip(*datamodule.train_dataloader())
    x, y = torch.cat(xs).double().numpy(), torch.cat(ys).double().numpy().ravel()
    if getattr(datamodule, "target_scale", None) is not None:
        mean, std = datamodule.target_scale
        y = (y - mean) / std
    return x, y


@pytest.mark.slow  # two 6-point exact paths and their skglm references
@pytest.mark.parametrize("data", ["diabetes", "breast_cancer"])
def test_mcp_path_reaches_skglms_warm_started_path(cli, tmp_path: Path, data: str) -> None:
    import skglm
    from skglm.datafits import Logistic
    from skglm.penalties import MCPenalty
    from skglm.solvers import AndersonCD

    proc = cli(
        f"data={data}",
        "+penalty=mcp",
        f"penalty.gamma={GAMMA}",
        "penalty.mode=exact",
        "+path=geometric",
        "path.num=6",
        "path.min_ratio=0.01",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    x, y = _training_rows(tmp_path)
    regression = data == "diabetes"
    if (
        regression
    ):  # lightreg: mean (y - Xw - b)² + MCP_{λ,γ}; skglm: ½ mean (...)² + MCP_{λ/2, 2γ}, the same minimizers
        reference = skglm.MCPRegression(alpha=1.0, gamma=2 * GAMMA, tol=1e-12, max_iter=10_000, warm_start=True)
    else:  # mean BCE + MCP_{λ,γ} in both (skglm's labels are ±1)
        reference = skglm.GeneralizedLinearEstimator(
            Logistic(), MCPenalty(alpha=1.0, gamma=GAMMA), AndersonCD(tol=1e-12, max_iter=10_000, warm_start=True)
        )
    target = y if regression else 2 * y - 1

    def objective(w: np.ndarray, b: float, lam: float) -> float:
        z = x @ w + b
        fit = np.mean((y - z) ** 2) if regression else np.mean(np.logaddexp(0, z) - y * z)
        return float(fit) + _mcp(w, lam)

    with open(tmp_path / "path.csv") as f:
        rows = list(csv.DictReader(f))
    names = [k for k in rows[0] if k.startswith("coef:")]
    assert len(rows) == 6 and len(names) == x.shape[1]
    # λ_max's point is the empty model by construction, stationary with |∇f| = λ up to float32 rounding: a coordinate
    # step off that knife edge may jump to a far, lower stationary point (MCP is bounded), so the comparison starts
    # at the next λ, from the empty model as the path does
    assert all(float(row[k]) == 0 for k in names for row in rows[:1])
    start = np.zeros(len(names)), float(rows[0]["intercept"])
    for row in rows[1:]:
        lam = float(row["lambda"])
        w, b = np.array([float(row[k]) for k in names]), float(row["intercept"])
        if regression:
            reference.alpha = lam / 2
        else:
            reference.penalty.alpha = lam
        reference.coef_ = start[0].copy() if regression else start[0][None, :].copy()
        reference.intercept_ = start[1] if regression else np.array([start[1]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference.fit(x, target)
        ref_w, ref_b = np.ravel(reference.coef_), float(np.ravel(reference.intercept_)[0])
        ours, theirs = objective(w, b, lam), objective(ref_w, ref_b, lam)
        # a nonconvex objective: the two solvers may stop at different stationary points (another support), but
        # lightreg's is never the worse one
        assert ours <= theirs + 1e-4 * abs(theirs), (lam, ours, theirs)
        start = w, b
