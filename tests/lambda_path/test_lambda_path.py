"""λ paths: the grid, the selection rules, bad input, and whole paths through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from lightreg.errors import UserError
from lightreg.lambda_path import best_index, check_path, geometric_grid, one_se_index

from conftest import describe

QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]


def test_geometric_grid_runs_from_lambda_max_down_to_min_ratio() -> None:
    grid = geometric_grid(0.5, 5, 1e-2)
    assert grid[0] == 0.5 and grid[-1] == pytest.approx(5e-3)
    np.testing.assert_allclose(grid[1:] / grid[:-1], 1e-2**0.25)


def test_best_prefers_the_sparser_model_among_ties() -> None:
    lambdas = [1.0, 0.5, 0.25, 0.125]
    assert best_index(lambdas, [0.6, 0.9, 0.9, 0.8], "max") == 1
    assert best_index(lambdas, [0.6, 0.3, 0.2, 0.25], "min") == 2


def test_one_se_rule_takes_the_largest_lambda_within_one_error_of_the_best() -> None:
    lambdas = [1.0, 0.5, 0.25, 0.125]
    loss, se = [0.70, 0.33, 0.30, 0.31], [0.01, 0.02, 0.04, 0.02]
    assert one_se_index(lambdas, loss, se, "min") == 1  # 0.33 <= 0.30 + 0.04
    assert one_se_index(lambdas, loss, [0.0, 0.0, 0.01, 0.0], "min") == 2  # nothing else within 0.01
    assert one_se_index(lambdas, [0.5, 0.88, 0.9, 0.9], [0.0, 0.0, 0.03, 0.03], "max") == 1


def _cfg(**path) -> OmegaConf:
    spec = {
        "num": 5,
        "min_ratio": 1e-2,
        "lambda_max": None,
        "epochs_per_lambda": 2,
        "patience": 1,
        "monitor": "val/loss",
        "checkpoints": "chosen",
        "bisect_steps": 2,
        "refit_epochs": 0,
        **path,
    }
    return OmegaConf.create({"lambda": 0.0, "penalty": {"penalty": "l1"}, "extra_penalties": {}, "path": spec})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"path": {"min_ratio": 1.0}}, r"path.min_ratio must be a number in \(0, 1\)"),
        ({"path": {"min_ratio": 0}}, r"path.min_ratio must be a number in \(0, 1\)"),
        ({"path": {"num": 1}}, "path.num must be an integer >= 2"),
        ({"path": {"refit_epochs": -1}}, "path.refit_epochs must be an integer >= 0"),
        ({"path": {"refit_epochs": 1.5}}, "path.refit_epochs must be an integer >= 0"),
        ({"penalty": None}, "none is configured"),
        ({"lambda": 0.01}, "the path sets λ itself"),
        ({"path": {"monitor": "val/f1"}}, "path.monitor must be one of"),
        ({"extra_penalties": {"l2_rest": {"strength": 0.0}}}, "extra_penalties.l2_rest has strength 0.0"),
        ({"path": {"checkpoints": "some"}}, "path.checkpoints must be one of"),
        ({"penalty": {"penalty": "l2"}}, "no lambda_max"),
    ],
)
def test_bad_path_configs(change: dict, match: str) -> None:
    cfg = _cfg()
    cfg.merge_with(change)
    if "penalty" in change and change["penalty"] is None:
        cfg.penalty = None
    with pytest.raises(UserError, match=match):
        check_path(cfg)


@pytest.mark.slow  # starts `python -m train` (fails before the Lightning import)
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["+penalty=l1", "+path=geometric", "path.min_ratio=1.5"], "path.min_ratio must be a number in (0, 1)"),
        (["+penalty=l1", "+path=geometric", "path.num=1"], "path.num must be an integer >= 2"),
        (["+path=geometric"], "none is configured"),
        (["+penalty=l1", "lambda=0.01", "+path=geometric"], "lambda=0.01 and +path: the path sets λ itself"),
        (
            [
                "model=cnn",
                "data=digits_images",
                "+penalty=group_lasso",
                "penalty.groups=coupled",
                "+path=geometric",
                "path.finish=exact",
            ],
            "path.finish=exact ends each point with the full-batch finish, which works tensor by tensor",
        ),
    ],
)
def test_bad_path_input_is_one_line_exit_2(cli, args: list[str], match: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightreg: error:") and match in lines[0], describe(proc)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "path.csv").open()))


@pytest.mark.slow  # an 8-point path on synthetic data
def test_linear_path_on_synthetic_data(cli, tmp_path: Path) -> None:
    proc = cli(
        "+penalty=l1",
        "penalty.mode=exact",
        "+path=geometric",
        "path.num=8",
        "path.min_ratio=0.01",
        "path.epochs_per_lambda=4",
        "data=synthetic",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = _rows(tmp_path)
    lambdas = [float(r["lambda"]) for r in rows]
    assert len(rows) == 8 and lambdas == sorted(lambdas, reverse=True)
    assert lambdas[0] == pytest.approx(metrics["lambda_max"]) and lambdas[-1] == pytest.approx(0.01 * lambdas[0])
    # λ_max in closed form: max_j |∂f/∂w_j| at w = 0 with the intercept at logit(ȳ), on the training split
    from lightreg.data import SyntheticDataModule

    data = SyntheticDataModule(seed=0, batch_size=64)
    data.setup()
    x, y = data.x_train.double().numpy(), data.y_train.double().numpy()
    p = y.mean()
    assert metrics["lambda_max_source"] == "closed form"
    assert metrics["lambda_max"] == pytest.approx(np.abs(x.T @ (p - y) / len(y)).max(), rel=1e-5)
    assert int(rows[0]["nnz"]) == 0, "at λ_max the model is empty"
    nnz = [int(r["nnz"]) for r in rows]
    assert nnz[-1] > nnz[1] and nnz[-1] >= 2
    entry = metrics["path/entry_lambda"]
    noise = [entry[f"x{j}"] or 0.0 for j in range(2, 10)]
    assert min(entry["x0"], entry["x1"]) > max(noise), entry  # the informative inputs enter first
    for rule in ("best", "one_se"):
        assert Path(metrics[f"{rule}/checkpoint"]).is_file()
        assert metrics[f"{rule}/lambda"] in lambdas
    assert metrics["one_se/lambda"] >= metrics["best/lambda"]
    assert metrics["val/loss"] == metrics["best/val/loss"]
    assert (tmp_path / "plots" / "path.png").stat().st_size > 20_000
    assert "λ path" in proc.stdout


@pytest.mark.slow  # three λ_max searches' worth of short fits
def test_network_lambda_max_is_searched(cli, tmp_path: Path) -> None:
    proc = cli(
        "+penalty=l1",
        "penalty.include=[net.fc1.weight]",
        "model=mlp",
        "model.hidden_sizes=[4]",
        "+path=geometric",
        "path.num=3",
        "path.epochs_per_lambda=2",
        "path.bisect_steps=2",
        "path.checkpoints=none",
        "data=synthetic",
        "data.n_samples=200",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["lambda_max_source"] == "search" and metrics["lambda_max"] > 0
    rows = _rows(tmp_path)
    assert int(rows[0]["nnz"]) == 0  # trained from zero at λ_max, the first layer stays zero
    assert metrics["best/checkpoint"] is None and not (tmp_path / "checkpoints").exists()
    # an all-zero point belongs to a path: the single-run guard's advice ("use a lambda below ...") is not given
    assert "every penalized weight is exactly zero" not in proc.stderr, describe(proc)


@pytest.mark.slow  # a 5-point exact path on breast_cancer with a 3-epoch refit at each point
def test_relaxed_path_refits_each_support_without_the_penalty(cli, tmp_path: Path) -> None:
    proc = cli(
        "data=breast_cancer",
        "+penalty=l1",
        "penalty.mode=exact",
        "+penalty.finish.max_iter=2",  # too few to settle: the path says so once, not point by point
        "+path=geometric",
        "path.num=5",
        "path.min_ratio=0.02",
        "path.refit_epochs=3",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = _rows(tmp_path)
    assert metrics["path/refit_epochs"] == 3
    assert [int(r["refit_epochs"]) for r in rows] == [0, 3, 3, 3, 3]  # the closed-form null point is not refit
    assert metrics["epochs"] == sum(int(r["epochs"]) + int(r["refit_epochs"]) for r in rows)
    features = [c for c in rows[0] if c.startswith("coef:")]
    for row in rows:  # the refit kept the point's zeros: nnz counts the refit model's non-zero coefficients
        assert sum(float(row[c]) != 0 for c in features) == int(row["nnz"])
    assert any(0 < int(r["nnz"]) < len(features) for r in rows), "no point with held zeros to check"
    changed = [float(r["val/loss"]) != float(r["penalized/val/loss"]) for r in rows[1:] if int(r["nnz"]) > 0]
    assert changed and all(changed), "the refit did not move the kept weights"
    assert proc.stderr.count("the full-batch finish stopped at finish.max_iter=2") == 1, describe(proc)
    assert "at 4 of 5 path points" in proc.stderr, describe(proc)


@pytest.mark.slow  # a 5-point exact path on breast_cancer and 5 scikit-learn fits
def test_breast_cancer_path_matches_sklearn_at_each_lambda(cli, tmp_path: Path) -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression as SkLogistic

    from lightreg.data import SklearnDataModule

    proc = cli(
        "data=breast_cancer",
        "+penalty=l1",
        "penalty.mode=exact",
        "+path=geometric",
        "path.num=5",
        "path.min_ratio=0.02",
        "path.checkpoints=none",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    data = SklearnDataModule(name="breast_cancer", seed=0)
    data.setup()
    x, y = data.x_train.double().numpy(), data.y_train.double().numpy()
    n = len(y)

    def objective(coef: np.ndarray, b: float, lam: float) -> float:
        z = x @ coef + b
        return float(np.mean(np.logaddexp(0, z) - y * z) + lam * np.abs(coef).sum())

    for row in _rows(tmp_path)[1:]:  # the first point is λ_max: the empty model by construction
        lam = float(row["lambda"])
        coef = np.array([float(row[f"coef:{f}"]) for f in data.feature_names])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = SkLogistic(
                l1_ratio=1.0, C=1 / (n * lam), solver="liblinear", tol=1e-10, max_iter=100_000, intercept_scaling=1e4
            ).fit(x, y)
        f_ref = objective(ref.coef_.ravel(), float(ref.intercept_[0]), lam)
        assert abs(objective(coef, float(row["intercept"]), lam) - f_ref) <= 1e-3 * f_ref, lam
        np.testing.assert_array_equal(coef != 0, ref.coef_.ravel() != 0, err_msg=f"λ = {lam}")
    # input names with spaces ("mean radius") stay whole in metrics.json and path.csv
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    best = _rows(tmp_path)[metrics["best/step"]]
    kept = [f for f in data.feature_names if float(best[f"coef:{f}"]) != 0]
    assert metrics["best/features"] == kept and best["kept"] == "; ".join(kept)
    assert set(metrics["path/entry_lambda"]) == set(data.feature_names)
    assert all(metrics["path/entry_lambda"][f] is not None for f in kept)


def test_a_path_runs_under_the_guard_and_keeps_its_points(cli, tmp_path: Path) -> None:
    """Every fit of a path runs under the run's guard: a diverging point stops the path with one line and exit 2, and
    the run folder keeps what was done (``status: diverged`` in metrics.json, the points so far in path.csv)."""
    proc = cli(
        "data=diabetes",
        "+penalty=l1",
        "+path=geometric",
        "optimizer.lr=1e4",
        "path.num=3",
        "path.finish=none",
        *QUIET,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2 and "training diverged" in proc.stderr, describe(proc)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["path/num"] == 1
    with (tmp_path / "run" / "path.csv").open() as f:
        assert [row["nnz"] for row in csv.DictReader(f)] == ["0"]


def test_a_path_refuses_two_penalties_of_one_name(cli, tmp_path: Path) -> None:
    proc = cli(
        "+penalty=l1",
        "+path=geometric",
        "+penalty@extra_penalties.l1=l2",
        "extra_penalties.l1.strength=0.01",
        "path.num=2",
        *QUIET,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2 and "both named 'l1'" in proc.stderr and "Traceback" not in proc.stderr, describe(proc)
