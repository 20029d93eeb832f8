"""Coupled channel groups of any module, from Torch-Pruning's dependency graph (one traced forward pass).

A *channel group* is one prunable channel (a conv filter, a Linear unit) with every tensor slice coupled to it: its
bias entry, the BatchNorm/LayerNorm scale and shift of that channel, the input slices of every consumer, and the
channels tied to it by residual adds and concatenations (Torch-Pruning merges them). The layers whose output is the
model's output are never roots (their channels are the model's outputs). :func:`coupled_layout` turns the graph into
the :class:`~lightreg.penalties.coupled.CoupledGroups` the coupled group lasso acts on; :func:`macs_per_entry` gives the
MACs that the ``macs`` group weight of :mod:`lightreg.penalties.coupled` counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import Tensor, nn
from torch_pruning.pruner import function as tpf

from lightreg.errors import UserError
from lightreg.loss_graph import graph_nodes
from lightreg.penalties.coupled import CoupledGroups, Slices

OUT_FNS = (tpf.prune_conv_out_channels, tpf.prune_linear_out_channels, tpf.prune_depthwise_conv_out_channels)
IN_FNS = (tpf.prune_conv_in_channels, tpf.prune_linear_in_channels, tpf.prune_depthwise_conv_in_channels)
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
NAMES_SHOWN = 5


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (batch norms keep their running statistics) with gradients on, the training flags restored after."""
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        for m, flag in flags.items():
            m.training = flag


def output_layers(module: nn.Module, example_input: Tensor) -> list[nn.Module]:
    """The layers whose channels are the model's outputs: walking the autograd graph back from the output, the first
    leaf module with parameters on each path (the classifier; both branches of ``net(x) + skip(x)``; a conv before a
    global pooling), and the normalizations on the way to it. Parameter-free modules and tensor operations (an
    activation, ``mean + std · out``, a concatenation) are walked through."""
    produced: dict[object, nn.Module] = {}

    def record(m: nn.Module, _inputs: object, out: object) -> None:
        if isinstance(out, Tensor) and out.grad_fn is not None:
            produced[out.grad_fn] = m

    leaves = [m for m in module.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with eval_mode(module):
            result = module(example_input)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(result, Tensor):
        raise UserError(
            f"{type(module).__name__} returns {type(result).__name__}; coupled groups need one output tensor"
        )

    def walks_through(node: object) -> bool:  # a layer that makes its channels ends the path
        layer = produced.get(node)
        return layer is None or isinstance(layer, NORM_TYPES)

    nodes = graph_nodes(result.grad_fn, walks_through)
    return list(dict.fromkeys(produced[node] for node in nodes if node in produced))


def macs_per_entry(module: nn.Module, example_input: Tensor, names: list[str]) -> dict[str, float]:
    """For each parameter name: its layer's multiply-accumulates per sample divided by the layer's own parameter
    count (Torch-Pruning's per-layer counter, ``count_ops_and_params(layer_wise=True)``, on the first row of
    ``example_input`` in eval mode); a conv's weight and bias entries get the output map's size, a Linear's 1.
    A layer the counter does not count gets 0."""
    with eval_mode(module), torch.no_grad():
        _, _, layer_macs, _ = tp.utils.count_ops_and_params(module, example_input[:1], layer_wise=True)
    out = {}
    for name in names:
        owner = module.get_submodule(name.rpartition(".")[0])
        own = sum(p.numel() for p in owner.parameters(recurse=False))
        out[name] = float(layer_macs.get(owner) or 0.0) / own
    return out


def dependency_graph(module: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    """Torch-Pruning's graph of ``module`` traced on ``example_input`` (eval mode); a one-line error if it fails."""
    try:
        with eval_mode(module):
            return tp.DependencyGraph().build_dependency(module, example_inputs=example_input, verbose=False)
    except UserError:
        raise
    except Exception as exc:  # the tracer's own failure, whatever its type
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"Torch-Pruning cannot trace {type(module).__name__} on an input of shape {tuple(example_input.shape)} "
            f"({first}); use groups=rows|columns|filters|channels or a model whose forward is traceable"
        ) from None


def channel_groups(module: nn.Module, example_input: Tensor) -> tuple[tp.DependencyGraph, list]:
    """The graph and its prunable groups (each Torch-Pruning group holds all channels of its root layer)."""
    graph = dependency_graph(module, example_input)
    ignored = output_layers(module, example_input)
    return graph, list(graph.get_all_groups(ignored_layers=ignored))


def _param_dims(layer: nn.Module, fn: object) -> list[tuple[str, int]]:
    """The ``(parameter, dim)`` pairs that a Torch-Pruning pruning function slices on ``layer``."""
    if isinstance(layer, nn.modules.conv._ConvNd):
        transposed = layer.transposed
        depthwise = layer.groups > 1 and layer.groups == layer.in_channels == layer.out_channels
        if layer.groups > 1 and not depthwise:
            raise UserError(
                f"grouped convolution {layer} (groups={layer.groups}) is not supported by groups=coupled; "
                "exclude it (penalty.exclude) or use groups=filters"
            )
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        if fn in OUT_FNS or depthwise:
            return [("weight", out_dim), ("bias", 0)]
        return [("weight", in_dim)]
    if isinstance(layer, nn.Linear):
        return [("weight", 0), ("bias", 0)] if fn in OUT_FNS else [("weight", 1)]
    if isinstance(layer, (*NORM_TYPES, nn.PReLU)):
        return [("weight", 0), ("bias", 0)]
    return [("?", -1)]  # a layer type with parameters this layout does not know


@dataclass(frozen=True)
class ChannelGroup:
    """One Torch-Pruning group: ``root`` (module name) and its channels, numbered from ``first`` in the layout."""

    root: str
    channels: int
    first: int


def coupled_layout(
    module: nn.Module, example_input: Tensor, groups: list | None = None
) -> tuple[CoupledGroups, list[ChannelGroup]]:
    """Every channel group of ``module`` as :class:`CoupledGroups` over its named parameters, and the groups' roots.

    ``groups``: those of :func:`channel_groups` on the same module and input, when already built (one trace less).
    Raises :class:`UserError` for a layer with parameters that Torch-Pruning couples but this layout cannot slice.
    """
    if groups is None:
        _, groups = channel_groups(module, example_input)
    names = {m: n for n, m in module.named_modules()}
    params = dict(module.named_parameters())
    index: dict[tuple[str, int], Tensor] = {}
    roots: list[ChannelGroup] = []
    unknown: set[str] = set()
    offset = 0
    for group in groups:
        root_layer = group[0].dep.target.module
        channels = len(group[0].idxs)
        for item in group:
            layer, fn = item.dep.target.module, item.dep.handler
            if not isinstance(layer, nn.Module) or not list(layer.parameters(recurse=False)):
                continue  # adds, concatenations, activations: no parameter to slice
            for pname, dim in _param_dims(layer, fn):
                if dim < 0:
                    unknown.add(f"{names.get(layer, '?')} ({type(layer).__name__})")
                    continue
                full = f"{names[layer]}.{pname}" if names[layer] else pname
                if full not in params:  # a conv without bias, a norm without affine
                    continue
                key = (full, dim)
                if key not in index:
                    index[key] = torch.full((params[full].shape[dim],), -1, dtype=torch.long)
                positions = torch.as_tensor(item.idxs, dtype=torch.long)
                roots_of = torch.as_tensor(item.root_idxs, dtype=torch.long) + offset
                index[key][positions] = torch.where(index[key][positions] < 0, roots_of, index[key][positions])
        roots.append(ChannelGroup(names[root_layer], channels, offset))
        offset += channels
    if unknown:
        shown = sorted(unknown)
        more = f" ... ({len(shown) - NAMES_SHOWN} more)" if len(shown) > NAMES_SHOWN else ""
        raise UserError(
            f"groups=coupled cannot slice the parameters of {', '.join(shown[:NAMES_SHOWN])}{more}; "
            "exclude them from the model or use groups=rows|columns|filters|channels"
        )
    if not index:
        raise UserError(
            f"{type(module).__name__} has no prunable channel (only output layers): groups=coupled needs a hidden layer"
        )
    slices = [Slices(name, dim, idx) for (name, dim), idx in index.items()]
    return CoupledGroups(slices, offset, {n: p.shape for n, p in params.items()}), roots


__all__ = [
    "ChannelGroup",
    "channel_groups",
    "coupled_layout",
    "dependency_graph",
    "eval_mode",
    "macs_per_entry",
    "output_layers",
]
