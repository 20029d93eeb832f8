"""Sparsity figures of weight tensors: pure torch, no Lightning (the monitor callback and the report use them).

Conventions for a weight ``w`` with ``w.ndim >= 2`` (Linear ``(out, in)``, conv ``(out, in, *kernel)``):
a *unit* is ``w[i]`` (a row: an output unit, or a conv filter) and an *input* is ``w[:, j]`` (a column: an
input feature, or a conv input channel). A unit whose weights are all exactly zero is *dead*; an input whose
column is all exactly zero is *dropped* (the layer ignores it). 1-D tensors have neither.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

SCHEMA_VERSION = 1
"""Format version of ``sparsity.json`` (written by the monitor callback, read by :mod:`lightreg.report`)."""

COUNTS = ("zeros", "near_zero", "dead_units", "dropped_inputs", "to_zero", "from_zero")
"""The integer figures :func:`measure` computes per tensor, in this order."""


@dataclass(frozen=True)
class TensorSparsity:
    """Sparsity of one tensor. Counts are numbers of entries (or of units/inputs); fractions are in [0, 1].

    ``to_zero`` / ``from_zero``: entries that became exactly zero / left zero since the previous measurement
    (``None`` without one); their sum is the support churn.
    """

    name: str
    shape: tuple[int, ...]
    numel: int
    zeros: int
    near_zero: int
    units: int | None
    dead_units: int | None
    inputs: int | None
    dropped_inputs: int | None
    to_zero: int | None = None
    from_zero: int | None = None

    @property
    def nnz(self) -> int:
        """Number of entries that are not exactly zero."""
        return self.numel - self.zeros

    @property
    def zero_fraction(self) -> float:
        """``#{w == 0} / numel``."""
        return self.zeros / self.numel if self.numel else 0.0

    @property
    def near_zero_fraction(self) -> float:
        """``#{|w| <= atol} / numel``."""
        return self.near_zero / self.numel if self.numel else 0.0

    @property
    def churn(self) -> int | None:
        """Entries whose zero / non-zero status changed since the previous measurement."""
        return None if self.to_zero is None or self.from_zero is None else self.to_zero + self.from_zero

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures, derived ones included."""
        return {
            **asdict(self),
            "shape": list(self.shape),
            "nnz": self.nnz,
            "zero_fraction": self.zero_fraction,
            "near_zero_fraction": self.near_zero_fraction,
            "churn": self.churn,
        }


def zero_groups(zero: Tensor, dim: int) -> Tensor:
    """Boolean vector over ``zero.shape[dim]``: True where the slice ``zero.select(dim, i)`` is all True.

    Counts the non-zeros of each slice (a bool ``sum`` over the other dims is several times faster on CPU than
    ``all`` over a transposed copy)."""
    others = tuple(d for d in range(zero.ndim) if d != dim)
    return (~zero).sum(dim=others) == 0


def _counts(w: Tensor, atol: float, previous: Tensor | None) -> tuple[Tensor, Tensor]:
    """The :data:`COUNTS` of ``w`` as one int64 tensor (on ``w``'s device, no sync), and its zero mask."""
    zero = w == 0
    near = zero if atol == 0 else w.abs() <= atol
    none = torch.zeros((), dtype=torch.int64, device=w.device)
    dead = zero_groups(zero, 0).sum() if w.ndim >= 2 else none
    dropped = zero_groups(zero, 1).sum() if w.ndim >= 2 else none
    if previous is None:
        to_zero = from_zero = none
    else:
        to_zero, from_zero = (zero & ~previous).sum(), (previous & ~zero).sum()
    return torch.stack([zero.sum(), near.sum(), dead, dropped, to_zero, from_zero]), zero


@torch.no_grad()
def measure(
    tensors: Mapping[str, Tensor],
    atol: float = 0.0,
    previous: Mapping[str, Tensor] | None = None,
) -> tuple[list[TensorSparsity], dict[str, Tensor]]:
    """Sparsity of every tensor, and their zero masks (pass them as ``previous`` next time for the churn).

    Reads each tensor about three times and synchronizes with the device once, whatever the number of tensors.
    ``atol`` >= 0 is the tolerance of ``near_zero`` (``|w| <= atol``, so ``atol=0`` counts exact zeros).
    """
    if not math.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    previous = previous or {}
    counts, masks = [], {}
    for name, w in tensors.items():
        prev = previous.get(name)
        c, masks[name] = _counts(w.detach(), atol, prev if prev is not None and prev.shape == w.shape else None)
        counts.append(c)
    rows = torch.stack([c.to(counts[0].device) for c in counts]).tolist() if counts else []
    stats = []
    for (name, w), row in zip(tensors.items(), rows):
        figures = dict(zip(COUNTS, row))
        has_groups = w.ndim >= 2
        has_prev = name in previous and previous[name].shape == w.shape
        stats.append(
            TensorSparsity(
                name=name,
                shape=tuple(w.shape),
                numel=w.numel(),
                zeros=figures["zeros"],
                near_zero=figures["near_zero"],
                units=w.shape[0] if has_groups else None,
                dead_units=figures["dead_units"] if has_groups else None,
                inputs=w.shape[1] if has_groups else None,
                dropped_inputs=figures["dropped_inputs"] if has_groups else None,
                to_zero=figures["to_zero"] if has_prev else None,
                from_zero=figures["from_zero"] if has_prev else None,
            )
        )
    return stats, masks


def totals(stats: Sequence[TensorSparsity]) -> dict[str, float | int | None]:
    """Sums over tensors: ``numel, nnz, zeros, near_zero, dead_units, units, dropped_inputs, inputs, churn``
    (counts), and ``zero_fraction = Σ zeros / Σ numel``, ``near_zero_fraction`` likewise. ``churn`` is ``None``
    unless every tensor has one."""
    numel = sum(s.numel for s in stats)
    out: dict[str, float | int | None] = {"numel": numel}
    for key in ("nnz", "zeros", "near_zero"):
        out[key] = sum(getattr(s, key) for s in stats)
    for key in ("dead_units", "units", "dropped_inputs", "inputs"):
        out[key] = sum(getattr(s, key) or 0 for s in stats)
    churns = [s.churn for s in stats]
    out["churn"] = None if not stats or any(c is None for c in churns) else sum(churns)  # type: ignore[arg-type]
    out["zero_fraction"] = out["zeros"] / numel if numel else 0.0  # type: ignore[operator]
    out["near_zero_fraction"] = out["near_zero"] / numel if numel else 0.0  # type: ignore[operator]
    return out


@dataclass(frozen=True)
class FeatureSelection:
    """Which inputs a first-layer weight ``w`` (``(units, inputs, ...)``) still uses.

    ``importance[j] = ‖w[:, j]‖₂`` (column L2 norm, in weight units); input ``j`` is *selected* when its column
    has at least one non-zero entry, i.e. ``importance[j] > 0``. ``names`` are the data's column names when known.
    """

    layer: str
    importance: list[float]
    selected: list[int]
    names: list[str] | None = None

    @property
    def count(self) -> int:
        return len(self.importance)

    @property
    def dropped(self) -> list[int]:
        chosen = set(self.selected)
        return [j for j in range(self.count) if j not in chosen]

    def label(self, j: int) -> str:
        """Name of input ``j`` (its column name, else ``#j``)."""
        return self.names[j] if self.names else f"#{j}"

    def as_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "count": self.count,
            "selected": self.selected,
            "selected_names": [self.label(j) for j in self.selected],
            "dropped": self.dropped,
            "dropped_names": [self.label(j) for j in self.dropped],
            "importance": self.importance,
            "names": self.names,
        }


@torch.no_grad()
def feature_selection(layer: str, w: Tensor, names: Sequence[str] | None = None) -> FeatureSelection:
    """Column norms and selected inputs of the first-layer weight ``w`` (needs ``w.ndim >= 2``).

    ``names`` is used only when it has one name per column (else inputs are shown as ``#j``).
    """
    if w.ndim < 2:
        raise ValueError(f"{layer}: feature selection needs a weight with ndim >= 2, got shape {tuple(w.shape)}")
    w = w.detach()
    norms = w.movedim(1, 0).reshape(w.shape[1], -1).float().norm(dim=1)
    selected = torch.nonzero(norms > 0).flatten().tolist()
    usable = list(names) if names is not None and len(names) == w.shape[1] else None
    return FeatureSelection(layer=layer, importance=norms.cpu().tolist(), selected=selected, names=usable)


def input_weight(named: Sequence[tuple[str, Tensor]]) -> str | None:
    """Name of the first weight with ``ndim >= 2`` in ``named`` (``named_parameters()`` order is the order the
    layers were registered, the input layer first in lightreg's models); ``None`` if there is none."""
    return next((name for name, w in named if w.ndim >= 2), None)


@dataclass(frozen=True)
class Histogram:
    """Histogram of ``|w|`` over non-zero entries with log-spaced ``edges`` (``len(counts) + 1`` edges, in weight
    units), plus the number of exact ``zeros`` that a log axis cannot show."""

    edges: list[float]
    counts: list[int]
    zeros: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@torch.no_grad()
def magnitude_histogram(w: Tensor, bins: int = 40) -> Histogram:
    """``bins`` log-spaced bins from the smallest to the largest non-zero ``|w|`` (a decade wide if they are equal)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    mag = w.detach().abs().flatten().double()
    nonzero = mag[mag > 0]
    zeros = int(mag.numel() - nonzero.numel())
    if nonzero.numel() == 0:
        return Histogram(edges=[], counts=[], zeros=zeros)
    logs = nonzero.log10()
    low, high = float(logs.min()), float(logs.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(logs, bins=bins, min=low, max=high).round().long()
    edges = torch.logspace(low, high, bins + 1, dtype=torch.float64)
    return Histogram(edges=edges.tolist(), counts=counts.tolist(), zeros=zeros)
