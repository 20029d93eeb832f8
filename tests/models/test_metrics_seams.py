"""The task metrics where tasks and data meet: an imbalanced target gets figures that a majority-class model cannot
fool (balanced accuracy, and for binary AUROC and average precision from probabilities), equal to scikit-learn's;
the scikit-learn estimators give one model per data by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from lightreg.data import SklearnDataModule
from lightreg.models import LogisticRegression
from lightreg.models.tasks import EpochFigures
from lightreg.run_folder import read_metrics
from lightreg.sklearn import LightregClassifier, LightregRegressor

from conftest import describe, write_csv
from helpers import run_train

QUIET = ["logger=none", "~callbacks.progress_bar", "model.print_epochs=false"]


def _figures(task: str, num_classes: int | None, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    figures = EpochFigures(task, num_classes, "val/")
    figures.update(output, target)
    return {k.removeprefix("val/"): float(v) for k, v in figures.compute().items()}


def test_a_majority_model_has_chance_balanced_accuracy_and_auroc() -> None:
    target = torch.tensor([0] * 95 + [1] * 5)
    figures = _figures("binary", 2, torch.full((100, 1), -3.0), target)  # logit(0.05): always class 0
    assert figures["acc"] == pytest.approx(0.95)
    assert figures["balanced_acc"] == pytest.approx(0.5)
    assert figures["auroc"] == pytest.approx(0.5)
    assert figures["average_precision"] == pytest.approx(0.05)  # chance level: the positive frequency


def test_binary_figures_equal_scikit_learns_also_for_saturated_logits() -> None:
    """AUROC and average precision rank the probabilities: logits 20, 25 and 30 are all 1.0 in a float32 sigmoid,
    which would tie them; they must keep their order."""
    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(200, generator=generator) < 0.1).long()
    logits = torch.randn(200, generator=generator) + 2 * target
    logits[:3], target[:3] = torch.tensor([20.0, 25.0, 30.0]), torch.tensor([0, 1, 1])
    figures = _figures("binary", 2, logits.reshape(-1, 1), target)
    labels = (logits > 0).long().numpy()
    assert figures["acc"] == pytest.approx(float(np.mean(labels == target.numpy())))
    assert figures["balanced_acc"] == pytest.approx(balanced_accuracy_score(target, labels))
    assert figures["auroc"] == pytest.approx(roc_auc_score(target, logits.double()), abs=1e-6)
    assert figures["average_precision"] == pytest.approx(average_precision_score(target, logits.double()), abs=1e-6)


def test_multiclass_balanced_accuracy_is_the_mean_recall() -> None:
    generator = torch.Generator().manual_seed(1)
    target = torch.cat([torch.zeros(80), torch.ones(15), torch.full((5,), 2.0)]).long()
    logits = torch.randn(100, 3, generator=generator) + 2.0 * torch.nn.functional.one_hot(target, 3)
    figures = _figures("multiclass", 3, logits, target)
    assert set(figures) == {"acc", "balanced_acc"}
    assert figures["balanced_acc"] == pytest.approx(balanced_accuracy_score(target, logits.argmax(1)))
    assert figures["balanced_acc"] != pytest.approx(figures["acc"])


@pytest.mark.slow
def test_imbalanced_run_logs_balanced_figures(tmp_path: Path) -> None:
    """A 95/5 target through ``python -m train``: an L1 strength above λ_max leaves the intercept only (the majority
    class), so val/acc is the majority's share while val/balanced_acc and val/auroc are at chance."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = np.r_[np.zeros(380, int), np.ones(20, int)]
    write_csv(tmp_path / "train.csv", ["a", "b", "c", "label"], [(*row, label) for row, label in zip(x, y)])
    common = ["data=csv", "data.train_path=train.csv", "data.target=label", "trainer.max_epochs=3", *QUIET[:2]]
    proc = run_train(*common, "+penalty=l1", "lambda=5", "hydra.run.dir=majority", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(tmp_path / "majority")
    assert metrics["val/acc"] == pytest.approx(0.95)
    assert metrics["val/balanced_acc"] == pytest.approx(0.5)
    assert metrics["val/auroc"] == pytest.approx(0.5)
    assert {"train/balanced_acc", "train/auroc", "train/average_precision", "val/average_precision"} <= set(metrics)
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("Epoch ")]
    assert len(epoch_lines) == 3 and all(len(line) <= 80 and "balanced" not in line for line in epoch_lines)


@pytest.mark.slow
def test_binary_figures_match_the_checkpoint_and_can_pick_best_ckpt(tmp_path: Path) -> None:
    """breast_cancer: val/auroc, val/average_precision and val/balanced_acc are scikit-learn's figures of the
    trained model's probabilities on the validation rows; best.ckpt can be chosen by val/auroc."""
    proc = run_train(
        "data=breast_cancer",
        "trainer.max_epochs=3",
        "callbacks.model_checkpoint.monitor=val/auroc",
        "callbacks.model_checkpoint.mode=max",
        "hydra.run.dir=run",
        *QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(tmp_path / "run")
    model = LogisticRegression.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu")
    raw = SklearnDataModule(name="breast_cancer", seed=0, standardize=False)
    raw.setup("fit")
    p = model.predict_proba(raw.x_val)[:, 1].double().numpy()
    truth = raw.y_val.numpy()
    assert metrics["val/auroc"] == pytest.approx(roc_auc_score(truth, p), abs=1e-4)
    assert metrics["val/average_precision"] == pytest.approx(average_precision_score(truth, p), abs=1e-4)
    assert metrics["val/balanced_acc"] == pytest.approx(balanced_accuracy_score(truth, p > 0.5), abs=1e-4)
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.parametrize("estimator", [LightregClassifier, LightregRegressor])
def test_estimators_are_deterministic_by_default_and_random_with_none(estimator: type) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int) if estimator is LightregClassifier else x[:, 0] + 0.1 * rng.normal(size=60)
    assert estimator().random_state == 0
    first, second = (estimator(max_epochs=2, penalty=None).fit(x, y).coef_ for _ in range(2))
    np.testing.assert_array_equal(first, second)
    free = [estimator(max_epochs=2, penalty=None, random_state=None).fit(x, y).coef_ for _ in range(2)]
    assert not np.array_equal(free[0], free[1])


@pytest.mark.slow
def test_the_shipped_diabetes_run_reaches_least_squares(tmp_path: Path) -> None:
    """``python -m train data=diabetes`` at its shipped defaults (full batch, 100 epochs: data_training/diabetes_logistic.yaml)
    ends at the validation R² of scikit-learn's ordinary least squares on the data module's own split."""
    from sklearn.linear_model import LinearRegression

    proc = run_train("data=diabetes", "hydra.run.dir=run", *QUIET, cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    data = SklearnDataModule(name="diabetes", seed=0, standardize=False, standardize_target=False)
    data.setup("fit")
    ols = LinearRegression().fit(data.x_train.numpy(), data.y_train.numpy())
    ols_r2 = ols.score(data.x_val.numpy(), data.y_val.numpy())
    assert ols_r2 == pytest.approx(0.332, abs=1e-3)
    assert read_metrics(tmp_path / "run")["val/r2"] >= ols_r2 - 0.005
