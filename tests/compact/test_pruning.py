"""Coupled channel groups and their physical removal on a CNN, ResNet-18, an MLP and user models with a skip path
and a concatenation: zeroed groups go, outputs stay, the saved pruned model reloads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from lightreg.compact import pruning
from lightreg.compact.coupling import coupled_layout
from lightreg.compact.pruning import load_pruned, remove_zero_groups, save_pruned
from lightreg.errors import UserError
from lightreg.models.cnn import CNN
from lightreg.models.mlp import MLP
from lightreg.models.resnet import ResNet
from lightreg.penalties.coupled import CoupledGroupLasso

TASK = {"num_classes": 10, "task": "multiclass"}


class SkipNet(nn.Module):
    """conv → bn → relu, then a residual block added onto it: the add ties both convs' channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn(self.stem(x)))
        h = torch.relu(h + self.block(h))
        return self.head(h.mean(dim=(2, 3)))


class ConcatNet(nn.Module):
    """Two branches concatenated: the head's input columns split between the branches' groups."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 5)
        self.b = nn.Linear(6, 4)
        self.head = nn.Linear(9, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.cat([torch.tanh(self.a(x)), torch.sigmoid(self.b(x))], dim=1))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "cnn": (lambda: CNN(input_shape=(1, 8, 8), batch_norm=True, **TASK), (1, 8, 8)),
    "mlp": (lambda: MLP(input_shape=(6,), hidden_sizes=[7, 5], **TASK), (6,)),
    "skip": (SkipNet, (1, 6, 6)),
    "concat": (ConcatNet, (6,)),
}
SLOW_MODELS = {
    "resnet18": (lambda: ResNet(arch="resnet18", small_input=True, input_shape=(1, 8, 8), **TASK), (1, 8, 8)),
    "resnet34": (lambda: ResNet(arch="resnet34", small_input=True, input_shape=(1, 8, 8), **TASK), (1, 8, 8)),
}


def _perturb_buffers(model: nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so that a wrong removal would change the outputs."""
    with torch.no_grad():
        for name, b in model.named_buffers():
            if "running_mean" in name:
                b.normal_()
            elif "running_var" in name:
                b.uniform_(0.5, 2.0)


def _zero_every_other_group(model: nn.Module, x: Tensor) -> int:
    """Zero all slices of the even-numbered coupled groups by hand; returns how many groups that is."""
    layout, _ = coupled_layout(model, x)
    chosen = torch.arange(layout.num_groups) % 2 == 0
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in layout.member_mask(params, chosen).items():
            params[name][mask] = 0.0
    return int(chosen.sum())


@pytest.mark.parametrize("kind", [*sorted(MODELS), *(pytest.param(k, marks=pytest.mark.slow) for k in SLOW_MODELS)])
def test_zeroed_groups_are_removed_without_changing_outputs(kind: str, tmp_path) -> None:
    torch.manual_seed(0)
    make, shape = {**MODELS, **SLOW_MODELS}[kind]
    model = make()
    _perturb_buffers(model)
    x = torch.randn(5, *shape)
    zeroed = _zero_every_other_group(model, x)
    small, report = remove_zero_groups(model, x)
    model.eval(), small.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
    assert report.params_after < report.params_before
    assert report.macs_after < report.macs_before
    assert 0 < report.removed_groups <= zeroed
    assert sum(p.numel() for p in small.parameters()) == report.params_after
    path = tmp_path / "pruned.pt"
    save_pruned(small, path)
    back = load_pruned(make(), path).eval()
    with torch.no_grad():
        assert torch.equal(back(x), small(x))


def test_prox_zeros_coupled_slices_together_on_a_skip_path() -> None:
    torch.manual_seed(0)
    model = SkipNet()
    x = torch.randn(3, 1, 6, 6)
    layout, _ = coupled_layout(model, x)
    penalty = CoupledGroupLasso().bind(layout)
    params = dict(model.named_parameters())
    norms = penalty.unit_norms(params)
    threshold = float(norms.median()) / float(layout.root.median())  # about half the groups fall below it
    with torch.no_grad():
        penalty.prox_(params, {n: threshold for n in params})
    zero = penalty.unit_norms(params) == 0
    assert 0 < int(zero.sum()) < layout.num_groups
    masks = layout.member_mask(params, zero)
    for name, mask in masks.items():
        assert bool((params[name][mask] == 0).all()), name
    # the residual add ties stem and block output channels: one group holds both filters and both BN shifts
    tied = [s.name for s in layout.slices]
    assert {"stem.weight", "block.0.weight", "bn.bias", "block.1.bias", "head.weight"} <= set(tied)


def _norm_model(norm: str) -> tuple[nn.Module, Tensor]:
    """A hidden layer whose channels meet a LayerNorm or a GroupNorm (statistics across channels)."""
    if norm == "layer":
        return nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3)), torch.randn(4, 5)
    convs = nn.Sequential(nn.Conv2d(1, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.Flatten(), nn.Linear(128, 3))
    return convs, torch.randn(4, 1, 6, 6)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_groups_through_a_cross_channel_norm_are_kept(norm: str) -> None:
    """A zero channel still weighs in a LayerNorm's or GroupNorm's mean and variance: removing it would change the
    outputs (LayerNorm) or break the layer (GroupNorm), so it stays."""
    torch.manual_seed(0)
    model, x = _norm_model(norm)
    zeroed = _zero_every_other_group(model, x)
    assert zeroed > 0
    small, report = remove_zero_groups(model, x)
    assert report.removed_groups == 0
    assert report.params_after == report.params_before
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), small.eval()(x), atol=1e-6)


def test_a_removal_that_changes_the_outputs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pruning, "CROSS_CHANNEL_NORMS", ())  # the LayerNorm coupling ignored: outputs would move
    torch.manual_seed(0)
    model, x = _norm_model("layer")
    _zero_every_other_group(model, x)
    with pytest.raises(UserError, match="changed its outputs"):
        remove_zero_groups(model, x)


def test_untraceable_model_is_a_one_line_user_error() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.out = nn.Linear(3, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.out(self.fc(x)) if float(x.sum()) > 1e9 else {"y": x}  # type: ignore[return-value]

    with pytest.raises(UserError, match=r"output tensor|cannot trace"):
        remove_zero_groups(Branchy(), torch.randn(2, 4))
