"""mode=exact on a convex model reaches scikit-learn's optimum: same objective (1e-3 relative) and same support."""

from __future__ import annotations

import warnings
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogistic

from lightreg.callbacks import regularizer
from lightreg.data import SklearnDataModule
from lightreg.models import LogisticRegression
from lightreg.solvers.full_batch import materialize
from lightreg.solvers.kkt import kkt_report


def _sklearn_objective(x: np.ndarray, y: np.ndarray, lam: float, ratio: float) -> tuple[float, np.ndarray]:
    """Objective ``mean log-loss + λ(ρ‖w‖₁ + (1−ρ)/2‖w‖²)`` and coefficients of saga at ``C = 1/(n·λ)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SkLogistic(C=1.0 / (len(y) * lam), l1_ratio=ratio, solver="saga", tol=1e-10, max_iter=100_000).fit(x, y)
    coef = model.coef_[0]
    z = x @ coef + model.intercept_[0]
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return loss + lam * (ratio * np.abs(coef).sum() + (1 - ratio) / 2 * np.square(coef).sum()), coef


@pytest.mark.parametrize(("penalty", "ratio"), [("l1", 1.0), ("elastic_net", 0.5)])
def test_exact_mode_matches_sklearn_on_breast_cancer(penalty: str, ratio: float) -> None:
    lam = 0.01
    dm = SklearnDataModule("breast_cancer", batch_size=None)
    dm.setup("fit")
    torch.manual_seed(0)
    model = LogisticRegression(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=partial(torch.optim.SGD, lr=0.1),
        print_epochs=False,
    )
    options = {"l1_ratio": ratio} if penalty == "elastic_net" else {}
    callback = regularizer(penalty, lam, mode="exact", **options)
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    report = kkt_report(model, materialize(dm.train_dataloader(), model.net.linear.weight), [callback])
    reference, coef = _sklearn_objective(dm.x_train.double().numpy(), dm.y_train.double().numpy(), lam, ratio)
    assert abs(report["full_objective"] - reference) <= 1e-3 * reference
    ours = model.net.linear.weight.detach().numpy()[0]
    assert np.array_equal(ours != 0, coef != 0)
    assert 0 < int((coef != 0).sum()) < coef.size
    assert report["kkt_violation"] < 1e-4
