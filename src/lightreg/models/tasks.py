"""What a prediction task means for the output layer, the data loss and the metrics. No Lightning here."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Accuracy, MeanAbsoluteError, MetricCollection, R2Score

from lightreg.tasks import check_task


def num_outputs(task: str, num_classes: int | None) -> int:
    """Width of the last layer: one logit for ``binary``, one value for ``regression``, C logits otherwise."""
    if check_task(task) == "multiclass":
        if num_classes is None or num_classes < 2:
            raise ValueError(f"a multiclass task needs num_classes >= 2, got {num_classes!r}")
        return num_classes
    return 1


def data_loss(task: str, output: Tensor, target: Tensor) -> Tensor:
    """Batch-mean data loss: BCE-with-logits (binary), cross entropy (multiclass), MSE (regression)."""
    if task == "multiclass":
        return F.cross_entropy(output, target)
    if task == "binary":
        return F.binary_cross_entropy_with_logits(output.squeeze(-1), target.float())
    return F.mse_loss(output.squeeze(-1), target.float())


def predictions(task: str, output: Tensor) -> Tensor:
    """Hard labels for classification (``logit > 0`` / argmax), the values themselves for regression."""
    if task == "multiclass":
        return output.argmax(dim=-1)
    if task == "binary":
        return (output.squeeze(-1) > 0).long()
    return output.squeeze(-1)


def task_metrics(task: str, num_classes: int | None) -> MetricCollection:
    """``acc`` for classification; ``mae`` and ``r2`` for regression."""
    if task == "multiclass":
        return MetricCollection({"acc": Accuracy(task="multiclass", num_classes=num_classes, validate_args=False)})
    if task == "binary":
        return MetricCollection({"acc": Accuracy(task="binary", validate_args=False)})
    return MetricCollection({"mae": MeanAbsoluteError(), "r2": R2Score()})


def target_for_metrics(task: str, target: Tensor) -> Tensor:
    """Targets in the dtype the metrics expect (integer labels for classification)."""
    return target.long() if task != "regression" else target.float()


__all__ = ["data_loss", "num_outputs", "predictions", "target_for_metrics", "task_metrics"]
