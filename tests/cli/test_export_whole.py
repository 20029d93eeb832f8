"""Export of a model whose ``forward`` is more than ``net(x)`` (a LightningModule wrapped whole, not attached to a
Trainer): TorchScript and ONNX give PyTorch's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compact_models import SkipMLP
from lightreg.cli.export import onnx_outputs, to_onnx, to_torchscript
from lightreg.models.standalone import StandaloneModel


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_whole_model_exports_with_equal_outputs(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    module = SkipMLP(input_shape=(5,), num_classes=3, task="multiclass").eval()
    model = StandaloneModel.of(module)
    assert model.whole  # the wrapped body is the LightningModule itself
    x = torch.randn(16, 5)
    path = tmp_path / f"model.{fmt}"
    with torch.no_grad():
        if fmt == "torchscript":
            to_torchscript(model, x[:2], path)
            got = torch.jit.load(str(path))(x)
        else:
            to_onnx(model, x[:2], path)
            got = onnx_outputs(path, x)
        assert torch.allclose(got, model(x), atol=1e-5)
