"""``lightreg predict RUN_DIR DATA -o OUT.csv``: predictions of a run's trained model on new raw inputs.

DATA is a CSV (the model's feature columns matched by name, in any order; every other column is passed through to
OUT unchanged), an ``.npy`` array of raw samples in the training shape (for an image model: raw pixels, uint8 or
float, in the data set's units 0..pixel_max: 0..255, or 0..16 for ``digits_images``; the model normalizes them
itself), or, for an image model, a folder of image files of the training size (8-bit pixels ``p`` read as
``p · pixel_max / 255``). OUT holds the input's columns (for an ``.npy``: ``row``, the sample's index; for a folder:
``file``, the image's name), ``prediction`` (the original class label, or the value in the target's units) and, for a
classifier, one ``proba:<label>`` column per class.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from lightreg.cli.trained import load_trained
from lightreg.data.csv import MISSING
from lightreg.data.csv_format import columns_by_name, read_rows, read_text, resolve_delimiter, sniff_delimiter
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
    columns, absent = columns_by_name(header, names)
    if absent:
        raise UserError(
            f"{path} lacks {len(absent)} of the model's {len(names)} feature column(s): {listed(absent, 5)}; columns are "
            "matched by name (any order)"
        )
    taken = [n for n in (PREDICTION, *(f"{PROBA}{c}" for c in model.classes or [])) if n in header]
    if taken:
        raise UserError(f"{path} already has the output column(s) {listed(taken)}: rename them")
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


def npy_inputs(
    path: Path, model: StandaloneModel, pixel_max: float | None = None
) -> tuple[list[str], list[list[str]], np.ndarray]:
    """``row`` (the sample index) and the samples of an ``.npy`` array ``(n, *input_shape)``. With ``pixel_max`` (an
    image model that normalizes raw pixels itself) a value outside ``[0, pixel_max]`` is refused in one line: it
    is not a raw pixel (e.g. an image already normalized, or 0..255 pixels for a 0..16 set)."""
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
    if pixel_max is not None and len(x) and (x.min() < 0 or x.max() > pixel_max):
        raise UserError(
            f"{path} holds values from {x.min():.4g} to {x.max():.4g}; the model reads raw pixels in 0..{pixel_max:g} "
            "(the data set's units) and normalizes them itself: save the images as they are, not normalized or rescaled"
        )
    return ["row"], [[str(i)] for i in range(len(x))], x.astype(np.float32)


def run_pixel_max(run_dir: Path) -> float | None:
    """The top raw pixel value of the run's image data (:func:`lightreg.data.images.pixel_max_of`); ``None`` when the
    run's data is not an :class:`~lightreg.data.ImageDataModule`."""
    from omegaconf import OmegaConf

    from lightreg.data.images import pixel_max_of  # torchvision: only for a run that may be an image one

    config = Path(run_dir) / ".hydra" / "config.yaml"
    return pixel_max_of(OmegaConf.load(config).data) if config.is_file() else None


def folder_inputs(path: Path, model: StandaloneModel, run_dir: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """``file`` (each image's name) and the images of folder ``path`` (files ending in :data:`IMAGE_SUFFIXES`, by
    name): grey (one channel) or RGB (three) as the model reads, the training height and width (never resized),
    8-bit pixels ``p`` as raw pixels ``p · pixel_max / 255`` (the model normalizes them)."""
    from PIL import Image, UnidentifiedImageError

    if len(model.input_shape) != 3 or model.input_shape[0] not in (1, 3):
        raise UserError(
            f"{path} is a folder: a folder of images is for an image model; this model reads inputs of shape "
            f"{model.input_shape}: pass a CSV or an .npy"
        )
    top = run_pixel_max(run_dir)
    if top is None:
        raise UserError(
            f"{path} is a folder: a folder of images is read for lightreg's image data (data=digits_images, "
            "mnist, fashion_mnist, cifar10); this run's data is another: pass an .npy of raw samples"
        )
    if not model.has_feature_scale():
        raise UserError(
            "this checkpoint has no feature_scale: its model reads images normalized as its data module fed them, "
            "not raw pixels; pass an .npy of those normalized images, or retrain to get a model that reads raw pixels"
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
        images[k] = (pixels * (top / 255.0)).reshape(height, width, channels).transpose(2, 0, 1)
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
        image = len(model.input_shape) > 1 and model.has_feature_scale()
        top = run_pixel_max(Path(run_dir)) if image else None
        header, rows, x = npy_inputs(data, model, top)
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


__all__ = ["csv_inputs", "folder_inputs", "npy_inputs", "predict", "predict_rows", "run_pixel_max"]
