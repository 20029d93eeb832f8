"""Elementwise penalties: L1, L2 and elastic net. Exact on sharded parameters (R is a sum over entries).

All three are ``R(w) = ρ Σ |w| + (1 − ρ)/2 Σ w²`` for a fixed ``ρ`` (1 for L1, 0 for L2, ``l1_ratio`` for the
elastic net), so their optimality pieces are shared by :class:`ElementwisePenalty`:

| unit w | zero threshold | ``dist(−g, λ∂R(w))`` |
| w ≠ 0 | | ``|g + λ(1−ρ)w + λρ sign w|`` |
| w = 0 | λρ | ``max(|g| − λρ, 0)`` |
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.functional import soft_threshold_
from lightreg.penalties.penalty import Penalty, Step


def _max_abs(grad0: Tensor) -> float:
    return grad0.detach().abs().max().item()


class ElementwisePenalty(Penalty, abc.ABC):
    """``ρ Σ |w| + (1 − ρ)/2 Σ w²``: the KKT pieces and λ_max of every elementwise penalty, from ``l1_weight``."""

    elementwise: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def l1_weight(self) -> float:
        """ρ in [0, 1]: the weight of the ℓ1 part."""

    @property
    def sparse(self) -> bool:
        return self.l1_weight > 0

    def lambda_max(self, grad0: Tensor) -> float:
        """``max |∇f(0)| / ρ``; without an ℓ1 part, 0 if ``∇f(0) = 0`` (any λ keeps w = 0) else ``math.inf``."""
        peak = _max_abs(grad0)
        if self.l1_weight == 0:
            return 0.0 if peak == 0 else math.inf
        return peak / self.l1_weight

    def unit_norms(self, x: Tensor) -> Tensor:
        return x.abs()

    def zero_threshold(self, w: Tensor, strength: float) -> Tensor:
        return torch.full_like(w, strength * self.l1_weight)

    def subdiff_distance(self, w: Tensor, g: Tensor, strength: float) -> Tensor:
        rho = self.l1_weight
        smooth = g + strength * (1 - rho) * w
        lam = strength * rho
        return torch.where(w != 0, (smooth + lam * w.sign()).abs(), (smooth.abs() - lam).clamp(min=0))


@dataclass(frozen=True)
class L1(ElementwisePenalty):
    """Lasso: ``R(w) = Σ |w|``; prox is soft-thresholding at ``step``; ``lambda_max = max |∇f(0)|``."""

    name: ClassVar[str] = "l1"
    l1_weight = 1.0

    def value(self, w: Tensor) -> Tensor:
        return w.abs().sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        return w.sign()

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        return soft_threshold_(w, step)


@dataclass(frozen=True)
class L2(ElementwisePenalty):
    """Ridge / weight decay: ``R(w) = ½ Σ w²``, so ``λ∇R = λw`` as SGD's ``weight_decay=λ``.

    Prox: ``w / (1 + step)``. ``lambda_max`` is ``math.inf`` (never exactly zero) unless ``∇f(0) = 0``.
    """

    name: ClassVar[str] = "l2"
    l1_weight = 0.0

    def value(self, w: Tensor) -> Tensor:
        return 0.5 * w.square().sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        return w.clone()

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        return w.div_(1 + step)


@dataclass(frozen=True)
class ElasticNet(ElementwisePenalty):
    """Elastic net (sklearn/glmnet convention): ``R(w) = ρ Σ |w| + (1 - ρ)/2 Σ w²``, ``ρ = l1_ratio`` in [0, 1].

    Prox: soft-threshold at ``step·ρ``, then divide by ``1 + step·(1 - ρ)``.
    ``lambda_max = max |∇f(0)| / ρ`` (``math.inf`` for ρ = 0 unless ``∇f(0) = 0``).
    """

    l1_ratio: float = 0.5
    name: ClassVar[str] = "elastic_net"

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1_ratio", check_ratio(self.l1_ratio))

    @property
    def l1_weight(self) -> float:
        return self.l1_ratio

    def value(self, w: Tensor) -> Tensor:
        rho = self.l1_ratio
        return rho * w.abs().sum() + 0.5 * (1 - rho) * w.square().sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        rho = self.l1_ratio
        return w.sign().mul_(rho).add_(w, alpha=1 - rho)

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        rho = self.l1_ratio
        if rho > 0:
            soft_threshold_(w, step * rho)
        if rho < 1:
            w.div_(1 + step * (1 - rho))
        return w


def check_ratio(ratio: object) -> float:
    """``l1_ratio`` as a float in [0, 1]; a :class:`UserError` naming the bad value otherwise."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise UserError(f"l1_ratio must be in [0, 1], got {ratio!r}")
    return float(ratio)


__all__ = ["L1", "L2", "ElasticNet", "ElementwisePenalty", "check_ratio"]
