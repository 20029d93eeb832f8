"""The layer shapes of a model pruned in place, kept in its checkpoints so that the checkpoints load again.

Pruning during training (``callbacks=prune``) shrinks layers in place, but ``load_from_checkpoint`` builds the model
from its hyperparameters at the original sizes. :func:`shapes_of` records, per submodule, its plain shape attributes
(``in_channels``, ``out_features``, ``num_features`` ...) and the shapes of its parameters and buffers;
:func:`reshape_` gives a freshly built model of the same architecture those shapes (uninitialized tensors: the
state dict loads next). Pure torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CHECKPOINT_KEY = "lightreg_pruned_shapes"
"""The checkpoint entry holding :func:`shapes_of` of a pruned model."""
PLAIN_TYPES = (int, float, bool, str, type(None))


def _plain(value: object) -> bool:
    """Numbers, strings, ``None`` and tuples of them: what a layer's shape attributes are."""
    return all(_plain(v) for v in value) if isinstance(value, tuple) else isinstance(value, PLAIN_TYPES)


def shapes_of(module: nn.Module) -> dict[str, dict[str, Any]]:
    """Per submodule name: ``{"attributes": {...}, "tensors": {parameter or buffer name: shape}}``."""
    shapes = {}
    for name, sub in module.named_modules():
        attributes = {k: v for k, v in vars(sub).items() if not k.startswith("_") and k != "training" and _plain(v)}
        tensors = {k: list(t.shape) for k, t in [*sub._parameters.items(), *sub._buffers.items()] if t is not None}
        shapes[name] = {"attributes": attributes, "tensors": tensors}
    return shapes


@torch.no_grad()
def reshape_(module: nn.Module, shapes: dict[str, dict[str, Any]]) -> None:
    """In place: give ``module``'s submodules the attributes and tensor shapes in ``shapes`` (from :func:`shapes_of`
    on a pruned model of the same architecture); a tensor whose shape changes is replaced by an uninitialized one."""
    modules = dict(module.named_modules())
    for name, entry in shapes.items():
        sub = modules.get(name)
        if sub is None:
            continue  # a module the pruned model had and this one lacks: load_state_dict reports its keys
        for key, value in entry["attributes"].items():
            if hasattr(sub, key) and _plain(getattr(sub, key)):
                setattr(sub, key, tuple(value) if isinstance(value, list) else value)
        for key, shape in entry["tensors"].items():
            for store in (sub._parameters, sub._buffers):
                old = store.get(key)
                if old is None or list(old.shape) == list(shape):
                    continue
                new = torch.empty(shape, dtype=old.dtype, device=old.device)
                store[key] = nn.Parameter(new, requires_grad=old.requires_grad) if store is sub._parameters else new


__all__ = ["CHECKPOINT_KEY", "reshape_", "shapes_of"]
