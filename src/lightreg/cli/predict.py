"""``lightreg predict RUN_DIR DATA -o OUT.csv``: predictions of a run's trained model on new raw inputs.

DATA is a CSV (the model's feature columns matched by name, in any order; every other column is passed through to
OUT unchanged), an ``.npy`` array of samples in the training shape (for an image model: float images normalized as
its data module does, ``(x/255 - mean_c) / std_c``; that normalization is not part of the model), or, for an image
model, a folder of image files of the training size (read as its data module reads pixels: scaled to [0, 1] and
normalized with the run's channel means and stds). OUT holds the input's columns (for an ``.npy``: ``row``, the
sample's index; for a folder: ``file``, the image's name), ``prediction`` (the original class label, or the value in
the target's units) and, for a classifier, one ``proba:<label>`` column per class.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from lightreg.cli.trained import load_trained
from lightreg.data.csv import MISSING
from lightreg.data.csv_format import read_rows, read_text, resolve_delimiter, sniff_delimiter
from lightreg.errors import UserError, listed
from lightreg.models.standalone import StandaloneModel

PREDICTION = "prediction"
PROBA = "proba:"
BATCH = 4096
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""The files a DATA folder's images are read from (other files in it are ignored)."""


def delimiter_of(value: str | None) -> str | None:
    """``--delimiter``: one character or a name (``tab``, ``comma``, ``semicolon``, ``pipe``, ``space``); ``None``
    sniffs it as the CSV data module does."""
    try:
        return resolve_delimiter(value)
    except UserError:
        raise UserError(
            f"--delimiter must be one character or one of tab, comma, semicolon, pipe, space, got {value!r}"
        ) from None


def csv_inputs(
    path: Path, model: StandaloneModel, delimiter: str | None = None
) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The header, the data rows (cells as read) and the model's raw inputs ``(n, d)`` from CSV ``path``: each of
    the model's ``feature_names`` by name; a missing column or a cell that is not a number is a one-line error."""
    text = read_text(path)
    sep = delimiter_of(delimiter) or sniff_delimiter(text)
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


def image_normalization(run_dir: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The channel means and stds the run's image data module normalized its pixels (scaled to [0, 1]) with."""
    from omegaconf import OmegaConf

    from lightreg.cli.build import build
    from lightreg.data.images import TORCHVISION_SETS

    data = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml").data
    name = data.get("name")
    if name in TORCHVISION_SETS:
        return TORCHVISION_SETS[name].mean, TORCHVISION_SETS[name].std
    datamodule = build(data, "data")
    if not hasattr(datamodule, "normalize"):
        raise UserError(f"a folder of images is read for an image data module; this run's data is {data._target_}")
    datamodule.setup("fit")  # digits_images: the training split's mean and std
    return tuple(datamodule.mean), tuple(datamodule.std)


def folder_inputs(path: Path, model: StandaloneModel, run_dir: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """``file`` (each image's name) and the images of folder ``path`` (files ending in :data:`IMAGE_SUFFIXES`, by
    name): grey (one channel) or RGB (three) as the model reads, the training height and width (never resized),
    pixels ``(p/255 - mean_c) / std_c`` with the run's channel means and stds."""
    from PIL import Image, UnidentifiedImageError

    if len(model.input_shape) != 3 or model.input_shape[0] not in (1, 3):
        raise UserError(
            f"{path} is a folder: a folder of images is for an image model; this model reads inputs of shape "
            f"{model.input_shape}: pass a CSV or an .npy"
        )
    channels, height, width = model.input_shape
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    images = np.empty((len(files), channels, height, width), dtype=np.float32)
    for k, file in enumerate(files):
        try:
            with Image.open(file) as image:
                pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        except (OSError, UnidentifiedImageError) as exc:
            raise UserError(f"{file} cannot be read as an image: {exc}") from None
        if pixels.shape[:2] != (height, width):
            raise UserError(
                f"{file} is {pixels.shape[1]}x{pixels.shape[0]} pixels; the model reads {width}x{height} images: "
                "resize it to the training size"
            )
        images[k] = (pixels / 255.0).reshape(height, width, channels).transpose(2, 0, 1)
    mean, std = image_normalization(run_dir)
    images = (images - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return ["file"], [[f.name] for f in files], images


@torch.no_grad()
def predict_rows(model: StandaloneModel, x: np.ndarray) -> tuple[list, np.ndarray | None]:
    """Predicted labels (or values) and class probabilities ``(n, C)`` (``None`` for regression) of raw inputs."""
    outputs = torch.cat([model(torch.from_numpy(x[i : i + BATCH])) for i in range(0, len(x), BATCH)])
    probabilities = None if model.task == "regression" else model.probabilities(outputs).numpy()
    return model.labels(outputs), probabilities


def predict(run_dir: Path, data: Path, out: Path, which: str | None = None, delimiter: str | None = None) -> int:
    """Write the predictions of the run's model on ``data`` to ``out``; returns the number of rows written."""
    data, out = Path(data), Path(out)
    if not data.exists():
        raise UserError(f"DATA not found: {str(data)!r} (a CSV file, an .npy array or a folder of images)")
    delimiter = delimiter_of(delimiter)
    model = load_trained(Path(run_dir), which)
    if data.is_dir():
        header, rows, x = folder_inputs(data, model, Path(run_dir))
    elif data.suffix.lower() == ".npy":
        header, rows, x = npy_inputs(data, model)
    else:
        header, rows, x = csv_inputs(data, model, delimiter)
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


__all__ = ["csv_inputs", "folder_inputs", "npy_inputs", "predict", "predict_rows"]
