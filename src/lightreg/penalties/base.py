"""The penalty interface: a unit-strength regularizer R acting on one tensor at a time.

A caller scales by the strength λ itself: the loss term is ``λ * value(w)``, the gradient ``λ * grad(w)``,
and a proximal-gradient step with learning rate η is ``prox_(w, η * λ)``.
"""

from __future__ import annotations

import abc
from typing import ClassVar, TypeAlias

from torch import Tensor

Step: TypeAlias = float | Tensor
"""A scalar step, or a per-entry step tensor broadcastable to the parameter's shape (adaptive optimizers)."""


class Penalty(abc.ABC):
    """Unit-strength regularizer R(w) with its value, (sub)gradient, in-place prox and KKT threshold."""

    name: ClassVar[str]
    """Short identifier: "l1", "l2", "elastic_net" or "group_lasso"."""
    elementwise: ClassVar[bool]
    """True when R is a sum over entries, so it is exact on sharded parameters."""

    @property
    @abc.abstractmethod
    def sparse(self) -> bool:
        """True when ``prox_`` can produce exact zeros."""

    @abc.abstractmethod
    def value(self, w: Tensor) -> Tensor:
        """R(w) as a differentiable 0-dim tensor."""

    @abc.abstractmethod
    def grad(self, w: Tensor) -> Tensor:
        """A (sub)gradient of R at ``w``, same shape; the minimum-norm one at kinks."""

    @abc.abstractmethod
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        """In place, without autograd: ``w <- argmin_u ½ Σ (u - w)² / step + R(u)``; returns ``w``."""

    @abc.abstractmethod
    def lambda_max(self, grad0: Tensor) -> float:
        """Smallest λ for which w = 0 minimizes f + λR, given ``grad0 = ∇f(0)`` for this tensor (KKT)."""


__all__ = ["Penalty", "Step"]
