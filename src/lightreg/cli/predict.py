"""``lightreg predict RUN_DIR DATA -o OUT.csv``: predictions of a run's trained model on new raw inputs.

DATA is a CSV (the model's feature columns matched by name, in any order; every other column is passed through to
OUT unchanged) or an ``.npy`` array of samples in the training shape (for an image model: float images normalized
as its data module does, ``(x/255 - mean_c) / std_c``; that normalization is not part of the model). OUT holds the input's columns (for an ``.npy``:
``row``, the sample's index), ``prediction`` (the original class label, or the value in the target's units) and, for
a classifier, one ``proba:<label>`` column per class.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from lightreg.cli.trained import load_trained
from lightreg.data.csv import MISSING
from lightreg.data.csv_format import read_rows, read_text, sniff_delimiter
from lightreg.data.tabular import listed
from lightreg.errors import UserError
from lightreg.models.standalone import StandaloneModel

PREDICTION = "prediction"
PROBA = "proba:"
BATCH = 4096


def csv_inputs(path: Path, model: StandaloneModel) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The header, the data rows (cells as read) and the model's raw inputs ``(n, d)`` from CSV ``path``: each of
    the model's ``feature_names`` by name; a missing column or a cell that is not a number is a one-line error."""
    text = read_text(path)
    sep = sniff_delimiter(text)
    header, body = read_rows(path, text, sep)
    if not body:
        raise UserError(f"{path} has a header but no data rows")
    names = model.feature_names
    if names is None:
        raise UserError("the model has no feature names (its data gave none): predict from an .npy of raw rows")
    position = {h: j for j, h in enumerate(header)}
    absent = [n for n in names if n not in position]
    if absent:
        raise UserError(
            f"{path} lacks {len(absent)} of the model's {len(names)} feature column(s): {listed(absent, 5)}; columns are "
            "matched by name (any order)"
        )
    taken = [n for n in (PREDICTION, *(f"{PROBA}{c}" for c in model.classes or [])) if n in position]
    if taken:
        raise UserError(f"{path} already has the output column(s) {listed(taken)}: rename them")
    columns = [position[n] for n in names]
    x = np.empty((len(body), len(columns)), dtype=np.float32)
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise UserError(
                f"{path} line {line} has {len(row)} cells, the header has {len(header)} (delimiter {sep!r})"
            )
        for m, j in enumerate(columns):
            cell = row[j].strip()
            try:
                if cell.lower() in MISSING:
                    raise ValueError
                x[k, m] = float(cell)
            except ValueError:
                raise UserError(f"{path} line {line}, column {header[j]!r}: {cell!r} is not a number") from None
    return header, [row for _, row in body], x


def npy_inputs(path: Path, model: StandaloneModel) -> tuple[list[str], list[list[str]], np.ndarray]:
    """``row`` (the sample index) and the samples of an ``.npy`` array ``(n, *input_shape)``."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read as a NumPy .npy array: {exc}") from None
    if x.ndim == len(model.input_shape) and tuple(x.shape) == model.input_shape:
        x = x[None]
    if tuple(x.shape[1:]) != model.input_shape or not np.issubdtype(x.dtype, np.number):
        raise UserError(
            f"{path} holds an array of shape {tuple(x.shape)} ({x.dtype}); the model reads numbers of shape "
            f"(n, {', '.join(map(str, model.input_shape))})"
        )
    if x.dtype == np.uint8 and len(model.input_shape) > 1:
        raise UserError(
            f"{path} holds uint8 pixels; an image model reads the images as its data module normalized them, "
            "float (x/255 - mean_c) / std_c with the data set's channel means and stds: save those"
        )
    return ["row"], [[str(i)] for i in range(len(x))], x.astype(np.float32)


@torch.no_grad()
def predict_rows(model: StandaloneModel, x: np.ndarray) -> tuple[list, np.ndarray | None]:
    """Predicted labels (or values) and class probabilities ``(n, C)`` (``None`` for regression) of raw inputs."""
    outputs = torch.cat([model(torch.from_numpy(x[i : i + BATCH])) for i in range(0, len(x), BATCH)])
    probabilities = None if model.task == "regression" else model.probabilities(outputs).numpy()
    return model.labels(outputs), probabilities


def predict(run_dir: Path, data: Path, out: Path, which: str | None = None) -> int:
    """Write the predictions of the run's model on ``data`` to ``out``; returns the number of rows written."""
    data, out = Path(data), Path(out)
    if not data.exists():
        raise UserError(f"DATA not found: {str(data)!r} (a CSV file or an .npy array)")
    model = load_trained(Path(run_dir), which)
    reader = npy_inputs if data.suffix.lower() == ".npy" else csv_inputs
    header, rows, x = reader(data, model)
    labels, probabilities = predict_rows(model, x)
    classes = (
        model.classes
        if model.classes is not None
        else list(range(0 if probabilities is None else probabilities.shape[1]))
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*header, PREDICTION, *(f"{PROBA}{c}" for c in classes)])
        for k, row in enumerate(rows):
            extra = [] if probabilities is None else [f"{p:.8g}" for p in probabilities[k]]
            value = labels[k]
            writer.writerow([*row, f"{value:.8g}" if isinstance(value, float) else value, *extra])
    return len(rows)


__all__ = ["csv_inputs", "npy_inputs", "predict", "predict_rows"]
