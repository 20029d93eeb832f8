"""Base LightningDataModule for tabular data held in memory as tensors."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from typing_extensions import override

from lightreg.data.loader import TensorBatches
from lightreg.errors import UserError
from lightreg.task_kinds import TASKS


@dataclass(frozen=True)
class TabularData:
    """Features ``x`` (n, d), targets ``y`` (n,), column names, the task, and for classification the original label
    of each class index ``0..C-1`` (``None``: the labels are the indices)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    task: str
    classes: list | None = None


class TabularDataModule(L.LightningDataModule):
    """Load a table once, split it (seeded), standardize with train statistics, batch by slicing.

    Subclasses implement :meth:`load_train` (and optionally :meth:`load_val` when the source has its
    own validation split). After :meth:`setup` the module exposes what a model needs to size itself:
    ``input_shape``, ``num_classes`` (``None`` for regression), ``task`` and ``feature_names``, plus ``classes``
    (original class labels, or ``None``), ``feature_scale``: the per-feature ``(means, stds)`` of the training split
    that standardized the features (``None`` without ``standardize``), and ``target_scale``: ``(mean, std)`` of the
    training targets for regression with ``standardize_target`` (else ``None``). Targets stay in their own units; a
    :class:`~lightreg.models.LightregModule` reads ``target_scale`` and fits ``(y - mean) / std``.

    Args:
        batch_size: samples per step; ``None`` = full batch.
        val_fraction: share of the rows held out for validation when there is no separate split.
        standardize: scale every feature to zero mean and unit variance (train-split statistics).
        standardize_target: regression only: the model fits the target standardized with train-split statistics
            (its predictions and ``mae``/``r2`` stay in the target's units).
        seed: seed of the split and of the shuffling.
    """

    def __init__(
        self,
        batch_size: int | None = 64,
        val_fraction: float = 0.2,
        standardize: bool = True,
        standardize_target: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0
        ):
            raise UserError(f"data.batch_size must be a positive integer or null (full batch), got {batch_size!r}")
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"data.val_fraction must be in (0, 1), got {val_fraction!r}")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.standardize = standardize
        self.standardize_target = standardize_target
        self.seed = seed
        self.x_train: torch.Tensor | None = None

    @abstractmethod
    def load_train(self) -> TabularData:
        """Return the whole training table (split off validation rows unless :meth:`load_val` returns one)."""

    def load_val(self, train: TabularData) -> TabularData | None:
        """Return a separate validation table (same columns as ``train``), or ``None`` to split ``train``."""
        return None

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.x_train is not None:
            return
        train = self.load_train()
        _check_table(train, "training")
        val = self.load_val(train)
        if val is None:
            stratify = train.y if train.task != "regression" else None
            x_tr, x_va, y_tr, y_va = train_test_split(
                train.x, train.y, test_size=self.val_fraction, random_state=self.seed, stratify=stratify
            )
        else:
            _check_table(val, "validation")
            if val.x.shape[1] != train.x.shape[1]:
                raise UserError(f"validation data has {val.x.shape[1]} features, training data {train.x.shape[1]}")
            x_tr, y_tr, x_va, y_va = train.x, train.y, val.x, val.y
        self.feature_scale: tuple[list[float], list[float]] | None = None
        if self.standardize:
            mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
            std[std == 0] = 1.0
            x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
            self.feature_scale = (mean.tolist(), std.tolist())
        self.task = train.task
        self.feature_names = list(train.feature_names)
        self.classes = train.classes
        self.num_classes = None if train.task == "regression" else int(np.max(train.y)) + 1
        if train.classes is not None:
            self.num_classes = len(train.classes)
        self.target_scale = _target_scale(y_tr) if train.task == "regression" and self.standardize_target else None
        if train.task != "regression" and len(np.unique(y_tr)) < 2:
            raise UserError(
                f"the training split has a single class ({np.unique(y_tr)[0]}): classification needs at least 2 "
                "classes; check the target column (or data.task=regression)"
            )
        y_dtype = torch.float32 if train.task in ("binary", "regression") else torch.long
        self.x_train = torch.as_tensor(x_tr, dtype=torch.float32)
        self.y_train = torch.as_tensor(y_tr, dtype=y_dtype)
        self.x_val = torch.as_tensor(x_va, dtype=torch.float32)
        self.y_val = torch.as_tensor(y_va, dtype=y_dtype)
        self.input_shape = tuple(self.x_train.shape[1:])

    @override
    def train_dataloader(self) -> TensorBatches:
        return TensorBatches(self.x_train, self.y_train, batch_size=self.batch_size, shuffle=True, seed=self.seed)

    @override
    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(self.x_val, self.y_val, batch_size=self.batch_size)


def _target_scale(y: np.ndarray) -> tuple[float, float]:
    """``(mean, std)`` of the training targets; a constant target keeps std 1."""
    std = float(np.std(y))
    return float(np.mean(y)), std if std > 0 else 1.0


def _check_table(table: TabularData, which: str) -> None:
    if table.task not in TASKS:
        raise UserError(f"task must be one of {TASKS}, got {table.task!r}")
    if table.x.ndim != 2 or table.x.shape[0] == 0 or table.x.shape[1] == 0:
        raise UserError(f"the {which} data is empty (shape {table.x.shape}); it needs at least one row and one feature")
    if table.x.shape[0] != table.y.shape[0]:
        raise UserError(f"the {which} data has {table.x.shape[0]} rows of features but {table.y.shape[0]} targets")
    if not np.isfinite(table.x).all():
        rows = np.nonzero(~np.isfinite(table.x).all(axis=1))[0]
        raise UserError(
            f"the {which} features contain NaN or infinite values in {len(rows)} rows (row indices "
            f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}); impute or drop them first"
        )
    if not np.isfinite(np.asarray(table.y, dtype=np.float64)).all():
        raise UserError(f"the {which} targets contain NaN or infinite values; drop those rows first")
    if table.task != "regression" and np.min(table.y) < 0:
        raise UserError(f"class labels must be 0..C-1, got {np.min(table.y)} in the {which} data")
