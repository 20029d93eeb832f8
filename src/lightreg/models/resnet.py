"""torchvision's ResNet-18/34 sized by the data module (classes, input channels), optionally with a small-input stem."""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision import models

from lightreg.errors import UserError
from lightreg.models.base import LightregModule
from lightreg.models.cnn import image_shape

ARCHS = {"resnet18": (models.resnet18, models.ResNet18_Weights), "resnet34": (models.resnet34, models.ResNet34_Weights)}


class ResNet(LightregModule):
    """``torchvision.models.resnet18`` / ``resnet34`` with ``num_outputs`` classes.

    ``small_input=True`` (CIFAR-sized 32×32 images) replaces the ImageNet stem (7×7 conv stride 2 + 3×3 max-pool,
    which leaves a 32×32 image 8×8 before the first block) by a 3×3 stride-1 conv and no pool. An input with
    other than 3 channels gets a new first conv. ``pretrained=True`` loads torchvision's ImageNet weights
    (downloaded once to the torch hub cache; needs internet) into every layer but the replaced ones.

    Args:
        arch: ``resnet18`` | ``resnet34``.
        small_input: 3×3 stride-1 stem, no max-pool.
        pretrained: start from ImageNet weights (default off).
    """

    def __init__(
        self, arch: str = "resnet18", small_input: bool = False, pretrained: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        in_channels, _, _ = image_shape(self.input_shape, "resnet")
        if arch not in ARCHS:
            raise UserError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
        build, weights = ARCHS[arch]
        net = build(weights=weights.DEFAULT if pretrained else None)
        if small_input:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Linear(net.fc.in_features, self.num_outputs)
        self.net = net
