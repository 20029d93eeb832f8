"""The epoch figures from summed states (a confusion count, four sums and a count) equal torchmetrics' metrics on the
epoch's rows: on one process, with an uneven last batch, folded in parts, and summed over two simulated DDP ranks."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import AUROC, Accuracy, AveragePrecision, MeanAbsoluteError, R2Score

from lightreg.errors import UserError
from lightreg.models.tasks import EpochFigures, positive_probability, predictions


def _reference(task: str, num_classes: int | None, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The torchmetrics figures of the rows (one update with all of them); regression's sums in float64, as the
    epoch states keep them."""
    labels = predictions(task, output)
    if task == "regression":
        labels, values = labels.double(), target.double()
        return {"mae": float(MeanAbsoluteError()(labels, values)), "r2": float(R2Score()(labels, values))}
    classes = 2 if task == "binary" else num_classes
    acc = Accuracy(task="binary") if task == "binary" else Accuracy(task="multiclass", num_classes=classes)
    figures = {
        "acc": float(acc(labels, target.long())),
        "balanced_acc": float(Accuracy(task="multiclass", num_classes=classes, average="macro")(labels, target.long())),
    }
    if task == "binary":
        p = positive_probability(output)
        figures["auroc"] = float(AUROC(task="binary")(p, target.long()))
        figures["average_precision"] = float(AveragePrecision(task="binary")(p, target.long()))
    return figures


def _data(task: str, rows: int = 203) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    generator = torch.Generator().manual_seed(3)
    if task == "regression":
        target = torch.randn(rows, generator=generator) * 3 + 1
        return (target + torch.randn(rows, generator=generator)).reshape(-1, 1), target, None
    classes = 2 if task == "binary" else 5
    # multiclass: the last class never occurs as a target (it may be predicted)
    target = torch.randint(0, 2 if task == "binary" else classes - 1, (rows,), generator=generator)
    output = torch.randn(rows, 1 if task == "binary" else classes, generator=generator)
    output = output + (2 * target.reshape(-1, 1) - 1 if task == "binary" else torch.nn.functional.one_hot(target, 5))
    return output, target, None if task == "binary" else classes


def _batches(output: torch.Tensor, target: torch.Tensor, size: int = 32):
    """Batches of ``size`` rows, the last one shorter (203 = 6 × 32 + 11)."""
    return list(zip(output.split(size), target.split(size)))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_figures_equal_torchmetrics_with_an_uneven_last_batch(task: str) -> None:
    output, target, classes = _data(task)
    figures = EpochFigures(task, classes, "train/")
    for batch in _batches(output, target):
        figures.update(*batch)
    got = {k: float(v) for k, v in figures.compute().items()}
    expected = {f"train/{k}": v for k, v in _reference(task, classes, output, target).items()}
    assert list(got) == list(expected)
    if task == "regression":  # float64 sums against torchmetrics' own formulas (its MAE answers in float32)
        assert got == pytest.approx(expected, rel=1e-7, abs=1e-12)
    else:
        assert got == expected  # the same counts on the same rows: the same numbers


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_folded_parts_and_two_ranks_give_the_one_process_figures(task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows folded into the states every 50 (bounded memory), and the batches dealt to two ranks whose states are
    summed (and binary scores gathered) as the all-reduce does: the figures of all the rows."""
    output, target, classes = _data(task)
    expected = _reference(task, classes, output, target)
    monkeypatch.setattr(EpochFigures, "FOLD_ROWS", 50)
    ranks = [EpochFigures(task, classes, "val/") for _ in range(2)]
    for i, batch in enumerate(_batches(output, target)):
        ranks[i % 2].update(*batch)
    other: list[torch.Tensor] = []
    rows: list[torch.Tensor] = []
    ranks[1].compute(sum_ranks=lambda t: other.append(t) or t, gather_ranks=lambda t: rows.append(t) or t)
    got = ranks[0].compute(sum_ranks=lambda t: t + other.pop(0), gather_ranks=lambda t: torch.cat((t, rows.pop(0))))
    assert {k.removeprefix("val/"): float(v) for k, v in got.items()} == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_reset_forgets_the_rows_and_a_class_never_seen_does_not_count() -> None:
    figures = EpochFigures("multiclass", 4, "val/")
    figures.update(torch.eye(4)[[0, 0, 1, 1]] * 5, torch.tensor([0, 0, 1, 0]))
    figures.reset()
    figures.update(torch.eye(4)[[0, 1, 1, 2]] * 5, torch.tensor([0, 1, 2, 2]))
    got = {k: float(v) for k, v in figures.compute().items()}
    # class 3 is neither a target nor a prediction: balanced accuracy is the mean of 1, 1, 0.5 over classes 0-2
    assert got == pytest.approx({"val/acc": 0.75, "val/balanced_acc": (1 + 1 + 0.5) / 3})


def test_r2_of_a_single_row_is_one_line() -> None:
    figures = EpochFigures("regression", None, "val/")
    figures.update(torch.tensor([[1.0]]), torch.tensor([2.0]))
    with pytest.raises(UserError, match="val split has 1 row"):
        figures.compute()


def test_every_rank_all_reduces_its_sums_in_one_dtype_whatever_the_model_precision() -> None:
    """A float32 model, a float64 one (``trainer.precision=64``) and a rank that saw no row all hand the same dtype to
    the all-reduce (a mismatch there fails or hangs the collective)."""
    reduced: list[torch.dtype] = []

    def record(states: torch.Tensor) -> torch.Tensor:
        reduced.append(states.dtype)
        return states

    for dtype in (torch.float32, torch.float64):
        figures = EpochFigures("regression", None, "val/")
        figures.update(torch.randn(4, 1, dtype=dtype), torch.randn(4, dtype=dtype))
        figures.compute(sum_ranks=record)
    with pytest.raises(UserError, match="0 row"):  # alone, a split without rows is an error, after its collectives
        EpochFigures("regression", None, "val/").compute(sum_ranks=record)
    assert len(reduced) == 6 and set(reduced[1::2]) == {torch.float64}, reduced
