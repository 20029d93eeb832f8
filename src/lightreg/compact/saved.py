"""``compact.pt``: a :class:`~lightreg.models.standalone.StandaloneModel` saved as tensors plus the facts that
rebuild it (no pickled objects: the file loads with ``torch.load(weights_only=True)``), and :func:`load`.

Two layouts. ``lightreg.compact/1`` (:func:`save`): the body is a layer list, each ``torch.nn`` layer by its class
name and constructor arguments, read from the layer's attributes of the same names (``Linear(in_features,
out_features, bias)``, ``Conv2d(...)``, batch norms, activations, pools, ``Flatten``), containers
(``nn.Sequential``) by their children, then the state dict. ``lightreg.compact/2`` (:func:`save_whole`): the whole
trained model (any architecture) as its class (``module:qualname``), its hyperparameters and the tensors and shape
attributes of every submodule in Torch-Pruning's layout (:mod:`lightreg.compact.state`); loading builds the model from
its class and hyperparameters, as ``load_from_checkpoint`` does, then gives it the pruned shapes and weights.
"""

from __future__ import annotations

import importlib
import inspect
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightreg.compact.state import apply_module_state, module_state
from lightreg.errors import UserError
from lightreg.models.standalone import StandaloneModel

FORMAT = "lightreg.compact/1"
WHOLE_FORMAT = "lightreg.compact/2"
PLAIN_TYPES = (str, int, float, bool, type(None))
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


def class_path(kind: type) -> str:
    """``module:qualname`` of a class that can be imported again; a local class or one of ``__main__`` is a
    ``UserError`` (a later process could not rebuild it)."""
    if "<locals>" in kind.__qualname__ or kind.__module__ == "__main__":
        raise UserError(
            f"compact.pt rebuilds the model from its class; {kind.__module__}.{kind.__qualname__} cannot be imported "
            "from another process: define it at the top level of an importable module"
        )
    return f"{kind.__module__}:{kind.__qualname__}"


def _import_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"compact.pt's model class {path!r} cannot be imported: {exc}") from None
    return found


def _plain(value: Any) -> bool:
    """Strings, numbers, ``None`` and lists, tuples and string-keyed dicts of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, PLAIN_TYPES)


def save_whole(model: nn.Module, path: str | Path, report: dict[str, Any] | None = None) -> Path:
    """Write a trained lightreg ``model`` (pruned or not) to ``path`` as :data:`WHOLE_FORMAT`: its class, its
    hyperparameters (``model.hparams``, plain values only), the facts and preprocessing of its
    :class:`~lightreg.models.standalone.StandaloneModel` and every tensor and shape attribute."""
    hparams = dict(getattr(model, "hparams", {}))
    bad = [k for k, v in hparams.items() if not _plain(v)]
    if bad:
        raise UserError(
            f"compact.pt rebuilds {type(model).__name__} from its hyperparameters; {', '.join(bad[:5])} "
            "hold objects, not plain values"
        )
    standalone = StandaloneModel.of(model)
    content = {
        "format": WHOLE_FORMAT,
        "class": class_path(type(model)),
        "hparams": hparams,
        "facts": standalone.facts(),
        "state": module_state(standalone),
        "report": report or {},
    }
    torch.save(content, path)
    return Path(path)


def _load_whole(content: dict[str, Any]) -> StandaloneModel:
    kind = _import_class(content["class"])
    hparams = dict(content["hparams"])
    signature = inspect.signature(kind.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in signature.values()):  # as load_from_checkpoint filters them
        hparams = {k: v for k, v in hparams.items() if k in signature}
    try:
        model = kind(**hparams)
    except Exception as exc:  # the class changed since the file was written
        raise UserError(f"{content['class']} cannot be built from compact.pt's hyperparameters: {exc}") from None
    standalone = StandaloneModel.of(model)  # wrapped as when saved: the same submodule names
    if standalone.facts()["whole"] != content["facts"]["whole"]:
        raise UserError(f"{content['class']}'s forward changed since compact.pt was written: compact the run again")
    apply_module_state(standalone, content["state"])
    standalone.classes = content["facts"]["classes"]
    standalone.feature_names = content["facts"]["feature_names"]
    return standalone


def load(path: str | Path) -> StandaloneModel:
    """The model in ``compact.pt`` (eval mode, CPU): ``load(path)(x)`` takes raw inputs as the trained model did (a
    layer list with removed inputs: the kept ``feature_names``, in that order) and returns logits, or predictions in
    the target's units."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"no compact model at {path}: train with compact=true or run python -m lightreg.compact"
        ) from None
    kind = content.get("format") if isinstance(content, dict) else None
    if kind == WHOLE_FORMAT:
        return _load_whole(content).eval()
    if kind != FORMAT:
        raise UserError(f"{path} is not a compact.pt of this lightreg version: compact the run again")
    model = StandaloneModel(build(content["body"]), **content["facts"])
    model.load_state_dict(content["state_dict"])
    return model.eval()


def report_of(path: str | Path) -> dict[str, Any]:
    """The compaction report saved in ``compact.pt``."""
    return torch.load(path, map_location="cpu", weights_only=True)["report"]


__all__ = ["FORMAT", "WHOLE_FORMAT", "build", "class_path", "describe", "load", "report_of", "save", "save_whole"]
