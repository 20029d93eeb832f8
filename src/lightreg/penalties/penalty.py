"""The penalty interface: a unit-strength regularizer R acting on one tensor at a time, with all of its maths.

A caller scales by the strength λ itself: the loss term is ``λ * value(w)``, the gradient ``λ * grad(w)``, and a
proximal-gradient step with learning rate η is ``prox_(w, η * λ)``. Besides value, gradient and prox, each penalty
owns its optimality (KKT) pieces, as skglm's penalties do, so that solvers and checks never ask which penalty
they hold:

- :meth:`Penalty.unit_norms`: the size of each *sparsity unit* (an entry, or a group): ``|w|`` or ``‖w_g‖``;
- :meth:`Penalty.zero_threshold` and :meth:`Penalty.gradient_norm`: a unit is optimal at zero iff
  ``gradient_norm(∇f) <= zero_threshold`` there (both shaped like ``unit_norms``);
- :meth:`Penalty.subdiff_distance`: ``dist(−∇f, λ∂R(w))`` per unit, 0 at a stationary point;
- :meth:`Penalty.lambda_max`: the smallest λ for which ``w = 0`` is optimal, given ``∇f(0)``.
"""

from __future__ import annotations

import abc
from typing import ClassVar, TypeAlias

from torch import Tensor

Step: TypeAlias = float | Tensor
"""A scalar step, or a per-entry step tensor broadcastable to the parameter's shape (adaptive optimizers)."""


class Penalty(abc.ABC):
    """Unit-strength regularizer R(w): value, (sub)gradient, in-place prox, λ_max and the KKT pieces."""

    name: ClassVar[str]
    """Short identifier used by configs: "l1", "l2", "elastic_net", "group_lasso", "sparse_group_lasso"."""
    elementwise: ClassVar[bool]
    """True when R is a sum over entries, so it is exact on sharded parameters (FSDP, DeepSpeed)."""
    convex: ClassVar[bool] = True
    """False for the nonconvex penalties (MCP, SCAD, log-sum, L0): solvers then take no momentum."""

    @property
    @abc.abstractmethod
    def sparse(self) -> bool:
        """True when ``prox_`` can produce exact zeros (R has a kink at 0)."""

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

    # -- optimality (KKT) pieces -------------------------------------------------------------------------------
    @abc.abstractmethod
    def unit_norms(self, x: Tensor) -> Tensor:
        """Size of each sparsity unit of ``x``: ``|x|`` per entry, or ``‖x_g‖₂`` per group (keepdim shape)."""

    @abc.abstractmethod
    def zero_threshold(self, w: Tensor, strength: float) -> Tensor:
        """Per unit of ``w``: the largest :meth:`gradient_norm` at which 0 is optimal for that unit under ``λR``
        (λ for L1, λρ for elastic net, λ√size for group lasso, 0 for L2). Shaped like ``unit_norms(w)``."""

    def gradient_norm(self, g: Tensor, strength: float) -> Tensor:
        """Per unit: the norm of the data gradient ``g`` compared with :meth:`zero_threshold` (``unit_norms(g)``;
        a penalty with an inner ℓ1 part measures what is left of ``g`` after it)."""
        return self.unit_norms(g)

    @abc.abstractmethod
    def subdiff_distance(self, w: Tensor, g: Tensor, strength: float) -> Tensor:
        """Per unit: ``dist(−g, λ∂R(w))``, ``g`` the data gradient at ``w`` (gradient units of the mean loss)."""

    def zero_is_optimal(self, w: Tensor, g: Tensor, strength: float) -> Tensor:
        """Boolean per unit: a zero there satisfies the KKT condition ``gradient_norm(g) <= zero_threshold``."""
        return self.gradient_norm(g, strength) <= self.zero_threshold(w, strength)


__all__ = ["Penalty", "Step"]
