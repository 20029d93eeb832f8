"""Image data: scikit-learn's digits as 1×8×8 images (offline) and MNIST, Fashion-MNIST, CIFAR-10 through
``torchvision.datasets``.

Pixels have raw units (:func:`pixel_max`): 0..255 for the torchvision sets (their uint8 files), 0..16 for the
digits (scikit-learn's values). The data module feeds the net normalized images, ``(x/pixel_max − mean_c) / std_c``,
and exposes that normalization in raw units as ``feature_scale``, per channel ``(pixel_max·mean_c,
pixel_max·std_c)``; the model keeps it (:class:`~lightreg.models.LightregModule`) and applies it to raw images when it
predicts, so a trained model reads raw pixels while training sees exactly the tensors it always saw.

Loader, chosen by measurement (``benchmarks/speed/image_loader_speed.py``, table in docs/data.md): without augmentation
the whole set is normalized once and held as one float tensor, batched by index slicing
(:class:`~lightreg.data.TensorBatches`); with ``augment=true`` (CIFAR-10) every sample gets its own random crop
and flip, so batches come from a ``DataLoader`` with worker processes, ``pin_memory`` and
``persistent_workers``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from typing_extensions import override

from lightreg.data.loader import TensorBatches
from lightreg.errors import UserError

DATA_ENV = "LIGHTREG_DATA"
"""Environment variable that overrides the default ``data.root`` (the ``data/`` folder beside ``outputs/``)."""


@dataclass(frozen=True)
class ImageSet:
    """What lightreg knows about one torchvision image set: its files, shape and normalization constants."""

    folder: str  # below data.root
    files: tuple[str, ...]
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: int = 10


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")

TORCHVISION_SETS: dict[str, ImageSet] = {
    # mean/std: the usual published constants of the training split, per channel, on pixels scaled to [0, 1]
    "mnist": ImageSet("MNIST/raw", _IDX, (1, 28, 28), (0.1307,), (0.3081,)),
    "fashion_mnist": ImageSet("FashionMNIST/raw", _IDX, (1, 28, 28), (0.2860,), (0.3530,)),
    "cifar10": ImageSet("cifar-10-batches-py", _CIFAR, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
NAMES = ("digits_images", *TORCHVISION_SETS)
DIGITS_MAX = 16.0
"""The largest pixel value of scikit-learn's digits (``load_digits().images`` holds 0..16)."""
LOADERS = ("auto", "tensors", "dataloader")


def pixel_max(name: str) -> float:
    """The raw pixel unit's top value of image set ``name``: 16 for ``digits_images``, 255 for the torchvision sets
    (8-bit pixels). An 8-bit image file's pixel ``p`` is ``p · pixel_max / 255`` in these units."""
    if name not in NAMES:
        raise UserError(f"unknown image dataset {name!r}; available: {', '.join(NAMES)}")
    return DIGITS_MAX if name == "digits_images" else 255.0


IMAGE_TARGETS = ("lightreg.data.ImageDataModule", "lightreg.data.images.ImageDataModule")
"""The ``_target_`` values of a data config that builds :class:`ImageDataModule`."""


def pixel_max_of(data: Any) -> float | None:
    """:func:`pixel_max` of a data config (a mapping with ``_target_`` and ``name``, e.g. a run's
    ``.hydra/config.yaml`` ``data``) that builds :class:`ImageDataModule`; ``None`` for any other data."""
    return pixel_max(data.get("name", "digits_images")) if data.get("_target_") in IMAGE_TARGETS else None


def default_root() -> str:
    """``$LIGHTREG_DATA`` when set, else ``data`` (relative to the folder the run starts from, beside ``outputs/``)."""
    return os.environ.get(DATA_ENV) or "data"


class CIFAR10Files(datasets.CIFAR10):
    """torchvision's CIFAR10 that reads the batch files by name: the md5 checks stay with the download (the archive
    is verified there), not on every read, so files written elsewhere (tests, mirrors) load too."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name in _CIFAR)

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


_DATASETS: dict[str, type] = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": CIFAR10Files}


def missing_files(name: str, root: str | Path) -> list[str]:
    """The files of ``name`` absent from their folder below ``root``."""
    spec = TORCHVISION_SETS[name]
    folder = Path(root).expanduser() / spec.folder
    return [f for f in spec.files if not (folder / f).is_file()]


def load_torchvision(name: str, root: str | Path, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of a torchvision set as uint8 ``N×C×H×W`` images and int64 labels.

    Missing files (``download=False``) and failed downloads become one :class:`UserError` line that names the
    folder, the files expected there and the flag.
    """
    spec = TORCHVISION_SETS[name]
    root = Path(root).expanduser()
    folder = root / spec.folder
    missing = missing_files(name, root)
    if missing and not download:
        raise UserError(
            f"{name}: files not found in {folder}: expected {', '.join(spec.files)}"
            + (f" (missing {', '.join(missing)})" if len(missing) < len(spec.files) else "")
            + f"; set data.download=true to fetch them, or data.root=<folder> (or ${DATA_ENV}) where they are"
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torchvision prints its download progress
            train = _DATASETS[name](root, train=True, download=bool(missing))
            test = _DATASETS[name](root, train=False, download=False)
    except (RuntimeError, OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"{name}: could not download or read the files in {folder} ({reason}); expected {', '.join(spec.files)}: "
            f"copy them there and set data.download=false, or data.root=<folder> (or ${DATA_ENV}) where they are"
        ) from None
    return (*_as_tensors(train, spec), *_as_tensors(test, spec))


def _as_tensors(dataset: Any, spec: ImageSet) -> tuple[Tensor, Tensor]:
    data = torch.as_tensor(np.asarray(dataset.data))
    if data.ndim == 3:  # MNIST-like: N×H×W
        data = data.unsqueeze(1)
    elif data.shape[-1] == spec.shape[0]:  # CIFAR: N×H×W×C
        data = data.permute(0, 3, 1, 2)
    return data.contiguous(), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.long)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(1797, 1, 8, 8)`` float pixels in [0, 16] and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[:, None].astype(np.float32), bunch.target.astype(np.int64)


class _AugmentedImages(Dataset):
    """uint8 images with a per-sample ``torchvision.transforms.v2`` pipeline (random crop + flip, then normalize)."""

    def __init__(self, images: Tensor, labels: Tensor, mean: tuple[float, ...], std: tuple[float, ...], augment: bool):
        from torchvision.transforms import v2

        size = images.shape[-1]
        steps: list[Any] = [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()] if augment else []
        self.transform = v2.Compose(
            [*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        )
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.transform(self.images[i]), self.labels[i]


class ImageDataModule(L.LightningDataModule):
    """Images for classification: ``digits_images`` (offline), ``mnist``, ``fashion_mnist``, ``cifar10``.

    Validation set: the official test split for the torchvision sets; a stratified ``val_fraction`` of the
    1797 digits for ``digits_images``. Pixels are scaled to [0, 1] (divided by :func:`pixel_max`) and normalized per
    channel, ``(x − mean_c) / std_c`` (the published training-split constants; for digits the training split's own).
    After :meth:`setup`: ``input_shape`` (C, H, W), ``num_classes``, ``task="multiclass"``,
    ``feature_names=None``, ``pixel_max``, ``raw_train`` / ``raw_val`` (``(images, labels)`` in raw pixel units) and
    ``feature_scale``: per channel ``(means, stds)`` of that normalization in raw pixel units, ``pixel_max·mean_c``
    and ``pixel_max·std_c`` (the model saves it and normalizes raw images itself when it predicts).

    Args:
        name: one of ``digits_images, mnist, fashion_mnist, cifar10``.
        root: folder holding the torchvision sets' folders (``MNIST/raw``, ``FashionMNIST/raw``,
            ``cifar-10-batches-py``); ``None`` = ``$LIGHTREG_DATA`` or ``data``.
        download: fetch missing files through torchvision (needs internet).
        batch_size: samples per step.
        augment: random crop (padding 4) and horizontal flip per sample, CIFAR-10 only.
        loader: ``auto`` (``dataloader`` when augmenting, else ``tensors``), ``tensors`` (in-memory index slicing)
            or ``dataloader`` (``torch.utils.data.DataLoader`` with workers).
        num_workers: ``DataLoader`` worker processes (``persistent_workers`` when > 0).
        pin_memory: page-locked batches for faster host-to-GPU copies; ``None`` = when CUDA is available.
        limit: keep only the first ``limit`` training samples (quick runs); ``None`` = all.
        val_fraction: validation share of ``digits_images``.
        seed: seed of the digits split and of the shuffling.
    """

    def __init__(
        self,
        name: str = "digits_images",
        root: str | None = None,
        download: bool = True,
        batch_size: int = 64,
        augment: bool = False,
        loader: str = "auto",
        num_workers: int = 2,
        pin_memory: bool | None = None,
        limit: int | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if name not in NAMES:
            raise UserError(f"unknown image dataset {name!r}; available: {', '.join(NAMES)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise UserError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if augment and name != "cifar10":
            raise UserError(f"data.augment=true (random crop + horizontal flip) is for cifar10, not {name}")
        if loader not in LOADERS:
            raise UserError(f"data.loader must be one of {LOADERS}, got {loader!r}")
        if augment and loader == "tensors":
            raise UserError("data.augment=true needs data.loader=dataloader (or auto): augmentation is per sample")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise UserError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise UserError(f"data.limit must be a positive integer or null, got {limit!r}")
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"data.val_fraction must be in (0, 1), got {val_fraction!r}")
        self.name = name
        self.root = Path(root if root is not None else default_root())
        self.download = download
        self.batch_size = batch_size
        self.augment = augment
        self.loader = ("dataloader" if augment else "tensors") if loader == "auto" else loader
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.limit = limit
        self.val_fraction = val_fraction
        self.seed = seed
        self.task = "multiclass"
        self.feature_names: list[str] | None = None
        self.pixel_max = pixel_max(name)
        self.feature_scale: tuple[list[float], list[float]] | None = None
        self.x_train: Tensor | None = None

    @override
    def prepare_data(self) -> None:
        """Download (rank zero only, under DDP) when asked and files are missing."""
        if self.name in TORCHVISION_SETS and self.download and missing_files(self.name, self.root):
            load_torchvision(self.name, self.root, download=True)

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.x_train is not None:
            return
        if self.name == "digits_images":
            images, labels = load_digits_images()
            x_tr, x_va, y_tr, y_va = train_test_split(
                images, labels, test_size=self.val_fraction, random_state=self.seed, stratify=labels
            )
            x_tr, x_va = torch.from_numpy(x_tr), torch.from_numpy(x_va)
            scaled = x_tr / self.pixel_max
            self.mean, self.std = (float(scaled.mean()),), (float(scaled.std()),)
            self.num_classes = 10
            y_tr, y_va = torch.from_numpy(y_tr), torch.from_numpy(y_va)
        else:
            spec = TORCHVISION_SETS[self.name]
            x_tr, y_tr, x_va, y_va = load_torchvision(self.name, self.root, download=False)
            self.mean, self.std, self.num_classes = spec.mean, spec.std, spec.classes
        if self.limit is not None:
            x_tr, y_tr = x_tr[: self.limit], y_tr[: self.limit]
        self.input_shape = tuple(int(s) for s in x_tr.shape[1:])
        self.raw_train, self.raw_val = (x_tr, y_tr), (x_va, y_va)
        self.x_train, self.y_train = self.normalize(x_tr), y_tr
        self.x_val, self.y_val = self.normalize(x_va), y_va
        self.feature_scale = ([m * self.pixel_max for m in self.mean], [s * self.pixel_max for s in self.std])

    def normalize(self, images: Tensor) -> Tensor:
        """``(x/pixel_max − mean_c) / std_c`` of images in raw pixel units, float32."""
        x = images.float() / self.pixel_max  # not in place: a float input is not copied by .float()
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (x - mean) / std

    def _dataloader(self, train: bool) -> DataLoader:
        images, labels = self.raw_train if train else self.raw_val
        if images.dtype == torch.uint8:
            dataset: Dataset = _AugmentedImages(images, labels, self.mean, self.std, augment=self.augment and train)
        else:
            dataset = torch.utils.data.TensorDataset(self.x_train if train else self.x_val, labels)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
        )

    @override
    def train_dataloader(self) -> TensorBatches | DataLoader:
        if self.loader == "dataloader":
            return self._dataloader(train=True)
        return TensorBatches(self.x_train, self.y_train, batch_size=self.batch_size, shuffle=True, seed=self.seed)

    @override
    def val_dataloader(self) -> TensorBatches | DataLoader:
        if self.loader == "dataloader":
            return self._dataloader(train=False)
        return TensorBatches(self.x_val, self.y_val, batch_size=self.batch_size)
