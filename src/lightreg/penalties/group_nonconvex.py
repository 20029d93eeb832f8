"""Group MCP and group SCAD (Breheny & Huang 2015): MCP/SCAD of each group's norm, unit weight ``c = √size``.

``λR(w) = Σ_g MCP_{λ√size, γ}(‖w_g‖₂)`` (resp. SCAD), the nonconvex counterparts of the group lasso
``λ Σ_g √size ‖w_g‖₂``: same groups (``rows``/``columns``), same zero threshold ``λ√size`` and λ_max
``max_g ‖∇f(0)_g‖/√size``; groups beyond the knee ``γλ√size`` are not shrunk at all.

Prox with a scalar step: the unit prox of :mod:`lightreg.penalties.nonconvex` on the group norm, along the group's
direction (exact: φ is nondecreasing in the norm). With a per-entry step (adaptive optimizers) there is no closed
form; the prox is the fixed point of the local linear approximation (Zou & Li 2008): the group-lasso prox in the
optimizer's metric (:func:`~lightreg.penalties.metric_prox.metric_group_soft_threshold_`) with per-group weight
``φ'(‖u_g‖)`` at the current estimate ``u``, iterated (at most :data:`LLA_ITERATIONS` times) from the scalar prox at the
group's mean step; per group the better of the two (in the metric objective) is kept. Equal steps take the exact
scalar prox.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.functional import group_norms, group_size, reduce_dims
from lightreg.penalties.group import GROUP_DIMS
from lightreg.penalties.metric_prox import metric_group_soft_threshold_
from lightreg.penalties.nonconvex import MCP, SCAD, KneePenalty
from lightreg.penalties.penalty import Step

LLA_ITERATIONS = 100
"""Most reweighted metric group-soft-threshold passes of the per-entry-step prox (each a few Newton steps); the
passes stop once no entry moved by more than 1e-12 × the largest input entry (10–40 passes in the tests)."""


@dataclass(frozen=True)
class GroupKneePenalty(KneePenalty):
    """MCP/SCAD of group norms; ``groups`` as in :class:`~lightreg.penalties.GroupLasso`."""

    groups: str = "rows"
    elementwise: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.groups, str) or self.groups not in GROUP_DIMS:
            choices = ", ".join(repr(g) for g in GROUP_DIMS)
            raise UserError(f"groups must be one of {choices}, got {self.groups!r}")

    @property
    def dim(self) -> int:
        return GROUP_DIMS[self.groups]

    def unit_norms(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise UserError(
                f"{self!r} needs a tensor with ndim >= 2 (a weight matrix or conv kernel), got shape {tuple(x.shape)}"
            )
        return group_norms(x, self.dim)

    def unit_weight(self, w: Tensor) -> float:
        return math.sqrt(group_size(w, self.dim))

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        if not isinstance(step, Tensor) or step.numel() == 1 or bool(step.max() == step.min()):
            return super().prox_(w, step.max().item() if isinstance(step, Tensor) else step)
        c, dims = self.unit_weight(w), reduce_dims(w, self.dim)
        v = w.clone()
        s = step.broadcast_to(w.shape)
        super().prox_(w, s.mean(dim=dims, keepdim=True))  # start: the scalar prox at each group's mean step
        start = w.clone()
        tol = 1e-12 * v.abs().max().item()
        for _ in range(LLA_ITERATIONS):
            weight = self.slope(self.unit_norms(w), c)
            moved = metric_group_soft_threshold_(v.clone(), s, weight, dims)
            change = (moved - w).abs().max().item()
            w.copy_(moved)
            if change <= tol:
                break
        better = self._metric_objective(w, v, s, c, dims) <= self._metric_objective(start, v, s, c, dims)
        return w.copy_(torch.where(better, w, start))

    def _metric_objective(self, u: Tensor, v: Tensor, s: Tensor, c: float, dims: tuple[int, ...]) -> Tensor:
        """Per group: ``½ Σ (u − v)²/s + φ(‖u_g‖)``, the objective of the per-entry-step prox."""
        return 0.5 * ((u - v).square() / s).sum(dim=dims, keepdim=True) + self.phi(self.unit_norms(u), c)


@dataclass(frozen=True)
class GroupMCP(GroupKneePenalty, MCP):
    """Group MCP: ``Σ_g MCP_{λ√size, γ}(‖w_g‖)``, γ > 1."""

    name: ClassVar[str] = "group_mcp"


@dataclass(frozen=True)
class GroupSCAD(GroupKneePenalty, SCAD):
    """Group SCAD: ``Σ_g SCAD_{λ√size, γ}(‖w_g‖)``, γ > 2."""

    name: ClassVar[str] = "group_scad"


__all__ = ["LLA_ITERATIONS", "GroupKneePenalty", "GroupMCP", "GroupSCAD"]
