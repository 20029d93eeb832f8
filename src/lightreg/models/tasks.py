"""What a prediction task means for the output layer, the data loss and the metrics. No Lightning here."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import AUROC, Accuracy, AveragePrecision, MeanAbsoluteError, Metric, MetricCollection, R2Score
from torchmetrics.wrappers import LambdaInputTransformer

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
    # the target in the output's precision, at least float32 (a float64 model's loss stays float64; a bf16 output
    # does not round a regression target)
    target = target.to(torch.promote_types(output.dtype, torch.float32))
    if task == "binary":
        return F.binary_cross_entropy_with_logits(output.squeeze(-1), target)
    return F.mse_loss(output.squeeze(-1), target)


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


LINE_FIGURES = ("loss", "acc", "mae", "r2", "penalty")
"""The figures the one-line epoch summary shows (it keeps to 80 columns); every figure reaches the loggers and
``metrics.json``."""


def positive_probability(output: Tensor) -> Tensor:
    """``σ(logit)`` of a binary model's output, in float64 (float32 on Apple's MPS, which has no float64): a float32
    sigmoid rounds every logit above ≈ 17 to 1.0, which would tie the best-ranked samples of AUROC and average
    precision (float64 keeps them apart up to ≈ 36)."""
    return torch.sigmoid(output.reshape(-1).to(torch.float32 if output.device.type == "mps" else torch.float64))


def _fed(metric: Metric, transform: Callable[[Tensor], Tensor]) -> LambdaInputTransformer:
    return LambdaInputTransformer(metric, transform_pred=transform)


def task_metrics(task: str, num_classes: int | None) -> MetricCollection:
    """The epoch figures of a task, all updated with the model's raw output (logits, or values for regression) and
    the targets of :func:`target_for_metrics`; each metric is fed what it needs:

    - ``acc``: the fraction of correct hard labels (:func:`predictions`);
    - ``balanced_acc``: the mean over classes of each class's recall (torchmetrics' macro-averaged accuracy on the
      hard labels; sklearn's ``balanced_accuracy_score``): a model that always predicts one class scores ``1/C``
      (0.5 for binary) however imbalanced the classes are, while its ``acc`` is that class's frequency;
    - binary only, from the probability ``σ(logit)`` (:func:`positive_probability`), threshold-free: ``auroc``
      (area under the ROC curve, 0.5 = no ranking skill) and ``average_precision`` (area under the precision-recall
      curve of the positive class, label 1; its chance level is the positive frequency);
    - regression: ``mae`` and ``r2`` of the values.

    One collection per split; no compute groups (the wrapped metrics see different inputs)."""
    predicted = partial(predictions, task)  # hard labels, or the values of a regression
    if task == "multiclass":
        metrics: dict[str, Metric] = {
            "acc": _fed(Accuracy(task="multiclass", num_classes=num_classes, validate_args=False), predicted),
            "balanced_acc": _fed(
                Accuracy(task="multiclass", num_classes=num_classes, average="macro", validate_args=False), predicted
            ),
        }
    elif task == "binary":
        metrics = {
            "acc": _fed(Accuracy(task="binary", validate_args=False), predicted),
            "balanced_acc": _fed(
                Accuracy(task="multiclass", num_classes=2, average="macro", validate_args=False), predicted
            ),
            "auroc": _fed(AUROC(task="binary", validate_args=False), positive_probability),
            "average_precision": _fed(AveragePrecision(task="binary", validate_args=False), positive_probability),
        }
    else:
        metrics = {"mae": _fed(MeanAbsoluteError(), predicted), "r2": _fed(R2Score(), predicted)}
    return MetricCollection(metrics, compute_groups=False)


def target_for_metrics(task: str, target: Tensor) -> Tensor:
    """Targets in the dtype the metrics expect (integer labels for classification)."""
    return target.long() if task != "regression" else target.float()


__all__ = [
    "LINE_FIGURES",
    "data_loss",
    "intercept_only_output",
    "num_outputs",
    "positive_probability",
    "predictions",
    "target_for_metrics",
    "task_metrics",
]
