"""``compact.pt``: a :class:`~lightreg.models.standalone.StandaloneModel` saved as its state dict plus the facts that
rebuild it (no pickled objects: the file loads with ``torch.load(weights_only=True)``), and :func:`load`.

The body is written as a layer list: each ``torch.nn`` layer by its class name and constructor arguments, read from
the layer's attributes of the same names (``Linear(in_features, out_features, bias)``, ``Conv2d(...)``, batch norms,
activations, pools, ``Flatten``), containers (``nn.Sequential``) by their children.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightreg.errors import UserError
from lightreg.models.standalone import StandaloneModel

FORMAT = "lightreg.compact/1"
SKIPPED_ARGUMENTS = frozenset({"self", "device", "dtype"})


def describe(module: nn.Module) -> dict[str, Any]:
    """``{"type", "args"}`` of a ``torch.nn`` layer, ``{"type": "Sequential", "children"}`` of a container; a layer
    of another library or a user class (not rebuildable from its name) is a ``UserError``."""
    kind = type(module)
    if kind is nn.Sequential:
        return {"type": "Sequential", "children": [[name, describe(child)] for name, child in module.named_children()]}
    if not kind.__module__.startswith("torch.nn.") or getattr(nn, kind.__name__, None) is not kind:
        raise UserError(
            f"compact.pt stores torch.nn layers by name; {kind.__module__}.{kind.__qualname__} is not one "
            "(compaction handles nn.Sequential networks of torch.nn layers)"
        )
    args: dict[str, Any] = {}
    for name, parameter in inspect.signature(kind.__init__).parameters.items():
        if name in SKIPPED_ARGUMENTS or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(module, name):
            raise UserError(f"{kind.__name__}: its argument {name!r} is not an attribute; it cannot go into compact.pt")
        value = getattr(module, name)
        if isinstance(value, torch.Tensor) or (value is None and name == "bias"):  # bias=True/False
            value = value is not None
        args[name] = list(value) if isinstance(value, tuple) else value
    return {"type": kind.__name__, "args": args}


def build(spec: dict[str, Any]) -> nn.Module:
    """The module :func:`describe` described (fresh parameters: load the state dict next)."""
    if spec["type"] == "Sequential":
        return nn.Sequential(OrderedDict((name, build(child)) for name, child in spec["children"]))
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["args"].items()}
    return getattr(nn, spec["type"])(**args)


def save(model: StandaloneModel, path: str | Path, report: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (not whole: its body is a ``torch.nn`` network) to ``path``: format, facts, layer list, state
    dict and the compaction ``report``."""
    if model.whole:
        raise UserError("compact.pt holds a network of torch.nn layers; this model's forward uses more than its net")
    content = {
        "format": FORMAT,
        "facts": model.facts(),
        "body": describe(model.body),
        "state_dict": OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()),
        "report": report or {},
    }
    torch.save(content, path)
    return Path(path)


def load(path: str | Path) -> StandaloneModel:
    """The model in ``compact.pt`` (eval mode, CPU): ``load(path)(x)`` takes raw rows of its ``feature_names`` (the
    kept inputs, in that order; images: ``input_shape``) and returns logits, or predictions in the target's units."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"no compact model at {path}: train with compact=true or run python -m lightreg.compact"
        ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise UserError(f"{path} is not a compact.pt of this lightreg version (format {FORMAT}): compact the run again")
    model = StandaloneModel(build(content["body"]), **content["facts"])
    model.load_state_dict(content["state_dict"])
    return model.eval()


def report_of(path: str | Path) -> dict[str, Any]:
    """The compaction report saved in ``compact.pt``."""
    return torch.load(path, map_location="cpu", weights_only=True)["report"]


__all__ = ["FORMAT", "build", "describe", "load", "report_of", "save"]
