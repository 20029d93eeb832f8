"""Small image sets written in the real on-disk formats that torchvision reads (no download): IDX files for
MNIST / Fashion-MNIST under ``<root>/<MNIST|FashionMNIST>/raw``, pickled python batches for CIFAR-10 under
``<root>/cifar-10-batches-py``."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: class k has a bright square at a class-dependent place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, *shape), dtype=np.uint8)
    h, w = shape[0], shape[1]  # H×W or H×W×C
    for i, k in enumerate(labels):
        r, c = (k // 5) * (h // 2), (k % 5) * (w // 5)
        images[i, r : r + h // 2, c : c + w // 5] = 250
    return images, labels.astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian int32 sizes, then the raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_idx_set(root: Path, name: str = "mnist", n_train: int = 200, n_test: int = 100) -> Path:
    raw = Path(root) / IDX_FOLDERS[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = _images(n, (28, 28), seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_cifar10(root: Path, per_batch: int = 40, n_test: int = 60) -> Path:
    """The python version's layout: data_batch_1..5 and test_batch ({'data': N×3072 uint8, 'labels': [...]}),
    batches.meta ({'label_names': [...]})."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        hwc, labels = _images(n, (32, 32, 3), seed)
        data = hwc.transpose(0, 3, 1, 2).reshape(n, 3072)  # rows are channel-major, as in the real files
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [int(k) for k in labels], "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{k}" for k in range(10)], "num_vis": 3072}, f)
    return folder
