"""A table from CSV files: one column is the target, the other columns (minus ``drop``) numeric features."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lightreg.data.tabular import TabularData, TabularDataModule
from lightreg.errors import UserError, warn
from lightreg.task_kinds import TASKS

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
DELIMITERS = ",;\t|"
MAX_CLASSES = 50
SHOWN_ROWS = 5


def _rows(lines: Sequence[int]) -> str:
    """``1 row (line 6)`` / ``3 rows (lines 4, 5, 11)``; the first few file lines."""
    shown = ", ".join(str(n) for n in lines[:SHOWN_ROWS]) + (", ..." if len(lines) > SHOWN_ROWS else "")
    return f"1 row (line {shown})" if len(lines) == 1 else f"{len(lines)} rows (lines {shown})"


def _sniff(text: str) -> str:
    """The delimiter of ``text``: one of ``, ; TAB |`` by :class:`csv.Sniffer`, else a comma."""
    try:
        return csv.Sniffer().sniff(text[:20000], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _labels(values: list[str]) -> list[float | str]:
    """Target cells as numbers when all of them are numbers, else as stripped strings."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return [v.strip() for v in values]


def read_csv_table(
    path: str | Path,
    target: str,
    task: str | None = None,
    drop: Sequence[str] = (),
    delimiter: str | None = None,
    dropna: bool = False,
    classes: Sequence[float | str] | None = None,
) -> TabularData:
    """Read ``path`` (a header row, then one row per sample) into features and target.

    Cells ``''``, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, ``?`` are missing: an error naming the rows, or those
    rows dropped with ``dropna=True``. ``task=None`` infers the task from the (complete) target column: strings or
    two values → ``binary`` / a few (<= 50) integer values → ``multiclass`` (classification labels of any kind are
    encoded as ``0..C-1`` in sorted order; ``classes`` lists the original labels), anything else → ``regression``.
    ``classes`` (from the training table) fixes the encoding of a validation table.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CSV file not found: {str(path)!r} (set data.train_path / data.val_path to an existing file)")
    text = path.read_text()
    sep = delimiter or _sniff(text)
    rows = [r for r in csv.reader(text.splitlines(), delimiter=sep)]
    if not rows:
        raise UserError(f"{path} is empty: it needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    body = [(i, r) for i, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if target not in header:
        hint = f" (read with delimiter {sep!r}; set data.delimiter)" if len(header) == 1 else ""
        raise UserError(f"target column {target!r} is not in {path}; columns: {', '.join(header)}{hint}")
    unknown = [c for c in drop if c not in header]
    if unknown:
        raise UserError(f"data.drop names columns not in {path}: {', '.join(unknown)}; columns: {', '.join(header)}")
    if target in drop:
        raise UserError(f"data.drop contains the target column {target!r}")
    if not body:
        raise UserError(f"{path} has a header but no data rows")
    features = [j for j, h in enumerate(header) if h != target and h not in drop]
    if not features:
        raise UserError(f"{path} has no feature column left besides the target {target!r} (data.drop={list(drop)})")
    t = header.index(target)
    x = np.empty((len(body), len(features)))
    y_cells: list[str] = []
    missing_rows: list[int] = []
    missing_cols: set[str] = set()
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise UserError(
                f"{path} line {line} has {len(row)} cells, the header has {len(header)} (delimiter {sep!r})"
            )
        y_cells.append(row[t].strip())
        incomplete = row[t].strip().lower() in MISSING
        if incomplete:
            missing_cols.add(target)
        for m, j in enumerate(features):
            cell = row[j].strip()
            if cell.lower() in MISSING:
                x[k, m] = np.nan
                incomplete = True
                missing_cols.add(header[j])
                continue
            try:
                x[k, m] = float(cell)
            except ValueError:
                raise UserError(
                    f"{path} line {line}, column {header[j]!r}: {cell!r} is not a number "
                    f"(encode categories as numbers first, or ignore the column with data.drop=[{header[j]}])"
                ) from None
        if incomplete:
            missing_rows.append(line)
    if missing_rows:
        if not dropna:
            raise UserError(
                f"{path}: missing values in {_rows(missing_rows)}, column(s) {', '.join(sorted(missing_cols))}; "
                "fill them in, or set data.dropna=true to drop those rows"
            )
        dropped = set(missing_rows)
        keep = np.array([line not in dropped for line, _ in body])
        if not keep.any():
            raise UserError(f"{path}: every row has a missing value; data.dropna=true leaves nothing to train on")
        warn(f"{path}: dropped {_rows(missing_rows)} with missing values (data.dropna=true)")
        x = x[keep]
        y_cells = [c for c, k in zip(y_cells, keep) if k]
    names = [header[j] for j in features]
    return _encode_target(path, target, _labels(y_cells), task, classes, x, names)


def _encode_target(
    path: Path,
    target: str,
    labels: list[float | str],
    task: str | None,
    classes: Sequence[float | str] | None,
    x: np.ndarray,
    names: list[str],
) -> TabularData:
    numeric = all(isinstance(v, float) for v in labels)
    task = task or _infer_task(labels, numeric)
    if task not in TASKS:
        raise UserError(f"data.task must be one of {TASKS} or null, got {task!r}")
    if task == "regression":
        if not numeric:
            bad = next(v for v in labels if not isinstance(v, float))
            raise UserError(f"target {target!r} in {path} has the non-numeric value {bad!r}; regression needs numbers")
        return TabularData(x=x, y=np.asarray(labels, dtype=np.float64), feature_names=names, task=task)
    if numeric and not all(float(v).is_integer() for v in labels):
        raise UserError(f"target {target!r} in {path} has non-integer values; use data.task=regression or class labels")
    found = sorted({int(v) for v in labels} if numeric else set(labels))  # type: ignore[type-var]
    if classes is None:
        if len(found) < 2:
            raise UserError(
                f"target {target!r} in {path} has a single class ({found[0]!r}): classification needs at least 2 "
                "classes in the training data"
            )
        if task == "binary" and len(found) != 2:
            raise UserError(
                f"data.task=binary but target {target!r} in {path} has {len(found)} classes; use multiclass"
            )
        classes = found
    index = {c: i for i, c in enumerate(classes)}
    keyed = [int(v) if numeric else v for v in labels]
    unknown = sorted({repr(v) for v in keyed if v not in index})
    if unknown:
        raise UserError(
            f"target {target!r} in {path} has labels the training data does not: {', '.join(unknown[:10])} "
            f"(training classes: {', '.join(map(repr, classes))})"
        )
    y = np.asarray([index[v] for v in keyed], dtype=np.int64)
    return TabularData(x=x, y=y, feature_names=names, task=task, classes=list(classes))


def _infer_task(labels: list[float | str], numeric: bool) -> str:
    n_values = len(set(labels))
    if not numeric:
        return "binary" if n_values == 2 else "multiclass"
    if all(float(v).is_integer() for v in labels):
        if n_values <= 2:
            return "binary"
        if n_values <= MAX_CLASSES:
            return "multiclass"
    return "regression"


class CSVDataModule(TabularDataModule):
    """Train on ``train_path``; validate on ``val_path`` or on a seeded ``val_fraction`` split of it.

    Args:
        train_path, val_path: CSV files with a header row.
        target: the target column.
        task: ``binary`` | ``multiclass`` | ``regression``; ``None`` infers it (see :func:`read_csv_table`).
        drop: columns to ignore (ids, free text).
        delimiter: the cell separator; ``None`` sniffs it among ``, ; TAB |``.
        dropna: drop rows with a missing value instead of stopping with an error.
    """

    def __init__(
        self,
        train_path: str,
        target: str,
        val_path: str | None = None,
        task: str | None = None,
        drop: Sequence[str] | None = None,
        delimiter: str | None = None,
        dropna: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
            raise UserError(
                f"data.delimiter must be one character (e.g. ';' or '\\t') or null to sniff it, got {delimiter!r}"
            )
        if isinstance(drop, str):
            drop = [drop]
        self.train_path, self.val_path, self.target, self.task_override = train_path, val_path, target, task
        self.drop, self.delimiter, self.dropna = list(drop or []), delimiter, bool(dropna)

    def _read(self, path: str, task: str | None, classes: list | None = None) -> TabularData:
        return read_csv_table(path, self.target, task, self.drop, self.delimiter, self.dropna, classes)

    def load_train(self) -> TabularData:
        return self._read(self.train_path, self.task_override)

    def load_val(self, train: TabularData) -> TabularData | None:
        if self.val_path is None:
            return None
        return self._read(self.val_path, train.task, train.classes)
