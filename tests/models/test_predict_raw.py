"""A trained model carries its data: loaded from its checkpoint, it predicts right on raw rows (the features as the
data set gives them, before the training split's standardization), for binary, multiclass and regression data,
standardized or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightreg.data import SklearnDataModule
from lightreg.errors import UserError
from lightreg.models import LogisticRegression

from helpers import train_in_process

DATASETS = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}


@pytest.mark.slow
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("task", sorted(DATASETS))
def test_checkpoint_predicts_raw_rows_as_validation_measured(tmp_path: Path, task: str, standardize: bool) -> None:
    flag = str(standardize).lower()
    metrics = train_in_process(
        tmp_path,
        f"data={DATASETS[task]}",
        f"data.standardize={flag}",
        "+penalty=l1",
        "lambda=0.001",
        "trainer.max_epochs=3",
        "logger=none",
        "~callbacks.progress_bar",
        "model.print_epochs=false",
    )
    model = LogisticRegression.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu")
    raw = SklearnDataModule(name=DATASETS[task], seed=0, standardize=False, standardize_target=False)
    raw.setup("fit")  # the same split, features as the data set gives them
    predicted = np.asarray(model.predict_labels(raw.x_val.numpy()))
    truth = raw.y_val.numpy()
    if task == "regression":
        assert np.mean(np.abs(predicted - truth)) == pytest.approx(metrics["val/mae"], rel=1e-4)
        with pytest.raises(UserError, match="predict_proba is for classifiers"):
            model.predict_proba(raw.x_val)
        return
    assert np.mean(predicted == truth) == pytest.approx(metrics["val/acc"], abs=1.5 / len(truth))
    proba = model.predict_proba(raw.x_val)
    assert proba.shape == (len(truth), max(2, model.num_outputs))
    assert torch.allclose(proba.sum(dim=1), torch.ones(len(truth)), atol=1e-5)
    assert np.array_equal(proba.argmax(dim=1).numpy(), predicted)


def test_the_feature_scale_is_checked_against_the_model() -> None:
    with pytest.raises(UserError, match="feature_scale holds 2 means"):
        LogisticRegression(input_shape=(3,), num_classes=2, task="binary", feature_scale=([0.0, 0.0], [1.0, 1.0]))
    model = LogisticRegression(input_shape=(2,), num_classes=2, task="binary", feature_scale=([1.0, 2.0], [2.0, 4.0]))
    assert torch.equal(model.prepare_inputs([[3.0, 6.0]]), torch.tensor([[1.0, 1.0]]))
    with pytest.raises(UserError, match="reads 2 input features per row, got rows of 3"):
        model.prepare_inputs([[1.0, 2.0, 3.0]])
