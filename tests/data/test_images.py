"""Image data (digits_images, and MNIST / Fashion-MNIST / CIFAR-10 from files written in their real formats),
the CNN and ResNet models, and their CLI runs offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from image_files import IDX_FOLDERS, write_cifar10, write_idx_set
from lightreg.data import ImageDataModule, TensorBatches
from lightreg.data.images import TORCHVISION_SETS
from lightreg.errors import UserError
from lightreg.models import CNN, ResNet

from conftest import describe, run_train
from helpers import QUIET, read_metrics


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_idx_set(root, "mnist")
    write_idx_set(root, "fashion_mnist")
    write_cifar10(root)
    return root


# ------------------------------------------------------------------------------------------------------------
# data modules
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_load_with_their_labels_and_normalization(image_root: Path, name: str) -> None:
    dm = ImageDataModule(name, root=str(image_root), download=False, batch_size=32)
    dm.setup("fit")
    assert dm.input_shape == (1, 28, 28) and dm.num_classes == 10 and dm.task == "multiclass"
    assert dm.feature_names is None
    raw = (image_root / IDX_FOLDERS[name] / "raw" / "train-labels-idx1-ubyte").read_bytes()
    assert dm.y_train.tolist() == list(raw[8:])  # IDX labels: 8 header bytes, then one byte per label
    images = np.frombuffer(
        (image_root / IDX_FOLDERS[name] / "raw" / "train-images-idx3-ubyte").read_bytes()[16:], np.uint8
    )
    spec = TORCHVISION_SETS[name]
    expected = (torch.from_numpy(images.reshape(-1, 1, 28, 28).copy()).float() / 255 - spec.mean[0]) / spec.std[0]
    assert torch.allclose(dm.x_train, expected, atol=1e-6)
    assert dm.x_val.shape == (100, 1, 28, 28)
    assert isinstance(dm.train_dataloader(), TensorBatches)  # no augmentation: in-memory slicing


def test_cifar_batches_load_channel_major(image_root: Path) -> None:
    dm = ImageDataModule("cifar10", root=str(image_root), download=False)
    dm.setup("fit")
    assert dm.input_shape == (3, 32, 32) and dm.x_train.shape[0] == 5 * 40 and dm.x_val.shape[0] == 60
    import pickle

    with open(image_root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f)
    pixels = torch.from_numpy(first["data"][0].reshape(3, 32, 32)).float() / 255
    mean, std = (
        torch.tensor(TORCHVISION_SETS["cifar10"].mean).view(3, 1, 1),
        torch.tensor(TORCHVISION_SETS["cifar10"].std).view(3, 1, 1),
    )
    assert torch.allclose(dm.x_train[0], (pixels - mean) / std, atol=1e-6)
    assert dm.y_train[: len(first["labels"])].tolist() == first["labels"]


def test_cifar_augmentation_goes_through_a_dataloader(image_root: Path) -> None:
    dm = ImageDataModule("cifar10", root=str(image_root), download=False, augment=True, num_workers=0, batch_size=16)
    dm.setup("fit")
    train = dm.train_dataloader()
    assert isinstance(train, torch.utils.data.DataLoader)
    torch.manual_seed(0)
    x1, _ = next(iter(train))
    torch.manual_seed(1)
    x2, _ = next(iter(train))
    assert x1.shape == (16, 3, 32, 32) and x1.dtype == torch.float32
    val_x, val_y = next(iter(dm.val_dataloader()))  # validation: normalized, never augmented
    assert torch.allclose(val_x, dm.x_val[:16], atol=1e-6) and torch.equal(val_y, dm.y_val[:16])
    # the same first images differ between two epochs (crop/flip), unlike the fixed validation images
    assert not torch.equal(x1, x2)


def test_digits_images_are_the_sklearn_digits() -> None:
    dm = ImageDataModule("digits_images", val_fraction=0.2, seed=0)
    dm.setup("fit")
    assert dm.input_shape == (1, 8, 8) and dm.x_train.shape[0] + dm.x_val.shape[0] == 1797
    assert abs(float(dm.x_train.mean())) < 1e-5 and abs(float(dm.x_train.std()) - 1) < 1e-4
    pixels = dm.x_train * dm.std[0] + dm.mean[0]
    digits = torch.from_numpy(load_digits().images / 16).float()
    # every training image is one of the digits, pixel for pixel
    assert torch.cdist(pixels[:20].flatten(1), digits.flatten(1)).min(dim=1).values.max() < 1e-4


@pytest.mark.parametrize("name", ["digits_images", "mnist", "cifar10"])
def test_the_normalization_is_exposed_in_raw_pixel_units(image_root: Path, name: str) -> None:
    dm = ImageDataModule(name, root=str(image_root), download=False)
    dm.setup("fit")
    raw, _ = dm.raw_train
    assert dm.pixel_max == (16.0 if name == "digits_images" else 255.0) and float(raw.max()) <= dm.pixel_max
    channel = [torch.tensor(values).view(-1, 1, 1) for values in (dm.mean, dm.std)]
    assert torch.equal(dm.x_train, (raw.float() / dm.pixel_max - channel[0]) / channel[1])  # what training sees
    mean, std = (torch.tensor(values).view(-1, 1, 1) for values in dm.feature_scale)  # one per channel, raw units
    assert len(dm.feature_scale[0]) == dm.input_shape[0]
    assert torch.allclose((raw.float() - mean) / std, dm.x_train, atol=1e-5)


def test_missing_files_one_line_names_folder_files_and_flag(tmp_path: Path) -> None:
    dm = ImageDataModule("mnist", root=str(tmp_path), download=False)
    with pytest.raises(UserError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data.download=true" in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"name": "imagenet"}, "unknown image dataset"),
        ({"name": "mnist", "augment": True}, "is for cifar10"),
        ({"name": "cifar10", "augment": True, "loader": "tensors"}, "per sample"),
        ({"batch_size": 0}, "batch_size"),
        ({"loader": "fast"}, "data.loader"),
    ],
)
def test_bad_image_options(options: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        ImageDataModule(**options)


# ------------------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_cnn_fits_every_image_shape(shape: tuple[int, ...], batch_norm: bool) -> None:
    model = CNN(
        channels=[4, 6], kernel_size=3, hidden_sizes=[10], batch_norm=batch_norm, input_shape=shape, num_classes=10
    )
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 10)
    assert model.net.conv1.weight.shape == (4, shape[0], 3, 3) and (model.net.conv1.bias is None) == batch_norm
    assert hasattr(model.net, "bn1") == batch_norm


def test_cnn_refuses_tabular_shapes_and_bad_options() -> None:
    with pytest.raises(ValueError, match=r"needs image-shaped inputs \(C, H, W\).*\(64,\)"):
        CNN(input_shape=(64,), num_classes=10)
    with pytest.raises(ValueError, match="kernel_size"):
        CNN(kernel_size=4, input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="channels"):
        CNN(channels=[], input_shape=(1, 8, 8), num_classes=10)


@pytest.mark.parametrize(("shape", "small"), [((3, 32, 32), True), ((1, 28, 28), False)])
def test_resnet_sized_by_the_data(shape: tuple[int, ...], small: bool) -> None:
    model = ResNet(arch="resnet18", small_input=small, input_shape=shape, num_classes=7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)
    assert model.net.conv1.in_channels == shape[0]
    assert (model.net.conv1.kernel_size == (3, 3)) == small
    assert isinstance(model.net.maxpool, torch.nn.Identity) == small


# ------------------------------------------------------------------------------------------------------------
# the CLI, offline
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_cli_trains_a_cnn_on_idx_files(image_root: Path, tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    proc = run_train(
        f"data={name}", f"data.root={image_root}", "data.download=false", "model=cnn", "model.channels=[4,8]",
        "data.batch_size=16", "trainer.max_epochs=2", "optimizer.lr=0.05", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert metrics["status"] == "completed" and metrics["epochs"] == 2
    assert metrics["val/acc"] > 0.5  # toy classes: a bright square per class; chance is 0.1


@pytest.mark.slow
def test_cli_cifar10_augmented_resnet_from_the_env_root(image_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env_root = {"LIGHTREG_DATA": str(image_root)}
    os.environ.update(env_root)
    try:
        proc = run_train(
            "data=cifar10", "data.download=false", "data.augment=true", "data.num_workers=1", "model=resnet",
            "+trainer.fast_dev_run=true", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
        )  # fmt: skip
    finally:
        os.environ.pop("LIGHTREG_DATA")
    assert proc.returncode == 0, describe(proc)
    assert read_metrics(run)["status"] == "completed"


@pytest.mark.slow
def test_cli_image_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = run_train(
        "data=mnist", f"data.root={tmp_path / 'empty'}", "data.download=false", "model=cnn", cwd=tmp_path
    )
    assert missing.returncode == 2, describe(missing)
    line = missing.stderr.strip()
    assert "\n" not in line and line.startswith("lightreg: error: mnist: files not found in")
    assert "data.download=true" in line and "Traceback" not in missing.stderr
    tabular = run_train("data=digits", "model=cnn", cwd=tmp_path)
    assert tabular.returncode == 2, describe(tabular)
    assert "needs image-shaped inputs" in tabular.stderr and len(tabular.stderr.strip().splitlines()) == 1
