"""``lightreg export RUN_DIR --format onnx|torchscript -o FILE``: a run's trained model with its preprocessing
(:class:`~lightreg.models.standalone.StandaloneModel`: raw inputs in, an image model's raw pixels included, logits or
target-unit values out) as one file with a dynamic batch dimension, checked after export against the PyTorch model on
validation rows."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import Tensor

from lightreg.cli.trained import load_trained
from lightreg.errors import UserError
from lightreg.models.standalone import StandaloneModel

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-5
"""Largest absolute difference allowed between the exported model's outputs and PyTorch's."""
CHECK_ROWS = 256
OPSET = 17
INSTALL = 'pip install "lightreg[export]"'


def check_rows(run_dir: Path, model: StandaloneModel) -> tuple[Tensor, str]:
    """Raw inputs to compare the exported model with PyTorch on: up to :data:`CHECK_ROWS` validation rows of the
    run's data (standardized rows mapped back to raw), or, when the data cannot be read here, random rows around the
    training means; and which of the two."""
    from omegaconf import OmegaConf

    from lightreg.cli.build import build

    try:
        datamodule = build(OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml").data, "data")
        datamodule.prepare_data()
        datamodule.setup("fit")  # the run's own split and scaling
        x = torch.cat([batch[0] for batch in datamodule.val_dataloader()])[:CHECK_ROWS].float()
    except (UserError, OSError, AttributeError, TypeError, ValueError):
        x = None
    names = getattr(datamodule, "feature_names", None) if x is not None else None
    if names is not None and model.feature_names is not None and set(model.feature_names) <= set(names):
        x = x[:, [list(names).index(n) for n in model.feature_names]]  # compact.pt reads the kept features only
    if x is not None and tuple(x.shape[1:]) == model.input_shape:
        if getattr(datamodule, "feature_scale", None) is not None:
            x = x * model.feature_std + model.feature_mean  # the data module's rows are standardized
        return x, f"{len(x)} validation rows"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(CHECK_ROWS, *model.input_shape, generator=generator) * model.feature_std + model.feature_mean
    return x, f"{CHECK_ROWS} random rows"


def pixel_max(run_dir: Path, model: StandaloneModel) -> float | None:
    """The top raw pixel value an image model reads (:func:`lightreg.data.images.pixel_max_of` of the run's data);
    ``None`` for a model of other data, or one saved without a pixel normalization (it reads normalized images)."""
    from omegaconf import OmegaConf

    from lightreg.data.images import pixel_max_of

    config = Path(run_dir) / ".hydra" / "config.yaml"
    if len(model.input_shape) == 1 or not model.has_feature_scale() or not config.is_file():
        return None
    return pixel_max_of(OmegaConf.load(config).data)


def to_onnx(model: StandaloneModel, example: Tensor, path: Path, pixel_max: float | None = None) -> None:
    """Write ``model`` as ONNX (TorchScript-based exporter, input ``x``, output ``output``, dynamic batch) with
    ``task``, ``classes``, ``feature_names``, ``input_shape`` and ``pixel_max`` (JSON; an image model reads raw pixels
    in ``0..pixel_max``, else ``null``) in its metadata."""
    try:
        import onnx
    except ImportError:
        raise UserError(f"exporting to ONNX needs the onnx package: {INSTALL}") from None
    dynamic = {"x": {0: "batch"}, "output": {0: "batch"}}
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated in favour of dynamo=True
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (example,), str(path), input_names=["x"], output_names=["output"], dynamic_axes=dynamic,
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(path))
    facts = {
        "task": model.task,
        "classes": json.dumps(model.classes),
        "feature_names": json.dumps(model.feature_names),
        "input_shape": json.dumps(list(model.input_shape)),
        "pixel_max": json.dumps(pixel_max),
    }
    for key, value in facts.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def to_torchscript(model: StandaloneModel, example: Tensor, path: Path) -> None:
    """Write ``model`` traced on ``example`` as TorchScript. The trace runs inside Lightning's own scripting flag (as
    ``LightningModule.to_torchscript`` does), under which a LightningModule's ``trainer`` reads ``None`` instead of
    raising: a model compacted or exported whole is a LightningModule not attached to a Trainer."""
    from lightning.pytorch.core.module import _jit_is_scripting

    with warnings.catch_warnings(), _jit_is_scripting():  # torch >= 2.9 marks TorchScript deprecated; the format stays
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(model, example).save(str(path))


def onnx_outputs(path: Path, x: Tensor) -> Tensor:
    """The outputs of the ONNX model at ``path`` on ``x``, run by onnxruntime on the CPU."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"checking the ONNX export needs onnxruntime: {INSTALL}") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def export(run_dir: Path, fmt: str, out: Path, which: str | None = None) -> tuple[float, str]:
    """Export the run's model to ``out``; returns the largest absolute output difference from PyTorch and the rows
    it was measured on. A difference above :data:`TOLERANCE` is an error."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model = load_trained(Path(run_dir), which)
    x, rows = check_rows(Path(run_dir), model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = model(x)
        if fmt == "onnx":
            to_onnx(model, x[:2], out, pixel_max(Path(run_dir), model))
            got = onnx_outputs(out, x)
        else:
            to_torchscript(model, x[:2], out)
            got = torch.jit.load(str(out))(x)
    diff = float((got - expected).abs().max())
    if not diff <= TOLERANCE:
        raise UserError(
            f"the exported model differs from PyTorch by {diff:.3g} (> {TOLERANCE:g}) on {rows}: {out} is not "
            "reliable; report this model's layers"
        )
    return diff, rows


__all__ = ["FORMATS", "TOLERANCE", "export", "to_onnx", "to_torchscript"]
