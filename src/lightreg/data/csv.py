"""A table from CSV files: one column is the target, every other column a numeric feature."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lightreg.data.tabular import TabularData, TabularDataModule
from lightreg.tasks import TASKS
from lightreg.errors import UserError


def read_csv_table(path: str | Path, target: str, task: str | None) -> TabularData:
    """Read ``path`` (header row, comma-separated, numeric cells) into features and target.

    ``task=None`` infers it: integer targets with two values → ``binary``, a few integer values →
    ``multiclass`` (labels must be ``0..C-1``), anything else → ``regression``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CSV file not found: {str(path)!r} (set data.train_path / data.val_path to an existing file)")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise UserError(f"{path} is empty: it needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    if target not in header:
        raise UserError(f"target column {target!r} is not in {path}; columns: {', '.join(header)}")
    if not body:
        raise UserError(f"{path} has a header but no data rows")
    values = np.empty((len(body), len(header)))
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UserError(f"{path} line {i} has {len(row)} cells, the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise UserError(
                    f"{path} line {i}, column {header[j]!r}: {cell!r} is not a number (encode categories as numbers first)"
                ) from None
    t = header.index(target)
    x = np.delete(values, t, axis=1)
    y = values[:, t]
    task = task or _infer_task(y)
    if task not in TASKS:
        raise UserError(f"data.task must be one of {TASKS} or null, got {task!r}")
    if task != "regression":
        if not np.all(y == np.round(y)):
            raise UserError(f"target {target!r} has non-integer values; use data.task=regression or integer labels")
        y = y.astype(np.int64)
    return TabularData(x=x, y=y, feature_names=[h for h in header if h != target], task=task)


def _infer_task(y: np.ndarray) -> str:
    if np.all(y == np.round(y)):
        n_values = len(np.unique(y))
        if n_values == 2:
            return "binary"
        if n_values <= 50:
            return "multiclass"
    return "regression"


class CSVDataModule(TabularDataModule):
    """Train on ``train_path``; validate on ``val_path`` or on a seeded ``val_fraction`` split of it."""

    def __init__(
        self,
        train_path: str,
        target: str,
        val_path: str | None = None,
        task: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.train_path, self.val_path, self.target, self.task_override = train_path, val_path, target, task

    def load_train(self) -> TabularData:
        return read_csv_table(self.train_path, self.target, self.task_override)

    def load_val(self, train: TabularData) -> TabularData | None:
        if self.val_path is None:
            return None
        return read_csv_table(self.val_path, self.target, train.task)
