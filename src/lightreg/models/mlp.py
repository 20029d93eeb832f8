"""Multi-layer perceptron."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from lightreg.errors import UserError
from lightreg.models.base import LightregModule

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


class MLP(LightregModule):
    """``Flatten → [fc_i → activation → dropout] × len(hidden_sizes) → out``.

    Layer names are stable and readable for ``penalty.include`` patterns: ``net.fc1`` is the input layer
    (its weight's columns are the input features), ``net.fc2`` …, ``net.out`` the output layer.

    Args:
        hidden_sizes: widths of the hidden layers, e.g. ``[50, 30, 10]``.
        activation: one of ``relu, leaky_relu, tanh, sigmoid, gelu, elu, silu``.
        dropout: dropout probability after each hidden activation (0 = none).
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (
            not isinstance(hidden_sizes, Sequence)
            or isinstance(hidden_sizes, str)
            or not hidden_sizes
            or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden_sizes)
        ):
            raise UserError(f"hidden_sizes must be a non-empty list of positive integers, got {hidden_sizes!r}")
        if activation not in ACTIVATIONS:
            raise UserError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout}")
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        width = self.num_inputs
        for i, size in enumerate(hidden_sizes, start=1):
            layers[f"fc{i}"] = nn.Linear(width, int(size))
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout(dropout)
            width = int(size)
        layers["out"] = nn.Linear(width, self.num_outputs)
        self.net = nn.Sequential(layers)
