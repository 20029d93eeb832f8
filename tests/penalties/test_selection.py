"""select_parameters: default weight selection, include/exclude globs and error messages."""

from __future__ import annotations

import pytest
from torch import nn

from lightreg.penalties import select_parameters


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))


def _names(selected: list[tuple[str, nn.Parameter]]) -> list[str]:
    return [name for name, _ in selected]


def test_default_selects_trainable_weights_only() -> None:
    model = Net()
    model.net[3].weight.requires_grad_(False)
    selected = select_parameters(model)
    assert _names(selected) == ["conv.weight", "net.0.weight"]
    assert selected[0][1] is model.conv.weight


def test_include_globs_may_select_1d_parameters() -> None:
    assert _names(select_parameters(Net(), include=["net.*.bias", "conv.weight"])) == [
        "conv.weight",
        "net.0.bias",
        "net.1.bias",
        "net.3.bias",
    ]


def test_single_string_patterns() -> None:
    assert _names(select_parameters(Net(), include="net.*.weight", exclude="net.1.*")) == [
        "net.0.weight",
        "net.3.weight",
    ]


def test_exclude_applies_after_default() -> None:
    assert _names(select_parameters(Net(), exclude=["conv.*"])) == ["net.0.weight", "net.3.weight"]


def test_empty_selection_lists_available_names() -> None:
    with pytest.raises(ValueError, match=r"no parameter matches include=None exclude=\['\*weight'\]") as err:
        select_parameters(Net(), exclude=["*weight"])
    assert "available: conv.weight, conv.bias, bn.weight, bn.bias, net.0.weight" in str(err.value)


def test_unmatched_include_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"include pattern 'nte\.\*' matches no trainable parameter") as err:
        select_parameters(Net(), include=["conv.weight", "nte.*"])
    assert "net.3.bias" in str(err.value)
