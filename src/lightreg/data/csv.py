"""A table from CSV files: one column is the target, the other columns (minus ``drop``) numeric features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lightreg.data.csv_format import columns_by_name, read_rows, read_text, resolve_delimiter, sniff_delimiter
from lightreg.data.tabular import TabularData, TabularDataModule
from lightreg.errors import UserError, listed, warn
from lightreg.task_kinds import TASKS

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
MAX_SAID_CLASSES = 10
"""Up to this many distinct integer target values are inferred as classes (the choice is said)."""
MAX_CLASSES = 50
"""Up to this many (and more than :data:`MAX_SAID_CLASSES`) integer values: counts or classes? The user decides."""
SHOWN_ROWS = 5


def _rows(lines: Sequence[int]) -> str:
    """``1 row (line 6)`` / ``3 rows (lines 4, 5, 11)``; the first few file lines."""
    shown = ", ".join(str(n) for n in lines[:SHOWN_ROWS]) + (", ..." if len(lines) > SHOWN_ROWS else "")
    return f"1 row (line {shown})" if len(lines) == 1 else f"{len(lines)} rows (lines {shown})"


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
    features: Sequence[str] | None = None,
) -> TabularData:
    """Read ``path`` (a header row, then one row per sample) into features and target.

    The file is UTF-8 (a byte-order mark is dropped); ``delimiter`` is one character or a name (``tab``, ``'\\t'``,
    ``comma``, ``semicolon``, ``pipe``, ``space``), ``None`` sniffs it from the first lines. Column names must be
    unique. Cells ``''``, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, ``?`` are missing: an error naming the rows,
    or those rows dropped with ``dropna=True``.

    ``task=None`` infers the task from the (complete) target column: strings → ``binary`` (2 labels) or
    ``multiclass``; integers: 2 values → ``binary``, 3..10 → ``multiclass``, 11..50 → an error asking for
    ``data.task`` (counts or classes?), more → ``regression``; other numbers → ``regression``. The multiclass and
    regression choices come with a one-line ``note`` (said at set-up). Classification labels of any kind are
    encoded as ``0..C-1`` in sorted order (``classes`` lists the original labels).

    A validation table passes the training table's ``classes`` (its label encoding) and ``features`` (its feature
    names): columns are matched by name and put in that order; a missing one is an error, extra ones are ignored
    with a warning.
    """
    path = Path(path)
    text = read_text(path)
    sep = resolve_delimiter(delimiter) or sniff_delimiter(text)
    header, body = read_rows(path, text, sep)
    if target not in header:
        hint = f" (read with delimiter {sep!r}; set data.delimiter)" if len(header) == 1 else ""
        raise UserError(f"target column {target!r} is not in {path}; columns: {listed(header)}{hint}")
    if target in drop:
        raise UserError(f"data.drop contains the target column {target!r}")
    if features is None:
        unknown = [c for c in drop if c not in header]
        if unknown:
            raise UserError(f"data.drop names columns not in {path}: {listed(unknown)}; columns: {listed(header)}")
    if not body:
        raise UserError(f"{path} has a header but no data rows")
    columns = _feature_columns(path, header, target, drop, features)
    if not columns:
        raise UserError(f"{path} has no feature column left besides the target {target!r} (data.drop={list(drop)})")
    t = header.index(target)
    x = np.empty((len(body), len(columns)))
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
        for m, j in enumerate(columns):
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
                f"{path}: missing values in {_rows(missing_rows)}, column(s) {listed(sorted(missing_cols))}; "
                "fill them in, or set data.dropna=true to drop those rows"
            )
        dropped = set(missing_rows)
        keep = np.array([line not in dropped for line, _ in body])
        if not keep.any():
            raise UserError(f"{path}: every row has a missing value; data.dropna=true leaves nothing to train on")
        warn(f"{path}: dropped {_rows(missing_rows)} with missing values (data.dropna=true)")
        x = x[keep]
        y_cells = [c for c, k in zip(y_cells, keep) if k]
    names = [header[j] for j in columns]
    return _encode_target(path, target, _labels(y_cells), task, classes, x, names)


def _feature_columns(
    path: Path, header: list[str], target: str, drop: Sequence[str], features: Sequence[str] | None
) -> list[int]:
    """The header positions of the feature columns: every column but the target and ``drop`` in file order, or,
    for a validation file, the training ``features`` by name, in the training order."""
    if features is None:
        return [j for j, h in enumerate(header) if h != target and h not in drop]
    columns, absent = columns_by_name(header, features)
    if absent:
        raise UserError(
            f"the validation file {path} lacks {len(absent)} training feature column(s): {listed(absent)}; columns "
            "are matched by name: add them, or leave them out of training too (data.drop)"
        )
    wanted = {*features, target, *drop}
    extra = [h for h in header if h not in wanted]
    if extra:
        warn(f"{path}: ignoring {len(extra)} column(s) that are not training features: {listed(extra)}")
    return columns


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
    note = None
    if task is None:
        task, note = _infer_task(target, labels, numeric)
    if task not in TASKS:
        raise UserError(f"data.task must be one of {TASKS} or null, got {task!r}")
    if task == "regression":
        if not numeric:
            bad = next(v for v in labels if not isinstance(v, float))
            raise UserError(f"target {target!r} in {path} has the non-numeric value {bad!r}; regression needs numbers")
        return TabularData(x=x, y=np.asarray(labels, dtype=np.float64), feature_names=names, task=task, note=note)
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
        n_rows = sum(v not in index for v in keyed)
        raise UserError(
            f"target {target!r} in {path} has {len(unknown)} label(s) that the training data does not: "
            f"{listed(unknown)} ({n_rows} rows); the model cannot predict them: remove those rows or add examples "
            f"to the training file (training classes: {listed([repr(c) for c in classes])})"
        )
    y = np.asarray([index[v] for v in keyed], dtype=np.int64)
    return TabularData(x=x, y=y, feature_names=names, task=task, classes=list(classes), note=note)


def _infer_task(target: str, labels: list[float | str], numeric: bool) -> tuple[str, str | None]:
    """The task a target column implies, and the one line that says why (``None`` where there is no doubt:
    text labels, two integer values)."""
    values = set(labels)
    if not numeric:
        return ("binary" if len(values) == 2 else "multiclass"), None
    if not all(float(v).is_integer() for v in labels):
        example = next(v for v in labels if not float(v).is_integer())
        return "regression", (
            f"target {target!r} has non-integer values (e.g. {example:g}) -> regression; "
            "for classes use integer or text labels"
        )
    if len(values) <= 2:
        return "binary", None
    seen = f"{len(values)} integer values ({int(min(values))}..{int(max(values))})"
    if len(values) <= MAX_SAID_CLASSES:
        return (
            "multiclass",
            f"target {target!r} has {seen} -> multiclass; set data.task=regression to fit them as numbers",
        )
    if len(values) <= MAX_CLASSES:
        raise UserError(
            f"target {target!r} has {seen}: counts or classes? set data.task=multiclass ({len(values)} classes) or "
            "data.task=regression (fit them as numbers)"
        )
    return "regression", f"target {target!r} has {seen} -> regression; set data.task=multiclass to fit them as classes"


class CSVDataModule(TabularDataModule):
    """Train on ``train_path``; validate on ``val_path`` or on a seeded ``val_fraction`` split of it.

    Args:
        train_path, val_path: CSV files with a header row.
        target: the target column.
        task: ``binary`` | ``multiclass`` | ``regression``; ``None`` infers it (see :func:`read_csv_table`; a
            multiclass or regression choice is said in one line at set-up).
        drop: columns to ignore (ids, free text), in the training and the validation file.
        delimiter: the cell separator: one character, or ``tab`` (also ``'\\t'``), ``comma``, ``semicolon``, ``pipe``,
            ``space``; ``None`` sniffs it among ``, ; TAB |`` from the first lines.
        dropna: drop rows with a missing value instead of stopping with an error.

    ``val_path``'s columns are matched to the training features by name (any order; extra columns are ignored with
    a warning, a missing one is an error).
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
        delimiter = resolve_delimiter(delimiter)
        if task is not None and task not in TASKS:
            raise UserError(f"data.task must be one of {', '.join(TASKS)} or null (infer it), got {task!r}")
        if isinstance(drop, str):
            drop = [drop]
        self.train_path, self.val_path, self.target, self.task_override = train_path, val_path, target, task
        self.drop, self.delimiter, self.dropna = list(drop or []), delimiter, bool(dropna)

    def _read(self, path: str, task: str | None, train: TabularData | None = None) -> TabularData:
        classes, features = (train.classes, train.feature_names) if train is not None else (None, None)
        return read_csv_table(path, self.target, task, self.drop, self.delimiter, self.dropna, classes, features)

    def load_train(self) -> TabularData:
        return self._read(self.train_path, self.task_override)

    def load_val(self, train: TabularData) -> TabularData | None:
        if self.val_path is None:
            return None
        return self._read(self.val_path, train.task, train)
