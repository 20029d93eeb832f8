"""Physical removal of all-zero coupled channel groups from any traceable module, with Torch-Pruning's graph.

A channel is removed when *every* slice coupled to it (:mod:`lightreg.compact.coupling`: its filter, bias entry,
normalization scale and shift, and the input slices of all its consumers) is exactly zero. Its activation then never
reaches an output: whatever constant flows in it (a running mean through a zero BatchNorm scale gives 0; an
activation with ``f(0) ≠ 0`` such as a sigmoid gives a constant) meets consumer slices that are all zero. Channels
whose filters are zero but whose bias or BatchNorm shift is not are kept (they carry a non-zero constant; the
Sequential compaction of :mod:`lightreg.compact.core` folds those). Each layer keeps at least one channel. A group
coupled to a ``LayerNorm`` or ``GroupNorm`` is kept too: those normalize *across* channels, so even an all-zero
channel weighs in the mean and variance of the others. As a last guard the outputs of the pruned copy are compared
with the original's on the example input, and a change beyond :data:`OUTPUT_TOLERANCE` is an error, never a
silently different model.

Save and reload: :func:`save_pruned` writes Torch-Pruning's ``state_dict`` of the pruned modules (tensors and each
module's shape attributes, no pickled code); :func:`load_pruned` applies it to a freshly built model of the original
architecture.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import Tensor, nn

from lightreg.compact.coupling import channel_groups, coupled_layout, eval_mode
from lightreg.compact.state import apply_module_state, is_module_state, module_state
from lightreg.errors import UserError

CROSS_CHANNEL_NORMS = (nn.LayerNorm, nn.GroupNorm)
"""Normalizations whose statistics mix channels: removing even a zero channel would change the others."""
OUTPUT_TOLERANCE = 1e-4
"""Largest output change allowed by :func:`remove_zero_groups`, relative to ``1 + max |output|`` (float32 sums in
another order differ by about 1e-6)."""


@dataclass
class PruningReport:
    """Figures of one removal: parameters and MACs per sample (Torch-Pruning's counter) before/after, the
    channels per root layer ``{name: [before, after]}`` and the largest output change on the example input."""

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    channels: dict[str, list[int]] = field(default_factory=dict)
    removed_groups: int = 0
    max_output_change: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _zero_channels(module: nn.Module, example_input: Tensor, groups: list) -> dict[str, list[int]]:
    """Per root layer name: the channels whose coupled slices are all exactly zero (``groups``: the module's)."""
    if not groups:
        return {}  # no hidden channel (a linear model): nothing to remove
    layout, roots = coupled_layout(module, example_input, groups)
    params = dict(module.named_parameters())
    nonzero = layout.reduce({n: (params[n].detach() != 0).to(params[n].dtype) for n in layout.names}) > 0
    return {r.root: [k for k in range(r.channels) if not bool(nonzero[r.first + k])] for r in roots}


def count(module: nn.Module, example_input: Tensor) -> tuple[int, int]:
    """Parameters and MACs per sample (Torch-Pruning's counter on the first row of ``example_input``)."""
    with eval_mode(module), torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(module, example_input[:1])
    return int(params), int(macs)


def remove_zero_groups(module: nn.Module, example_input: Tensor) -> tuple[nn.Module, PruningReport]:
    """A copy of ``module`` without its all-zero coupled channel groups (whole model, one traced forward pass), and
    the report. Outputs are unchanged (eval mode); the report's ``max_output_change`` measures it on
    ``example_input``. A module Torch-Pruning cannot trace is a one-line :class:`UserError`, and so is a removal that
    would change the outputs by more than :data:`OUTPUT_TOLERANCE`.
    """
    pruned = copy.deepcopy(module)
    params_before, macs_before = count(pruned, example_input)
    graph, groups = channel_groups(pruned, example_input)
    zeros = _zero_channels(pruned, example_input, groups)
    names = {m: n for n, m in pruned.named_modules()}
    channels: dict[str, list[int]] = {}
    removed = 0
    for group in groups:
        root = group[0].dep.target.module
        name, total = names[root], len(group[0].idxs)
        idxs = zeros.get(name, [])[: total - 1]  # a layer keeps at least one channel
        if any(isinstance(item.dep.target.module, CROSS_CHANNEL_NORMS) for item in group):
            idxs = []
        if idxs:
            sub = graph.get_pruning_group(root, group[0].dep.handler, idxs)
            if graph.check_pruning_group(sub):
                sub.prune()
                removed += len(idxs)
            else:
                idxs = []
        channels[name] = [total, total - len(idxs)]
    params_after, macs_after = count(pruned, example_input)
    with eval_mode(module), eval_mode(pruned), torch.no_grad():
        reference, output = module(example_input), pruned(example_input)
    if reference.shape != output.shape:
        raise UserError(
            f"removing the zero channel groups of {type(module).__name__} changed its output shape from "
            f"{tuple(reference.shape)} to {tuple(output.shape)} (a coupling Torch-Pruning does not see); keep the model "
            "unpruned"
        )
    change = float((reference - output).abs().max())
    if change > OUTPUT_TOLERANCE * (1 + float(reference.abs().max())):
        raise UserError(
            f"removing the zero channel groups of {type(module).__name__} changed its outputs by {change:.3g} on the "
            "example input (a coupling Torch-Pruning does not see); keep the model unpruned"
        )
    report = PruningReport(params_before, params_after, macs_before, macs_after, channels, removed, change)
    return pruned, report


def save_pruned(module: nn.Module, path: str | Path) -> None:
    """Write the pruned ``module``'s tensors and shape attributes to ``path`` in Torch-Pruning's ``state_dict`` layout
    (:func:`lightreg.compact.state.module_state`)."""
    torch.save(module_state(module), Path(path))


def load_pruned(module: nn.Module, path: str | Path) -> nn.Module:
    """``module`` (a fresh model of the original architecture) given the pruned shapes and weights saved at ``path``."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no pruned model at {path}: write it with save_pruned(module, path)") from None
    if not is_module_state(state):
        raise UserError(f"{path} is not a pruned model written by save_pruned")
    names = {n for n, _ in module.named_modules()}
    missing = sorted(set(state["full_state_dict"]) - names)
    if missing:
        raise UserError(f"{path} holds modules {missing[:5]} that {type(module).__name__} does not have: another model")
    return apply_module_state(module, state)  # sets each module's tensors and shape attributes


__all__ = ["PruningReport", "count", "load_pruned", "remove_zero_groups", "save_pruned"]
