"""Group penalties over the rows (output units, conv filters) or columns (input features, conv input channels).

Both are ``R(w) = ρ Σ |w| + (1 − ρ) Σ_g √size_g ‖w_g‖₂`` for a fixed ``ρ``: group lasso (ρ = 0) and the sparse
group lasso of Simon, Friedman, Hastie & Tibshirani (2013), which zeros whole groups *and* entries inside the
groups it keeps. Their maths is shared by :class:`GroupPenalty`, with ``τ = λ(1 − ρ)√size`` and ``S`` the
soft-threshold at ``λρ``:

| unit (group g) | zero threshold | ``gradient_norm`` | ``dist(−g, λ∂R(w))`` |
| w_g ≠ 0 | | | ``‖e‖``, ``e_i = |g_i + τ w_i/‖w_g‖ + λρ sign w_i|`` (``max(|g_i| − λρ, 0)`` where w_i = 0) |
| w_g = 0 | τ | ``‖S(g_g)‖`` | ``max(‖S(g_g)‖ − τ, 0)`` |

Prox (exact, also in an adaptive optimizer's diagonal metric): soft-threshold at ``step·ρ``, then shrink each
group by ``step·τ`` (:func:`~lightreg.penalties.functional.block_soft_threshold_`, or
:func:`~lightreg.penalties.metric_prox.metric_group_soft_threshold_` for a per-entry step). The composition is
the exact prox of the sum: where ``u_i ≠ 0`` the group shrink keeps the sign the soft-threshold left.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.elementwise import check_ratio
from lightreg.penalties.functional import (
    block_soft_threshold_,
    group_norms,
    group_size,
    normalize_groups_,
    reduce_dims,
    soft_threshold_,
)
from lightreg.penalties.metric_prox import metric_group_soft_threshold_
from lightreg.penalties.penalty import Penalty, Step

GROUP_DIMS: dict[str, int] = {"rows": 0, "columns": 1, "filters": 0, "channels": 1}
"""Group layout name -> the dimension a group is indexed by (a group is ``w.select(dim, i)`` flattened)."""

BISECTION_STEPS = 100
"""Halvings of the λ_max bracket of the sparse group lasso (float64: far past machine precision)."""


@dataclass(frozen=True)
class GroupPenalty(Penalty, abc.ABC):
    """``ρ Σ |w| + (1 − ρ) Σ_g √size ‖w_g‖₂`` over the groups of a tensor with ``ndim >= 2``; see the module table.

    ``groups="rows"`` (alias ``"filters"``): one group per ``w[i]`` (output unit / conv filter);
    ``groups="columns"`` (alias ``"channels"``): one group per ``w[:, j]`` (input feature / conv input channel).
    """

    groups: str = "rows"
    elementwise: ClassVar[bool] = False
    sparse = True

    def __post_init__(self) -> None:
        if not isinstance(self.groups, str) or self.groups not in GROUP_DIMS:
            choices = ", ".join(repr(g) for g in GROUP_DIMS)
            raise UserError(f"groups must be one of {choices}, got {self.groups!r}")

    @property
    @abc.abstractmethod
    def l1_weight(self) -> float:
        """ρ in [0, 1]: the weight of the entrywise ℓ1 part."""

    @property
    def dim(self) -> int:
        """The dimension that indexes the groups: 0 for rows/filters, 1 for columns/channels."""
        return GROUP_DIMS[self.groups]

    def _root_size(self, w: Tensor) -> float:
        """√(entries per group); rejects tensors without a group dimension."""
        if w.ndim < 2:
            raise UserError(
                f"{self!r} needs a tensor with ndim >= 2 (a weight matrix or conv kernel), got shape {tuple(w.shape)}"
            )
        return math.sqrt(group_size(w, self.dim))

    def value(self, w: Tensor) -> Tensor:
        rho, root = self.l1_weight, self._root_size(w)
        group_part = (1 - rho) * root * group_norms(w, self.dim).sum()
        return rho * w.abs().sum() + group_part if rho > 0 else group_part

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        rho, root = self.l1_weight, self._root_size(w)
        out = normalize_groups_(w.clone(), self.dim).mul_((1 - rho) * root)
        return out.add_(w.sign(), alpha=rho) if rho > 0 else out

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        rho, root = self.l1_weight, self._root_size(w)
        if rho > 0:
            soft_threshold_(w, step * rho)
        if rho == 1:
            return w
        tau = (1 - rho) * root
        if isinstance(step, Tensor) and step.numel() > 1:
            return metric_group_soft_threshold_(w, step, tau, reduce_dims(w, self.dim))
        return block_soft_threshold_(w, step * tau, self.dim)

    def unit_norms(self, x: Tensor) -> Tensor:
        return group_norms(x, self.dim)

    def zero_threshold(self, w: Tensor, strength: float) -> Tensor:
        return torch.full_like(group_norms(w, self.dim), strength * (1 - self.l1_weight) * self._root_size(w))

    def gradient_norm(self, g: Tensor, strength: float) -> Tensor:
        rho = self.l1_weight
        return _soft_norms(g, strength * rho, self.dim) if rho > 0 else group_norms(g, self.dim)

    def subdiff_distance(self, w: Tensor, g: Tensor, strength: float) -> Tensor:
        lam_l1 = strength * self.l1_weight
        tau = self.zero_threshold(w, strength)
        norms = group_norms(w, self.dim)
        direction = w / norms.clamp(min=torch.finfo(w.dtype).tiny)
        moving = g + tau * direction
        per_entry = torch.where(w != 0, (moving + lam_l1 * w.sign()).abs(), (g.abs() - lam_l1).clamp(min=0))
        in_group = torch.linalg.vector_norm(per_entry, dim=reduce_dims(w, self.dim), keepdim=True)
        at_zero = (self.gradient_norm(g, strength) - tau).clamp(min=0)
        return torch.where(norms > 0, in_group, at_zero)

    def lambda_max(self, grad0: Tensor) -> float:
        """Largest over groups of the λ solving ``‖S(g_g, λρ)‖ = λ(1 − ρ)√size`` (closed form ``‖g_g‖/√size`` for
        ρ = 0 and ``max |g|`` for ρ = 1; bisection on the decreasing gap otherwise)."""
        rho, root = self.l1_weight, self._root_size(grad0)
        g = grad0.detach().double()
        if rho == 0:
            return group_norms(g, self.dim).max().item() / root
        peak = torch.amax(g.abs(), dim=reduce_dims(g, self.dim), keepdim=True)
        if rho == 1:
            return peak.max().item()
        low, high = torch.zeros_like(peak), peak / rho  # at λρ = max|g_g| the soft-threshold is 0: gap <= 0
        for _ in range(BISECTION_STEPS):
            mid = (low + high) / 2
            gap = _soft_norms(g, mid * rho, self.dim) - mid * (1 - rho) * root
            low, high = torch.where(gap > 0, mid, low), torch.where(gap > 0, high, mid)
        return high.max().item()


def _soft_norms(g: Tensor, threshold: float | Tensor, dim: int) -> Tensor:
    """``‖S(g_g, t)‖₂`` per group: a scalar ``t``, or one per group (shaped like ``group_norms``)."""
    return group_norms(g - g.clamp(min=-threshold, max=threshold), dim)


@dataclass(frozen=True)
class GroupLasso(GroupPenalty):
    """Group lasso: ``R(w) = Σ_g √size_g ‖w_g‖₂``; whole rows or columns become zero.

    ``lambda_max = max_g ‖∇f(0)_g‖ / √size_g``. With a per-entry step (adaptive optimizers) the prox is the exact
    prox in the optimizer's metric ``diag(1/step)`` (zero iff ``‖w_g / s_g‖ ≤ √size``).
    """

    name: ClassVar[str] = "group_lasso"
    l1_weight = 0.0


@dataclass(frozen=True)
class SparseGroupLasso(GroupPenalty):
    """Sparse group lasso (Simon et al. 2013): ``R(w) = ρ Σ |w| + (1 − ρ) Σ_g √size_g ‖w_g‖₂``, ``ρ = l1_ratio``.

    Zeros whole groups (inputs, units, filters) and single entries inside the groups it keeps. ``l1_ratio=0`` is
    group lasso, ``l1_ratio=1`` is L1.
    """

    l1_ratio: float = 0.5
    name: ClassVar[str] = "sparse_group_lasso"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "l1_ratio", check_ratio(self.l1_ratio))

    @property
    def l1_weight(self) -> float:
        return self.l1_ratio


__all__ = ["GROUP_DIMS", "GroupLasso", "GroupPenalty", "SparseGroupLasso"]
