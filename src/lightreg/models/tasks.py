"""What a prediction task means for the output layer, the data loss and the metrics. No Lightning here."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

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
    return torch.sigmoid(output.reshape(-1).to(wide_float(output.device)))


def wide_float(device: torch.device | str | None) -> torch.dtype:
    """The dtype of summed epoch states: float64 whatever the model's precision, so every DDP rank (one that saw no
    row included) all-reduces the same dtype and large sums keep their digits; float32 on Apple's MPS (no float64)."""
    return torch.float32 if torch.device(device or "cpu").type == "mps" else torch.float64


def _same(tensor: Tensor) -> Tensor:
    return tensor


class EpochFigures:
    """The epoch figures of one split (``prefix`` ``"train/"`` or ``"val/"``) from states summed over its batches, and
    over DDP ranks once per epoch: a confusion count for classification, four sums and a count for regression. Each figure equals
    torchmetrics' on the epoch's rows (the metric named beside it); every batch only hands over its raw output (logits,
    or values for regression) and targets, folded into the states every :attr:`FOLD_ROWS` rows and at the epoch end.

    - ``acc``: the fraction of correct hard labels (:func:`predictions`): ``trace(M) / ΣM`` of the confusion count
      ``M[target, predicted]`` (``Accuracy``, micro);
    - ``balanced_acc``: the mean over classes of each class's recall ``M_kk / Σ_j M_kj``, over the classes that occur
      as a target or a prediction (``Accuracy(average="macro")``; sklearn's ``balanced_accuracy_score``): a model that
      always predicts one class scores ``1/C`` (0.5 for binary) however imbalanced the classes are, while its ``acc``
      is that class's frequency;
    - binary only, from the probability ``σ(logit)`` (:func:`positive_probability`) of every row, threshold-free:
      ``auroc`` (area under the ROC curve, 0.5 = no ranking skill) and ``average_precision`` (area under the
      precision-recall curve of the positive class, label 1; its chance level is the positive frequency);
    - regression, from ``Σ|e|``, ``Σy``, ``Σy²``, ``Σe²`` and ``n`` with ``e = y - ŷ``: ``mae = Σ|e| / n`` and
      ``r2 = 1 - Σe² / (Σy² - (Σy)²/n)`` (1 when ``Σe² ≈ 0``, 0 when only the total is ≈ 0: ``R2Score``).
    """

    FOLD_ROWS = 1 << 16
    """Rows handed over before they are folded into the states (bounds the memory of an epoch's outputs)."""

    def __init__(self, task: str, num_classes: int | None, prefix: str) -> None:
        self.task = check_task(task)
        self.prefix = prefix
        if self.task == "regression":
            self.classes = 0
        else:
            self.classes = 2 if self.task == "binary" else num_outputs(self.task, num_classes)
        self._pending: list[tuple[Tensor, Tensor]] = []
        self._pending_rows = 0
        self._counts: Tensor | None = None  # int64: the flattened confusion count (classification), or [n]
        self._sums: Tensor | None = None  # regression: Σ|e|, Σy, Σy², Σe²
        self._scores: list[tuple[Tensor, Tensor]] = []  # binary: (σ(logit), y) of every row, for auroc and AP

    def update(self, output: Tensor, target: Tensor) -> None:
        """Hand over one batch's raw output and targets (no device work until the next fold)."""
        self._pending.append((output.detach(), target))
        self._pending_rows += target.shape[0]
        if self._pending_rows >= self.FOLD_ROWS:
            self._fold()

    def _fold(self) -> None:
        if not self._pending:
            return
        output, target = (torch.cat(part) for part in zip(*self._pending))
        self._pending.clear()
        self._pending_rows = 0
        target = target_for_metrics(self.task, target)
        predicted = predictions(self.task, output)
        if self.task == "regression":
            error = target - predicted
            error, target = error.to(wide_float(target.device)), target.to(wide_float(target.device))
            sums = torch.stack((error.abs().sum(0), target.sum(0), (target * target).sum(0), (error * error).sum(0)))
            counts = torch.tensor([target.shape[0]], device=target.device)
        else:
            counts = _bincount(target * self.classes + predicted, self.classes**2)
            sums = None
            if self.task == "binary":
                self._scores.append((positive_probability(output), target))
        self._counts = counts if self._counts is None else self._counts + counts
        if sums is not None:
            self._sums = sums if self._sums is None else self._sums + sums

    def compute(
        self,
        device: torch.device | str | None = None,
        sum_ranks: Callable[[Tensor], Tensor] = _same,
        gather_ranks: Callable[[Tensor], Tensor] = _same,
    ) -> dict[str, Tensor]:
        """The figures (0-dim tensors, keys with the prefix) of the rows handed over since :meth:`reset`, over every
        rank: ``sum_ranks`` sums a state over the ranks (one all-reduce per state tensor), ``gather_ranks`` concatenates
        a binary split's per-row scores (both the identity on one process); ``device`` holds the zero states of a
        rank that saw no row."""
        self._fold()
        # a rank that saw no row sums zero states: the same collectives as the other ranks
        size = 1 if self.task == "regression" else self.classes**2
        counts = sum_ranks(
            self._counts if self._counts is not None else torch.zeros(size, dtype=torch.long, device=device)
        )
        if self.task == "regression":
            zeros = torch.zeros(4, dtype=wide_float(device), device=device)
            sums = sum_ranks(self._sums if self._sums is not None else zeros)
            return {self.prefix + k: v for k, v in _regression_figures(sums, counts[0], self.prefix).items()}
        figures = _label_figures(counts.reshape(self.classes, self.classes))
        if self.task == "binary":
            empty = (
                torch.zeros(0, dtype=wide_float(device), device=device),
                torch.zeros(0, dtype=torch.long, device=device),
            )
            p, y = (gather_ranks(torch.cat(part)) for part in zip(*(self._scores or [empty])))
            figures["auroc"] = binary_auroc(p, y, validate_args=False)
            figures["average_precision"] = binary_average_precision(p, y, validate_args=False)
        return {self.prefix + k: v for k, v in figures.items()}

    def reset(self) -> None:
        """Forget the rows handed over (the start of an epoch)."""
        self._pending.clear()
        self._pending_rows = 0
        self._counts = self._sums = None
        self._scores.clear()


def _bincount(index: Tensor, size: int) -> Tensor:
    """``torch.bincount`` with ``size`` bins (computed on the CPU for Apple's MPS)."""
    if index.device.type == "mps":
        return torch.bincount(index.cpu(), minlength=size).to(index.device)
    return torch.bincount(index, minlength=size)


def _safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` in floating point, 0 where ``den`` is 0 (torchmetrics' rule)."""
    num = num if num.is_floating_point() else num.float()
    den = den if den.is_floating_point() else den.float()
    return torch.where(den != 0, num / den, num.new_zeros(()))


def _label_figures(confusion: Tensor) -> dict[str, Tensor]:
    """``acc`` and ``balanced_acc`` of a confusion count ``M[target, predicted]`` (int64, C × C)."""
    hits = confusion.diagonal()
    support, predicted = confusion.sum(1), confusion.sum(0)
    recall = _safe_divide(hits, support)
    weights = torch.ones_like(recall)
    weights[support + predicted == 0] = 0.0  # a class that is neither a target nor a prediction does not count
    return {
        "acc": _safe_divide(hits.sum(), support.sum()),
        "balanced_acc": _safe_divide(weights * recall, weights.sum(-1, keepdim=True)).sum(-1),
    }


def _regression_figures(sums: Tensor, n: Tensor, prefix: str) -> dict[str, Tensor]:
    """``mae`` and ``r2`` of the summed ``Σ|e|, Σy, Σy², Σe²`` over ``n`` rows."""
    if int(n) < 2:
        raise UserError(
            f"the {prefix.rstrip('/')} split has {int(n)} row(s) and R² needs at least 2: give it more rows"
        )
    abs_error, total, total_sq, rss = sums
    tss = total_sq - total * (total / n)
    rss_zero = torch.isclose(rss, torch.zeros_like(rss), atol=1e-4)
    tss_zero = torch.isclose(tss, torch.zeros_like(tss), atol=1e-4)
    r2 = torch.where(rss_zero, torch.ones_like(rss), torch.where(tss_zero, torch.zeros_like(rss), 1 - rss / tss))
    return {"mae": abs_error / n, "r2": r2}


def target_for_metrics(task: str, target: Tensor) -> Tensor:
    """Targets in the dtype the metrics expect (integer labels for classification)."""
    return target.long() if task != "regression" else target.float()


__all__ = [
    "LINE_FIGURES",
    "EpochFigures",
    "data_loss",
    "intercept_only_output",
    "num_outputs",
    "positive_probability",
    "predictions",
    "target_for_metrics",
]
