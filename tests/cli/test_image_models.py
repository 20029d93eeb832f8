"""An image model carries its pixel normalization: trained on digits_images (raw pixels 0..16) or MNIST-format files
(uint8 0..255), it reads RAW images by every documented route (the checkpoint's predict_*, ``lightreg predict`` of an
``.npy`` of uint8 or float pixels and of a folder of PNGs, ONNX, TorchScript) and predicts as validation measured; a
checkpoint saved without the normalization still loads, with a warning that it reads normalized images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from image_files import write_idx_set
from lightreg.cli.commands import main
from lightreg.data import ImageDataModule
from lightreg.errors import LightregWarning
from lightreg.models import CNN
from trained_runs import QUIET, read_table

from conftest import describe
from helpers import read_metrics, run_train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImageDataModule]:
    """A 2-epoch CNN on digits_images, and the data module of its split."""
    folder = tmp_path_factory.mktemp("digits")
    run = folder / "run"
    proc = run_train("data=digits_images", "model=cnn", "model.channels=[4,8]", "trainer.max_epochs=2", *QUIET,
                     f"hydra.run.dir={run}", cwd=folder)  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    data = ImageDataModule("digits_images")
    data.setup("fit")
    return run, data


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _accuracy(path: Path, labels: torch.Tensor) -> float:
    rows = read_table(path)
    return float(np.mean([int(r["prediction"]) == y for r, y in zip(rows, labels.tolist(), strict=True)]))


def _reference_logits(run: Path, data: ImageDataModule) -> torch.Tensor:
    """The last checkpoint's logits on the normalized validation images, as validation computed them."""
    model = CNN.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    with torch.no_grad():
        return model(data.x_val)


def test_the_checkpoint_reads_raw_pixels(digits: tuple[Path, ImageDataModule]) -> None:
    run, data = digits
    images, labels = data.raw_val
    assert float(images.min()) == 0.0 and float(images.max()) == 16.0  # scikit-learn's raw digits
    model = CNN.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.hparams["feature_scale"] == [[16 * data.mean[0]], [16 * data.std[0]]]  # per channel, raw units
    with torch.no_grad():
        raw_logits = model(model.prepare_inputs(images.numpy()))
    assert torch.allclose(raw_logits, _reference_logits(run, data), atol=1e-5)
    accuracy = np.mean(np.asarray(model.predict_labels(images)) == labels.numpy())
    assert accuracy == pytest.approx(read_metrics(run)["val/acc"], abs=1e-6)
    assert torch.allclose(model.predict_proba(images.numpy().astype(np.uint8)).sum(dim=1), torch.ones(len(images)))


def test_predict_an_npy_of_raw_uint8_or_float_pixels(digits: tuple[Path, ImageDataModule], tmp_path: Path, capsys):
    run, data = digits
    images, labels = data.raw_val
    np.save(tmp_path / "uint8.npy", images.numpy().astype(np.uint8))  # the digits are whole numbers 0..16
    np.save(tmp_path / "float.npy", images.numpy())
    predicted = {}
    for kind in ("uint8", "float"):
        code, said, err = _cli(capsys, "predict", run, tmp_path / f"{kind}.npy", "-o", tmp_path / f"{kind}.csv",
                               "--checkpoint", "last")  # fmt: skip
        assert code == 0 and said.startswith(f"wrote {len(images)} rows"), err
        assert _accuracy(tmp_path / f"{kind}.csv", labels) == pytest.approx(read_metrics(run)["val/acc"], abs=1e-6)
        predicted[kind] = [r["prediction"] for r in read_table(tmp_path / f"{kind}.csv")]
    assert predicted["uint8"] == predicted["float"]
    np.save(tmp_path / "normalized.npy", data.x_val.numpy())  # not raw pixels: refused, never predicted
    code, _, err = _cli(capsys, "predict", run, tmp_path / "normalized.npy", "-o", tmp_path / "n.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "raw pixels in 0..16" in err


def test_predict_a_folder_of_pngs(digits: tuple[Path, ImageDataModule], tmp_path: Path, capsys) -> None:
    from PIL import Image

    run, data = digits
    images, labels = data.raw_val
    pngs = np.rint(images.numpy() * 255 / 16).astype(np.uint8)  # 8-bit PNGs of the 0..16 pixels
    for i, image in enumerate(pngs[:, 0]):
        Image.fromarray(image, mode="L").save(tmp_path / f"{i:04d}.png")
    code, _, err = _cli(capsys, "predict", run, tmp_path, "-o", tmp_path / "out.csv", "--checkpoint", "last")
    assert code == 0, err
    model = CNN.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    expected = model.predict_labels(pngs.astype(np.float32) * (16 / 255))  # a PNG pixel p is p·16/255 raw
    assert [int(r["prediction"]) for r in read_table(tmp_path / "out.csv")] == expected
    assert _accuracy(tmp_path / "out.csv", labels) == pytest.approx(read_metrics(run)["val/acc"], abs=0.02)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_onnx_and_torchscript_read_raw_pixels(digits: tuple[Path, ImageDataModule], tmp_path: Path, capsys) -> None:
    run, data = digits
    raw = data.raw_val[0].numpy().astype(np.float32)
    expected = _reference_logits(run, data)
    code, said, err = _cli(capsys, "export", run, "--format", "onnx", "-o", tmp_path / "m.onnx", "--checkpoint", "last")
    assert code == 0 and "validation rows" in said, err
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["pixel_max"]) == 16 and json.loads(meta["input_shape"]) == [1, 8, 8]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert torch.allclose(torch.from_numpy(session.run(None, {"x": raw})[0]), expected, atol=1e-5)
    code, _, err = _cli(
        capsys, "export", run, "--format", "torchscript", "-o", tmp_path / "m.pt", "--checkpoint", "last"
    )
    assert code == 0, err
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "m.pt"))(torch.from_numpy(raw)), expected, atol=1e-5)


def test_a_checkpoint_without_the_normalization_loads_and_says_so(
    digits: tuple[Path, ImageDataModule], tmp_path: Path, capsys
) -> None:
    run, data = digits
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    del saved["hyper_parameters"]["feature_scale"]  # as saved before models carried their pixel normalization
    torch.save(saved, tmp_path / "old.ckpt")
    with pytest.warns(LightregWarning, match=r"CNN \(input_shape \(1, 8, 8\)\): this checkpoint has no feature_scale"):
        old = CNN.load_from_checkpoint(tmp_path / "old.ckpt", map_location="cpu")
    accuracy = np.mean(np.asarray(old.predict_labels(data.x_val)) == data.y_val.numpy())  # it reads normalized images
    assert accuracy == pytest.approx(read_metrics(run)["val/acc"], abs=1e-6)
    folder = tmp_path / "pngs"
    folder.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(folder / "zero.png")
    with pytest.warns(LightregWarning, match="no feature_scale"):
        code, _, err = _cli(
            capsys, "predict", run, folder, "-o", tmp_path / "o.csv", "--checkpoint", tmp_path / "old.ckpt"
        )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no feature_scale" in err


def test_an_mnist_model_reads_uint8_pixels(tmp_path: Path, capsys) -> None:
    root, run = tmp_path / "data", tmp_path / "run"
    write_idx_set(root, "mnist")
    proc = run_train("data=mnist", f"data.root={root}", "data.download=false", "model=cnn", "model.channels=[4,8]",
                     "data.batch_size=16", "trainer.max_epochs=1", "optimizer.lr=0.05", *QUIET,
                     f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    data = ImageDataModule("mnist", root=str(root), download=False)
    data.setup("fit")
    images, labels = data.raw_val
    assert images.dtype == torch.uint8 and int(images.max()) == 250  # the toy images' bright squares
    np.save(tmp_path / "pixels.npy", images.numpy())
    code, _, err = _cli(capsys, "predict", run, tmp_path / "pixels.npy", "-o", tmp_path / "out.csv", "--checkpoint",
                        "last")  # fmt: skip
    assert code == 0, err
    assert _accuracy(tmp_path / "out.csv", labels) == pytest.approx(read_metrics(run)["val/acc"], abs=1e-6)
    model = CNN.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.feature_mean[0] == pytest.approx(0.1307 * 255) and model.feature_std[0] == pytest.approx(0.3081 * 255)
