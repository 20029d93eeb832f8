"""User models whose ``forward`` is more than ``net(x)``, for the compaction and export tests (importable by ``model._target_``
and by :func:`lightreg.compact.load`): a skip path beside the network, two branches concatenated, and one that
Torch-Pruning cannot trace."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightreg.models import MLP, LightregModule


class SkipMLP(MLP):
    """An MLP plus a linear path from the inputs to the outputs: ``net(x) + skip(x)``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skip = nn.Linear(self.num_inputs, self.num_outputs, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + self.skip(x.flatten(1))


class ConcatMLP(LightregModule):
    """Two hidden branches (tanh, relu) of ``width`` units each, concatenated before the output layer."""

    def __init__(self, width: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = nn.ModuleDict(
            {
                "a": nn.Linear(self.num_inputs, width),
                "b": nn.Linear(self.num_inputs, width),
                "out": nn.Linear(2 * width, self.num_outputs),
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return self.net["out"](torch.cat([self.net["a"](x).tanh(), self.net["b"](x).relu()], dim=1))


class Untraceable(MLP):
    """Trains as an MLP, but in eval mode returns a dict: no single output tensor to trace."""

    def forward(self, x: Tensor) -> Any:
        return self.net(x) if self.training else {"logits": self.net(x)}
