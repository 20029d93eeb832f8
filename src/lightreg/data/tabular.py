"""Base LightningDataModule for tabular data held in memory as tensors."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from sklearn.model_selection import train_test_split
from typing_extensions import override

from lightreg.data.loader import TensorBatches
from lightreg.errors import UserError, listed, warn
from lightreg.task_kinds import TASKS


@rank_zero_only
def _say(line: str) -> None:
    """One ``lightreg: data: ...`` line on stdout (global rank zero only)."""
    print(f"lightreg: data: {line}")


@dataclass(frozen=True)
class TabularData:
    """Features ``x`` (n, d), targets ``y`` (n,), column names, the task, and for classification the original label
    of each class index ``0..C-1`` (``None``: the labels are the indices); ``note``: how the task was inferred, said
    once at :meth:`TabularDataModule.setup` (``None``: nothing to say)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    task: str
    classes: list | None = None
    note: str | None = None


class TabularDataModule(L.LightningDataModule):
    """Load a table once, split it (seeded), standardize with train statistics, batch by slicing.

    Subclasses implement :meth:`load_train` (and optionally :meth:`load_val` when the source has its
    own validation split). After :meth:`setup` the module exposes what a model needs to size itself:
    ``input_shape``, ``num_classes`` (``None`` for regression), ``task`` and ``feature_names``, plus ``classes``
    (original class labels, or ``None``), ``feature_scale``: the per-feature ``(means, stds)`` of the training split
    that standardized the features (``None`` without ``standardize``), and ``target_scale``: ``(mean, std)`` of the
    training targets for regression with ``standardize_target`` (else ``None``). Targets stay in their own units; a
    :class:`~lightreg.models.LightregModule` reads ``target_scale`` and fits ``(y - mean) / std``.

    Without a separate validation table, classification rows are split stratified by class; a class with a single
    row stays in training, and a split too small for every class is drawn at random keeping a training row of each
    (both warned; see :func:`_class_split`). A table's ``note`` (how its task was inferred) is printed once, as
    ``lightreg: data: ...``.

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
        if train.note:
            _say(train.note)
        _check_table(train, "training")
        val = self.load_val(train)
        if val is None:
            x_tr, x_va, y_tr, y_va = self._split(train)
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
        if train.task != "regression":
            _check_training_classes(y_tr, self.num_classes, train.classes)
        y_dtype = torch.float32 if train.task in ("binary", "regression") else torch.long
        self.x_train = torch.as_tensor(x_tr, dtype=torch.float32)
        self.y_train = torch.as_tensor(y_tr, dtype=y_dtype)
        self.x_val = torch.as_tensor(x_va, dtype=torch.float32)
        self.y_val = torch.as_tensor(y_va, dtype=y_dtype)
        self.input_shape = tuple(self.x_train.shape[1:])

    def _split(self, train: TabularData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``x_train, x_val, y_train, y_val``: a seeded ``val_fraction`` split, stratified by class for
        classification (:func:`_class_split` where scikit-learn cannot stratify)."""
        n_test = int(np.ceil(self.val_fraction * len(train.y)))  # train_test_split's own rounding
        if n_test >= len(train.y):
            raise UserError(
                f"{len(train.y)} row(s) with data.val_fraction={self.val_fraction}: no row is left for training; "
                "add rows, lower data.val_fraction, or give a validation file (data.val_path)"
            )
        split = dict(test_size=self.val_fraction, random_state=self.seed)
        if train.task == "regression":
            return train_test_split(train.x, train.y, **split)
        labels, counts = np.unique(train.y, return_counts=True)
        if counts.min() >= 2 and min(n_test, len(train.y) - n_test) >= len(labels):
            return train_test_split(train.x, train.y, stratify=train.y, **split)
        tr, va = _class_split(train.y, self.val_fraction, self.seed, train.classes)
        return train.x[tr], train.x[va], train.y[tr], train.y[va]

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


def _class_split(y: np.ndarray, val_fraction: float, seed: int, classes: list | None) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices for class labels ``y`` that ``train_test_split`` cannot stratify.

    A class with a single row cannot be in both splits. Its row goes to training: there it tells the model the
    class exists, while in validation it would be a label the model was never shown, and a plain random split
    would put it there ``val_fraction`` of the time, so whether the model ever saw the class would depend on the
    seed. The other rows are split stratified as usual; a warning names the classes validation does not measure.
    When the validation split is too small to hold a row of every class, the rows are split at random, keeping
    one (seeded) row of every class in training (warned)."""
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts < 2]
    rest = np.flatnonzero(~np.isin(y, rare))
    if not len(rest):
        raise UserError(
            f"every class has a single row ({len(y)} rows): none is left for validation; add rows or give a "
            "validation file (data.val_path)"
        )
    if len(rare):
        warn(
            f"{len(rare)} class(es) with a single row: {listed([repr(_label(classes, c)) for c in rare])}; kept in "
            "the training split only, so validation does not measure them (add rows, or give data.val_path)"
        )
    n_labels, n_test = len(labels) - len(rare), int(np.ceil(val_fraction * len(rest)))
    if min(n_test, len(rest) - n_test) >= n_labels:
        tr, va = train_test_split(rest, test_size=val_fraction, random_state=seed, stratify=y[rest])
    else:
        warn(
            f"a validation split of {n_test} row(s) cannot hold each of the {n_labels} classes: split at random, "
            "keeping a training row of every class (give data.val_path, or more rows)"
        )
        order = np.random.default_rng(seed).permutation(rest)
        reserved = np.zeros(len(order), dtype=bool)
        reserved[np.unique(y[order], return_index=True)[1]] = True
        va = order[~reserved][:n_test]
        tr = np.setdiff1d(rest, va)
    return np.concatenate([tr, np.flatnonzero(np.isin(y, rare))]), va


def _label(classes: list | None, index: object) -> object:
    """The original label of class ``index`` (the index itself without ``classes``)."""
    return classes[int(index)] if classes is not None else int(index)


def _check_training_classes(y_train: np.ndarray, num_classes: int, classes: list | None) -> None:
    """Every class has a training row: a model cannot learn a class it is never shown."""
    present = np.unique(y_train)
    if len(present) < 2:
        raise UserError(
            f"the training split has a single class ({_label(classes, present[0])!r}): classification needs at "
            "least 2 classes; check the target column (or data.task=regression)"
        )
    seen = set(present.tolist())
    absent = [repr(_label(classes, c)) for c in range(num_classes) if c not in seen]
    if absent:
        raise UserError(
            f"{len(absent)} class(es) have no row in the training split: {listed(absent)}; the model could never "
            "predict them: add rows, lower data.val_fraction, or give a validation file (data.val_path)"
        )


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
