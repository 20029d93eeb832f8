"""StandaloneModel: raw rows in, logits or target units out; scripted by TorchScript to the same outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightreg.errors import UserError
from lightreg.models.standalone import StandaloneModel


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_scripted_equals_eager_on_raw_rows(task: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2 if task == "multiclass" else 1))
    mean, std = torch.tensor([10.0, -5.0, 0.5]), torch.tensor([2.0, 4.0, 0.1])
    model = StandaloneModel(net, task, (3,), mean, std, target_mean=150.0, target_std=70.0,
                            classes=["a", "b"] if task == "multiclass" else None,
                            feature_names=["x", "y", "z"]).eval()  # fmt: skip
    raw = torch.randn(5, 3) * std + mean
    expected = net((raw - mean) / std)
    if task == "regression":
        expected = expected * 70.0 + 150.0
    with torch.no_grad():
        assert torch.allclose(model(raw), expected, atol=1e-6)
        assert torch.allclose(torch.jit.script(model)(raw), expected, atol=1e-6)


def test_feature_names_must_match_the_inputs() -> None:
    with pytest.raises(UserError, match="2 feature names for 3 inputs"):
        StandaloneModel(nn.Linear(3, 1), "regression", (3,), feature_names=["x", "y"])


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_an_image_scale_per_channel_normalizes_raw_pixels() -> None:
    from lightreg.models import LogisticRegression

    mean, std = [10.0, 20.0, 30.0], [1.0, 2.0, 4.0]  # one per channel, in raw pixel units
    model = LogisticRegression(input_shape=(3, 2, 2), num_classes=3, feature_scale=(mean, std)).eval()
    raw = torch.randint(0, 256, (5, 3, 2, 2)).float()
    normalized = (raw - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(model.prepare_inputs(raw), normalized)
    standalone = StandaloneModel.of(model)
    with torch.no_grad():
        expected = model.net(normalized)
        assert torch.allclose(standalone(raw), expected, atol=1e-6)
        assert torch.allclose(torch.jit.script(standalone)(raw), expected, atol=1e-6)
    assert (
        standalone.has_feature_scale() and not StandaloneModel(model.net, "multiclass", (3, 2, 2)).has_feature_scale()
    )
