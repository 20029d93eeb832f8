"""Compaction: rebuild a network without the units, filters and inputs that a structured penalty zeroed.

Pure torch. Works on an ``nn.Sequential`` (a lightreg model's ``net``) of *producers* (``nn.Linear``,
``nn.Conv2d`` with ``groups=1``) separated by *channel-wise* layers (batch norms, element-wise activations,
dropout, pools, ``nn.Flatten``). For each producer P and the next producer Q, a unit ``c`` of P (a row of a
Linear, a filter of a Conv) is removed when

- Q reads nothing from it (Q's columns / input channel ``c`` are all zero), or
- P's row / filter ``c`` is all zero, so the channel carries a constant ``v_c`` (the bias through the batch norm,
  activation and pooling in between, in eval mode): removed outright if ``v_c = 0``, else folded into Q's bias,
  ``b_Q += v_c · Σ W_Q[:, c]``, where that is exact: always for a Linear Q, for a Conv Q only without zero padding
  (a zero-padded border sees ``v_c`` at fewer kernel taps than the interior, so no bias can stand in for it;
  such units are kept, with a note).

Inputs: columns of the first Linear (input features) or input channels of the first Conv that are all zero are
removed too; the compact network then takes ``x[:, kept_inputs]``. The passes repeat until nothing changes
(removing a unit can zero a column upstream). Layers of other types split the network into parts that are
compacted separately, with a note; a model whose network is not an ``nn.Sequential`` is returned as it is.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

PRODUCERS = (nn.Linear, nn.Conv2d)
CHANNELWISE = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SiLU,
    nn.Identity,
    nn.Dropout,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
)


@dataclass
class LayerRow:
    """One layer of the report: parameters and units (outputs) before/after, CPU latency (ms) when measured."""

    name: str
    kind: str
    params_before: int
    params_after: int = 0
    units_before: int | None = None
    units_after: int | None = None
    ms_before: float | None = None
    ms_after: float | None = None


@dataclass
class CompactionReport:
    """What :func:`compact` removed: per-layer rows, notes on what it kept and why, the kept inputs."""

    layers: list[LayerRow]
    notes: list[str] = field(default_factory=list)
    kept_inputs: list[int] | None = None
    input_count: int | None = None
    feature_names: list[str] | None = None

    @property
    def params_before(self) -> int:
        return sum(row.params_before for row in self.layers)

    @property
    def params_after(self) -> int:
        return sum(row.params_after for row in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params_before": self.params_before, "params_after": self.params_after}

    def table(self) -> str:
        """A Markdown table: per layer, parameters and units before → after, latency when measured."""
        timed = any(row.ms_before is not None for row in self.layers)
        head = "| layer | type | params before | params after | units before | units after |"
        head += " ms before | ms after |" if timed else ""
        lines = [head, "|" + " --- |" * (8 if timed else 6)]

        def fmt(v: Any) -> str:
            return "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

        for r in self.layers:
            cells = [r.name, r.kind, r.params_before, r.params_after, r.units_before, r.units_after]
            cells += [r.ms_before, r.ms_after] if timed else []
            lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
        total = ["**total**", "", self.params_before, self.params_after, "", ""]
        if timed:
            total += [sum(r.ms_before or 0.0 for r in self.layers), sum(r.ms_after or 0.0 for r in self.layers)]
        lines.append("| " + " | ".join(fmt(c) for c in total) + " |")
        if self.kept_inputs is not None:
            lines.append(f"\ninputs kept: {len(self.kept_inputs)} of {self.input_count}")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _units(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return module.num_features
    return None


def _is_producer(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def _shapes(net: nn.Sequential, x: Tensor) -> list[tuple[int, ...]]:
    """Input shape (without batch) of every child, plus the output shape at the end."""
    shapes = []
    with torch.no_grad():
        for module in net:
            shapes.append(tuple(x.shape[1:]))
            x = module(x)
    shapes.append(tuple(x.shape[1:]))
    return shapes


def _keep_rows(layer: nn.Module, keep: Tensor) -> None:
    """Keep the output units ``keep`` of a producer or the channels of a batch norm (in place)."""
    with torch.no_grad():
        layer.weight = nn.Parameter(layer.weight[keep].clone())
        if layer.bias is not None:
            layer.bias = nn.Parameter(layer.bias[keep].clone())
        if isinstance(layer, nn.Linear):
            layer.out_features = len(keep)
        elif isinstance(layer, nn.Conv2d):
            layer.out_channels = len(keep)
        else:  # batch norm
            layer.num_features = len(keep)
            layer.running_mean = layer.running_mean[keep].clone()
            layer.running_var = layer.running_var[keep].clone()


def _keep_columns(layer: nn.Module, keep: Tensor) -> None:
    with torch.no_grad():
        layer.weight = nn.Parameter(layer.weight[:, keep].clone())
        if isinstance(layer, nn.Linear):
            layer.in_features = len(keep)
        else:
            layer.in_channels = len(keep)


def _columns(unit_count: int, consumer: nn.Module) -> int:
    """Columns of ``consumer`` per unit of its producer (spatial positions after a flatten, else 1)."""
    width = consumer.in_features if isinstance(consumer, nn.Linear) else consumer.in_channels
    if width % unit_count:
        raise ValueError(f"{width} inputs of {consumer} are not a multiple of {unit_count} units")
    return width // unit_count


def _column_blocks(consumer: nn.Module, units: int) -> Tensor:
    """``consumer``'s weight as ``(out, units, per_unit...)``: the block of columns each upstream unit feeds."""
    w = consumer.weight.detach()
    if isinstance(consumer, nn.Linear):
        return w.reshape(w.shape[0], units, _columns(units, consumer))
    return w  # conv: (out, in_channels, kh, kw)


def _constant_outputs(producer: nn.Module, chain: list[nn.Module], shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Per unit: the value a zero-weight unit delivers to the next producer, and whether it is constant there."""
    units = _units(producer)
    bias = producer.bias.detach() if producer.bias is not None else torch.zeros(units)
    x = bias.view(1, units, *([1] * (len(shape) - 1))).expand(1, units, *shape[1:]).clone()
    with torch.no_grad():
        for module in chain:
            if isinstance(module, nn.Flatten):
                break
            x = module(x)
    flat = x.reshape(units, -1)
    return flat[:, 0], (flat == flat[:, :1]).all(dim=1)


def _foldable(consumer: nn.Module) -> bool:
    """A constant input channel can become bias exactly: Linear always; Conv when no zero padding is involved."""
    if isinstance(consumer, nn.Linear):
        return True
    padded = (
        any(p > 0 for p in consumer.padding) if isinstance(consumer.padding, tuple) else consumer.padding != "valid"
    )
    return not padded or consumer.padding_mode != "zeros"


def _fold(consumer: nn.Module, blocks: Tensor, values: Tensor, units: Tensor) -> None:
    """``b_Q += Σ_c v_c · Σ W_Q[:, c]`` for the given upstream ``units``."""
    add = (blocks[:, units].flatten(2).sum(dim=2) * values[units]).sum(dim=1)
    with torch.no_grad():
        if consumer.bias is None:
            consumer.bias = nn.Parameter(torch.zeros(blocks.shape[0], dtype=blocks.dtype))
        consumer.bias += add


def _pair(
    name: str,
    producer: nn.Module,
    chain: list[nn.Module],
    consumer: nn.Module,
    shape: tuple[int, ...],
    notes: list[str],
) -> bool:
    """Remove the dead units between ``producer`` and ``consumer``; True when something was removed."""
    units = _units(producer)
    if units <= 1:
        return False
    blocks = _column_blocks(consumer, units)
    unread = (blocks.transpose(0, 1).reshape(units, -1) == 0).all(dim=1)
    zero_in = (producer.weight.detach().reshape(units, -1) == 0).all(dim=1)
    values, constant = _constant_outputs(producer, chain, shape)
    silent = zero_in & constant & (values == 0)
    foldable = zero_in & constant & (values != 0) & ~unread
    if foldable.any() and not _foldable(consumer):
        notes.append(
            f"{name}: {int(foldable.sum())} zero unit(s) kept: their constant output "
            f"(e.g. {float(values[foldable][0]):.4g}) "
            "feeds a zero-padded convolution, where no bias reproduces it exactly"
        )
        foldable = torch.zeros_like(foldable)
    if (zero_in & ~constant).any():
        notes.append(
            f"{name}: {int((zero_in & ~constant).sum())} zero unit(s) kept: their output is not constant downstream"
        )
    removed = unread | silent | foldable
    if not removed.any():
        return False
    if removed.all():  # keep one unit (not folded) so that the layer and its shapes stay
        notes.append(f"{name}: every unit is dead; one is kept so that the network keeps this layer")
        removed[0], foldable[0] = False, False
    if foldable.any():
        _fold(consumer, blocks, values, foldable.nonzero().flatten())
    keep = (~removed).nonzero().flatten()
    _keep_rows(producer, keep)
    for module in chain:
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _keep_rows(module, keep)
    per_unit = _columns(units, consumer)
    columns = (keep[:, None] * per_unit + torch.arange(per_unit)).flatten() if isinstance(consumer, nn.Linear) else keep
    _keep_columns(consumer, columns)
    return True


def _compact_inputs(first: nn.Module, before: list[nn.Module], input_shape: tuple[int, ...]) -> Tensor | None:
    """Indices of the inputs the first producer reads (features of a Linear, channels of a Conv), or None when
    all are read or the layers before it would need slicing too."""
    if any(not isinstance(m, (nn.Flatten, nn.Identity, nn.Dropout)) for m in before):
        return None
    if isinstance(first, nn.Linear) and len(input_shape) != 1:
        return None  # a flattened image: pixels are not features
    w = first.weight.detach()
    read = ~(w.transpose(0, 1).reshape(w.shape[1], -1) == 0).all(dim=1)
    if read.all() or not read.any():
        return None
    keep = read.nonzero().flatten()
    _keep_columns(first, keep)
    return keep


def compact_sequential(
    net: nn.Sequential, input_shape: tuple[int, ...], feature_names: list[str] | None = None
) -> tuple[nn.Sequential, CompactionReport]:
    """Compact a copy of ``net`` (see the module doc); ``net`` itself is left untouched."""
    small = copy.deepcopy(net).eval()
    names = [name for name, _ in small.named_children()]
    modules = list(small)
    before_rows = [
        LayerRow(f"net.{n}", type(m).__name__, _params(m), units_before=_units(m)) for n, m in zip(names, modules)
    ]
    report = CompactionReport(before_rows)
    shapes = _shapes(small, torch.zeros(1, *input_shape))
    producers = [i for i, m in enumerate(modules) if _is_producer(m)]
    for i, m in enumerate(modules):
        if not _is_producer(m) and not isinstance(m, CHANNELWISE):
            report.notes.append(
                f"net.{names[i]} ({type(m).__name__}): not handled; left as it is, with the units on both sides"
            )
    kept = _compact_inputs(modules[producers[0]], modules[: producers[0]], input_shape) if producers else None
    if kept is not None:
        report.kept_inputs, report.input_count = kept.tolist(), input_shape[0]
        if feature_names is not None:
            report.feature_names = [feature_names[i] for i in report.kept_inputs]
    changed = True
    while changed:
        changed = False
        for a, b in itertools.pairwise(producers):
            chain = modules[a + 1 : b]
            if all(isinstance(m, CHANNELWISE) for m in chain):
                changed |= _pair(f"net.{names[a]}", modules[a], chain, modules[b], shapes[a + 1], report.notes)
    report.notes = list(dict.fromkeys(report.notes))
    for row, m in zip(report.layers, modules):
        row.params_after, row.units_after = _params(m), _units(m)
    return small, report


def compact(
    model: nn.Module, feature_names: list[str] | None = None, input_shape: tuple[int, ...] | None = None
) -> tuple[nn.Module, CompactionReport]:
    """``(smaller_model, report)``: a copy of ``model`` without dead units, filters and inputs (module doc).

    ``model`` is an ``nn.Sequential`` or has one as ``model.net`` (every lightreg model); then the copy keeps its
    class and gets the compact ``net`` (and ``input_shape`` / ``num_inputs`` for removed inputs). ``input_shape``
    (one sample) defaults to ``model.input_shape``. Outputs are equal to the original's, in eval mode, up to
    float rounding (``small(x[:, report.kept_inputs])`` when inputs were removed). Anything else is returned as a
    copy, unchanged, with a note.
    """
    net = model if isinstance(model, nn.Sequential) else getattr(model, "net", None)
    shape = tuple(input_shape or getattr(model, "input_shape", ()) or ())
    if not isinstance(net, nn.Sequential) or not shape:
        why = "its network is not an nn.Sequential" if not isinstance(net, nn.Sequential) else "no input_shape given"
        row = LayerRow("model", type(model).__name__, _params(model), _params(model))
        return copy.deepcopy(model), CompactionReport([row], notes=[f"{type(model).__name__}: {why}; left as it is"])
    small_net, report = compact_sequential(net, shape, feature_names)
    if net is model:
        return small_net, report
    small = copy.deepcopy(model)
    small.net = small_net
    if report.kept_inputs is not None and hasattr(small, "input_shape"):
        small.input_shape = (len(report.kept_inputs), *shape[1:])
        small.num_inputs = int(torch.tensor(small.input_shape).prod())
    return small.eval(), report
