"""What a prediction task means for the output layer, the data loss and the metrics. No Lightning here."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Accuracy, MeanAbsoluteError, MetricCollection, R2Score

from lightreg.errors import UserError
from lightreg.task_kinds import check_task


def num_outputs(task: str, num_classes: int | None) -> int:
    """Width of the last layer: one logit for ``binary``, one value for ``regression``, C logits otherwise."""
    if check_task(task) == "multiclass":
        if num_classes is None or num_classes < 2:
            raise UserError(f"a multiclass task needs num_classes >= 2, got {num_classes!r}")
        return num_classes
    return 1


def data_loss(task: str, output: Tensor, target: Tensor) -> Tensor:
    """Batch-mean data loss: BCE-with-logits (binary), cross entropy (multiclass), MSE (regression)."""
    if task == "multiclass":
        return F.cross_entropy(output, target)
    if task == "binary":
        return F.binary_cross_entropy_with_logits(output.squeeze(-1), target.float())
    return F.mse_loss(output.squeeze(-1), target.float())


def intercept_only_output(task: str, target: Tensor, num_outputs: int) -> Tensor:
    """The constant output that minimizes the mean data loss on ``target`` (the intercept-only, or null, model), in
    the units the output layer fits: ``logit(ȳ)`` (binary), ``log p_k`` (multiclass: the class frequencies, so the
    softmax gives them back), ``ȳ`` (regression). Shape ``(num_outputs,)``, float64."""
    if task == "multiclass":
        counts = torch.bincount(target.long().reshape(-1), minlength=num_outputs).double()
        return (counts / counts.sum()).clamp_min(1e-12).log()
    mean = target.double().mean()
    if task == "binary":
        mean = mean.clamp(1e-6, 1 - 1e-6)
        return (mean / (1 - mean)).log().reshape(1)
    return mean.reshape(1)


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


__all__ = ["data_loss", "intercept_only_output", "num_outputs", "predictions", "target_for_metrics", "task_metrics"]
