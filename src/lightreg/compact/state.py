"""A module's tensors and shape attributes in Torch-Pruning's ``state_dict`` layout, and their reapplication.

``{"full_state_dict": {module name: {"_parameters": ..., "_buffers": ...}}, "attributions": {module name: {shape
attribute: value}}}``: what a pruned module needs beyond its class to be rebuilt (``in_channels``, ``out_features``,
``num_features`` ... and the tensors of their new sizes). Plain tensors and numbers only, so the file loads with
``torch.load(weights_only=True)``. Pure torch.
"""

from __future__ import annotations

from typing import Any

import torch_pruning as tp
from torch import nn

ATTRIBUTE_TYPES = (int, float, bool, str, tuple, type(None))
"""Module attributes kept: the shapes (``in_channels``, ``num_features`` ...), no objects."""


def _plain(value: object) -> bool:
    """Numbers, strings and tuples of them: what a layer's shape attributes are."""
    return all(_plain(v) for v in value) if isinstance(value, tuple) else isinstance(value, ATTRIBUTE_TYPES)


def module_state(module: nn.Module) -> dict[str, dict[str, Any]]:
    """``module``'s parameters, buffers (persistent or not) and plain attributes per submodule, Torch-Pruning's layout
    (``tp.state_dict`` itself reads every property, which a LightningModule without a Trainer refuses). Save it from
    the CPU."""
    full, attributes = {}, {}
    for name, sub in module.named_modules():
        full[name] = {"_parameters": dict(sub._parameters), "_buffers": dict(sub._buffers)}
        attributes[name] = {
            k: v for k, v in vars(sub).items() if not k.startswith("_") and k != "training" and _plain(v)
        }
    return {"full_state_dict": full, "attributions": attributes}


def is_module_state(state: object) -> bool:
    """Whether ``state`` has :func:`module_state`'s layout."""
    return isinstance(state, dict) and set(state) == {"full_state_dict", "attributions"}


def apply_module_state(module: nn.Module, state: dict[str, dict[str, Any]]) -> nn.Module:
    """``module`` (freshly built, same architecture) given the tensors and shape attributes of ``state``."""
    return tp.load_state_dict(module, state)


__all__ = ["apply_module_state", "is_module_state", "module_state"]
