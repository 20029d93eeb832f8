"""LeNet-style convolutional network for any ``C×H×W`` input."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from lightreg.errors import UserError
from lightreg.models.base import LightregModule
from lightreg.models.mlp import ACTIVATIONS


def _positive_ints(value: Any, what: str, allow_empty: bool) -> list[int]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or (not value and not allow_empty)
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value)
    ):
        raise UserError(
            f"{what} must be a {'' if allow_empty else 'non-empty '}list of positive integers, got {value!r}"
        )
    return [int(v) for v in value]


def image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """``(C, H, W)`` or a one-line error telling that ``model`` needs image-shaped inputs."""
    if len(input_shape) != 3:
        raise UserError(
            f"model={model} needs image-shaped inputs (C, H, W), but the data gives samples of shape "
            f"{tuple(input_shape)}: "
            "use an image dataset (data=digits_images, mnist, fashion_mnist, cifar10) or model=mlp for tables"
        )
    return input_shape  # type: ignore[return-value]


class CNN(LightregModule):
    """``[conv_i → (bn_i) → act_i → pool_i] × len(channels) → flatten → [fc_i → act → dropout] × … → out``.

    Convolutions keep the spatial size (``padding = kernel_size // 2``); each block then halves it with a 2×2
    max-pool while it is at least 2, so 1×8×8, 1×28×28 and 3×32×32 inputs all work. Layer names are stable for
    ``penalty.include`` patterns and for :func:`lightreg.compact`: ``net.conv1`` …, ``net.bn1`` …, ``net.fc1`` …,
    ``net.out``. A conv weight is ``(out_channels, in_channels, k, k)``: group lasso with ``groups=filters`` zeroes
    whole output channels, ``groups=channels`` whole input channels.

    Args:
        channels: output channels of the conv layers, e.g. ``[16, 32]``.
        kernel_size: odd square kernel size.
        hidden_sizes: widths of the fully connected layers after the convolutions (may be empty).
        activation: one of ``relu, leaky_relu, tanh, sigmoid, gelu, elu, silu``.
        batch_norm: a ``BatchNorm2d`` after each convolution (the conv then has no bias).
        dropout: dropout probability after each hidden fully connected layer.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        in_channels, height, width = image_shape(self.input_shape, "cnn")
        channels = _positive_ints(channels, "channels", allow_empty=False)
        hidden_sizes = _positive_ints(hidden_sizes, "hidden_sizes", allow_empty=True)
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size <= 0
            or kernel_size % 2 == 0
        ):
            raise UserError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        if activation not in ACTIVATIONS:
            raise UserError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, out_channels in enumerate(channels, start=1):
            layers[f"conv{i}"] = nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm
            )
            if batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if min(height, width) >= 2:
                layers[f"pool{i}"] = nn.MaxPool2d(2)
                height, width = height // 2, width // 2
            in_channels = out_channels
        layers["flatten"] = nn.Flatten()
        features = in_channels * height * width
        for i, size in enumerate(hidden_sizes, start=1):
            layers[f"fc{i}"] = nn.Linear(features, size)
            layers[f"fc_act{i}"] = ACTIVATIONS[activation]()
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout(dropout)
            features = size
        layers["out"] = nn.Linear(features, self.num_outputs)
        self.net = nn.Sequential(layers)
