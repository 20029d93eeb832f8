"""The model owns its data's units: λ_max, the null model and the zero solution agree with their closed forms across
task (binary, multiclass, regression) × feature/target standardization × single run / λ path / estimator.

Closed forms, for the data loss as a batch mean in the units the net fits (the standardized target for regression
with ``standardize_target``): at the null model (penalized weights 0, intercept at the intercept-only optimum) the
L1 λ_max is ``max |∇_W f|``: ``2·max|Xᵀ(t − t̄)|/n`` (MSE), ``max|Xᵀ(y − ȳ)|/n`` (BCE), ``max|Xᵀ(P − Y)|/n``
(cross entropy, ``P`` the class frequencies).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lightreg.data import SklearnDataModule

from helpers import run_cli, train_in_process

DATASETS = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}
CASES = [
    ("binary", True, True),
    ("binary", False, True),
    ("multiclass", True, True),
    ("multiclass", False, True),
    ("regression", True, True),
    ("regression", True, False),
    ("regression", False, True),
    ("regression", False, False),
]
QUIET = ["logger=none", "callbacks=none", "model.print_epochs=false", "trainer.enable_progress_bar=false"]


def split(task: str, standardize: bool, standardize_target: bool) -> SklearnDataModule:
    dm = SklearnDataModule(
        name=DATASETS[task], batch_size=64, seed=0, standardize=standardize, standardize_target=standardize_target
    )
    dm.setup("fit")
    return dm


def net_targets(dm: SklearnDataModule, y: torch.Tensor) -> np.ndarray:
    y = y.double().numpy()
    if dm.task == "regression" and dm.target_scale is not None:
        mean, std = dm.target_scale
        return (y - mean) / std
    return y


def closed_form_lambda_max(dm: SklearnDataModule) -> float:
    x, t = dm.x_train.double().numpy(), net_targets(dm, dm.y_train)
    n = len(t)
    if dm.task == "regression":
        return 2 * float(np.abs(x.T @ (t - t.mean())).max()) / n
    if dm.task == "binary":
        return float(np.abs(x.T @ (t - t.mean())).max()) / n
    onehot = np.eye(dm.num_classes)[t.astype(int)]
    return float(np.abs(x.T @ (onehot.mean(axis=0) - onehot)).max()) / n


def intercept_only_val_loss(dm: SklearnDataModule) -> float:
    """The validation data loss of the intercept-only model fitted on the training split."""
    t, v = net_targets(dm, dm.y_train), net_targets(dm, dm.y_val)
    if dm.task == "regression":
        return float(np.mean((v - t.mean()) ** 2))
    if dm.task == "binary":
        p = t.mean()
        return float(-np.mean(v * np.log(p) + (1 - v) * np.log(1 - p)))
    freq = np.bincount(t.astype(int), minlength=dm.num_classes) / len(t)
    return float(-np.mean(np.log(freq[v.astype(int)])))


def data_overrides(task: str, standardize: bool, standardize_target: bool) -> list[str]:
    out = [f"data={DATASETS[task]}", f"data.standardize={str(standardize).lower()}"]
    if task == "regression":
        out.append(f"data.standardize_target={str(standardize_target).lower()}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("task", "standardize", "standardize_target"), CASES)
def test_path_lambda_max_and_null_point(tmp_path: Path, task: str, standardize: bool, standardize_target: bool) -> None:
    """The λ path's λ_max is the closed form on its split, its first point is the intercept-only model (its val/loss
    that model's), and every point below λ_max holds a non-empty model."""
    dm = split(task, standardize, standardize_target)
    overrides = [
        *data_overrides(task, standardize, standardize_target),
        "+penalty=l1",
        "+path=geometric",
        "path.num=3",
        "path.min_ratio=0.3",
        "path.epochs_per_lambda=2",
        "path.checkpoints=none",
        *QUIET,
    ]
    metrics = train_in_process(tmp_path, *overrides)
    expected = closed_form_lambda_max(dm)
    assert metrics["lambda_max_source"] == "closed form"
    assert metrics["lambda_max"] == pytest.approx(expected, rel=1e-3)
    with (tmp_path / "path.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert int(rows[0]["nnz"]) == 0
    assert float(rows[0]["val/loss"]) == pytest.approx(intercept_only_val_loss(dm), rel=1e-4)
    assert all(int(row["nnz"]) > 0 for row in rows[1:]), [row["nnz"] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "standardize", "standardize_target"), CASES[::2])
def test_single_run_zero_solution_starts_at_lambda_max(
    tmp_path: Path, task: str, standardize: bool, standardize_target: bool
) -> None:
    """A single exact run at 1.05·λ_max ends with every weight zero and the intercept-only loss; at 0.8·λ_max it keeps
    a weight: the run and the path share one λ_max."""
    dm = split(task, standardize, standardize_target)
    lam = closed_form_lambda_max(dm)
    common = [*data_overrides(task, standardize, standardize_target), "+penalty=l1", "penalty.mode=exact", *QUIET]
    above = train_in_process(tmp_path / "above", *common, f"lambda={1.05 * lam}", "trainer.max_epochs=2")
    assert above["sparsity/nnz"] == 0
    assert above["val/loss"] == pytest.approx(intercept_only_val_loss(dm), rel=1e-3)
    below = train_in_process(tmp_path / "below", *common, f"lambda={0.8 * lam}", "trainer.max_epochs=2")
    assert below["sparsity/nnz"] > 0


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_estimator_zero_solution_starts_at_lambda_max(task: str) -> None:
    """The estimators fit the data as given (no scaling): their λ_max is the closed form on the raw target."""
    from lightreg.sklearn import LightregClassifier, LightregRegressor

    dm = split(task, True, False)
    x, y = dm.x_train.numpy(), dm.y_train.numpy()
    lam = closed_form_lambda_max(dm)
    Estimator = LightregRegressor if task == "regression" else LightregClassifier
    zero = Estimator(lambda_=1.05 * lam, max_epochs=2, random_state=0).fit(x, y)
    assert np.count_nonzero(zero.coef_) == 0
    expected = y.mean() if task == "regression" else math.log(y.mean() / (1 - y.mean()))
    assert float(np.ravel(zero.intercept_)[0]) == pytest.approx(expected, rel=1e-3)
    kept = Estimator(lambda_=0.8 * lam, max_epochs=2, random_state=0).fit(x, y)
    assert np.count_nonzero(kept.coef_) > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
def test_linear_path_supports_are_the_lassos(tmp_path: Path, seed: int) -> None:
    """``python -m train data=diabetes +penalty=l1 +path=geometric`` ends each point at the lasso's optimum
    (``path.finish=auto``): its support at every λ is scikit-learn's ``Lasso(alpha=λ/2)`` on the same split and the
    same standardized target, up to coefficients below 1e-3 (a float32 fit at the boundary where an input enters)."""
    from sklearn.linear_model import Lasso

    metrics = train_in_process(
        tmp_path,
        "data=diabetes",
        f"seed={seed}",
        "+penalty=l1",
        "+path=geometric",
        "path.num=10",
        "path.checkpoints=none",
        *QUIET,
    )
    dm = SklearnDataModule(name="diabetes", seed=seed, batch_size=128)
    dm.setup("fit")
    x, t = dm.x_train.double().numpy(), net_targets(dm, dm.y_train)
    assert metrics["lambda_max"] == pytest.approx(closed_form_lambda_max(dm), rel=1e-3)
    with (tmp_path / "path.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        reference = Lasso(alpha=float(row["lambda"]) / 2, tol=1e-10, max_iter=100_000).fit(x, t).coef_
        ours = np.array([float(row[f"coef:{name}"]) for name in dm.feature_names])
        clear = (np.abs(ours) > 1e-3) | (np.abs(reference) > 1e-3)
        assert ((ours != 0) == (reference != 0))[clear].all(), (row["lambda"], ours, reference)


@pytest.mark.parametrize("task", sorted(DATASETS))
def test_the_guard_knows_the_intercept_only_validation_loss(task: str) -> None:
    """The run guard's floor is the intercept-only model's validation loss in the units the model fits."""
    from lightreg.cli.guard import null_validation_loss
    from lightreg.models import LogisticRegression

    dm = split(task, True, True)
    model = LogisticRegression(input_shape=dm.input_shape, num_classes=dm.num_classes, task=dm.task)
    model.use_units_of(dm)
    assert null_validation_loss(model, dm) == pytest.approx(intercept_only_val_loss(dm), rel=1e-5)


@pytest.mark.slow
def test_a_run_that_ends_worse_than_the_intercept_only_model_is_warned(tmp_path: Path) -> None:
    quiet = ["logger=none", "callbacks=none", "trainer.max_epochs=3"]
    bad = run_cli(tmp_path / "bad", "optimizer.lr=100", *quiet)
    assert "worse than the intercept-only model's 2.30" in bad.stderr and "optimizer.lr (now 100)" in bad.stderr
    good = run_cli(tmp_path / "good", *quiet)
    assert "intercept-only" not in good.stderr
