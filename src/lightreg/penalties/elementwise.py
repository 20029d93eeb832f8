"""Elementwise penalties: L1, L2 and elastic net. Exact on sharded parameters (R is a sum over entries)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.base import Penalty, Step
from lightreg.penalties.functional import soft_threshold_


def _max_abs(grad0: Tensor) -> float:
    return grad0.detach().abs().max().item()


def _inf_unless_zero(grad0: Tensor) -> float:
    """KKT threshold of a penalty with no kink at 0: only a zero gradient makes w = 0 optimal (then any λ >= 0)."""
    return 0.0 if _max_abs(grad0) == 0 else math.inf


@dataclass(frozen=True)
class L1(Penalty):
    """Lasso: ``R(w) = Σ |w|``; prox is soft-thresholding at ``step``; ``lambda_max = max |∇f(0)|``."""

    name: ClassVar[str] = "l1"
    elementwise: ClassVar[bool] = True
    sparse = True

    def value(self, w: Tensor) -> Tensor:
        return w.abs().sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        return w.sign()

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        return soft_threshold_(w, step)

    def lambda_max(self, grad0: Tensor) -> float:
        return _max_abs(grad0)


@dataclass(frozen=True)
class L2(Penalty):
    """Ridge / weight decay: ``R(w) = ½ Σ w²``, so ``λ∇R = λw`` as SGD's ``weight_decay=λ``.

    Prox: ``w / (1 + step)``.
    ``lambda_max`` is ``math.inf`` (never exactly zero) unless ``∇f(0) = 0``, where it is 0.
    """

    name: ClassVar[str] = "l2"
    elementwise: ClassVar[bool] = True
    sparse = False

    def value(self, w: Tensor) -> Tensor:
        return 0.5 * w.square().sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        return w.clone()

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        return w.div_(1 + step)

    def lambda_max(self, grad0: Tensor) -> float:
        return _inf_unless_zero(grad0)


@dataclass(frozen=True)
class ElasticNet(Penalty):
    """Elastic net (sklearn/glmnet convention): ``R(w) = ρ Σ |w| + (1 - ρ)/2 Σ w²``, ``ρ = l1_ratio`` in [0, 1].

    Prox: soft-threshold at ``step·ρ``, then divide by ``1 + step·(1 - ρ)``.
    ``lambda_max = max |∇f(0)| / ρ`` (``math.inf`` for ρ = 0 unless ``∇f(0) = 0``).
    """

    l1_ratio: float = 0.5
    name: ClassVar[str] = "elastic_net"
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        ratio = self.l1_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise UserError(f"l1_ratio must be in [0, 1], got {ratio!r}")
        object.__setattr__(self, "l1_ratio", float(ratio))

    @property
    def sparse(self) -> bool:
        return self.l1_ratio > 0

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

    def lambda_max(self, grad0: Tensor) -> float:
        if self.l1_ratio == 0:
            return _inf_unless_zero(grad0)
        return _max_abs(grad0) / self.l1_ratio
