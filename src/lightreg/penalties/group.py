"""Group lasso over the rows (output units, conv filters) or columns (input features, conv input channels)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.base import Penalty, Step
from lightreg.penalties.functional import (
    block_soft_threshold_,
    group_norms,
    group_size,
    normalize_groups_,
    reduce_dims,
)
from lightreg.penalties.metric_prox import metric_group_soft_threshold_

GROUP_DIMS: dict[str, int] = {"rows": 0, "columns": 1, "filters": 0, "channels": 1}
"""Group layout name -> the dimension a group is indexed by (a group is ``w.select(dim, i)`` flattened)."""


@dataclass(frozen=True)
class GroupLasso(Penalty):
    """Group lasso: ``R(w) = Σ_g √size_g ‖w_g‖₂``.

    ``groups="rows"`` (alias ``"filters"``): one group per ``w[i]`` (output unit / conv filter);
    ``groups="columns"`` (alias ``"channels"``): one group per ``w[:, j]`` (input feature / conv input channel).
    Needs ``w.ndim >= 2``.

    Prox: block soft-threshold ``w_g <- w_g · max(0, 1 - s·√size_g / ‖w_g‖)``. With a per-entry step tensor
    ``s`` (adaptive optimizers) it is the exact prox in the optimizer's own metric ``diag(1/s)``:
    ``argmin_u ½ Σ (u − w)²/s + √size_g ‖u_g‖``, zero iff ``‖w_g / s_g‖ ≤ √size_g``, else one scalar
    secular equation per group (:mod:`lightreg.penalties.metric_prox`). It reduces to the block
    soft-threshold when the steps of a group are equal. ``lambda_max = max_g ‖∇f(0)_g‖ / √size_g``.
    """

    groups: str = "rows"
    name: ClassVar[str] = "group_lasso"
    elementwise: ClassVar[bool] = False
    sparse = True

    def __post_init__(self) -> None:
        if not isinstance(self.groups, str) or self.groups not in GROUP_DIMS:
            choices = ", ".join(repr(g) for g in GROUP_DIMS)
            raise UserError(f"groups must be one of {choices}, got {self.groups!r}")

    @property
    def dim(self) -> int:
        """The dimension that indexes the groups: 0 for rows/filters, 1 for columns/channels."""
        return GROUP_DIMS[self.groups]

    def _check(self, w: Tensor) -> int:
        """Reject tensors without a group dimension; return the number of entries per group."""
        if w.ndim < 2:
            raise UserError(
                f"GroupLasso(groups={self.groups!r}) needs a tensor with ndim >= 2, got shape {tuple(w.shape)}"
            )
        return group_size(w, self.dim)

    def value(self, w: Tensor) -> Tensor:
        size = self._check(w)
        return math.sqrt(size) * group_norms(w, self.dim).sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        size = self._check(w)
        return normalize_groups_(w.clone(), self.dim).mul_(math.sqrt(size))

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        size = self._check(w)
        if isinstance(step, Tensor) and step.numel() > 1:
            return metric_group_soft_threshold_(w, step, math.sqrt(size), reduce_dims(w, self.dim))
        return block_soft_threshold_(w, step * math.sqrt(size), self.dim)

    def lambda_max(self, grad0: Tensor) -> float:
        size = self._check(grad0)
        return group_norms(grad0.detach(), self.dim).max().item() / math.sqrt(size)
