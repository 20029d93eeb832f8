"""Nonconvex sparse penalties: MCP, SCAD, log-sum and L0, on the unit-strength contract of :class:`Penalty`.

Each is ``R(w) = Σ_u φ(t_u)`` over the *units* ``u`` of a tensor (entries here; groups in
:mod:`lightreg.penalties.group_nonconvex`), ``t_u`` the unit's norm and ``c_u`` its weight (1 per entry, √size per
group). The caller's λ multiplies R as for every penalty. λ is the role of skglm's ``alpha``:

| penalty | ``λφ(t)``, unit weight ``c``, ``L = λc`` |
| ``mcp`` (γ > 1) | ``Lt − t²/(2γ)`` for ``t ≤ γL``; ``γL²/2`` beyond |
| ``scad`` (γ > 2) | ``Lt`` for ``t ≤ L``; ``(2γLt − t² − L²)/(2(γ − 1))`` up to ``γL``; ``L²(γ + 1)/2`` beyond |
| ``log_sum`` (ε > 0) | ``λ log(1 + t/ε)`` |
| ``l0`` | ``λ [t ≠ 0]`` |

MCP and SCAD are not λ-homogeneous (their knee is ``γλ``): the penalty object holds the λ it is built for
(``lam``; :func:`at_strength` sets it to the callback's strength), so ``λ·R = MCP_{λ,γ}`` exactly at that λ; a
warm-up that ramps the strength keeps the knee of the full λ.

Optimality is the *limiting* subdifferential (Rockafellar–Wets): at ``t > 0`` the derivative ``λφ'(t)`` along the
unit; at zero ``[−λφ'(0⁺), λφ'(0⁺)]`` for MCP, SCAD and log-sum (zero threshold ``λc``, ``λc``, ``λ/ε``) and the
whole line for L0 (every zero is stationary). A stationary point reads ``subdiff_distance = 0``.

Prox per unit, ``argmin_{x ≥ 0} ½(x − t)² + s φ(x)`` with ``s = ηλ`` (the step the callers pass), exact for any
step: MCP and SCAD are quadratic on each piece, so the minimizer is the best of the pieces' clamped stationary
points and the knots (for ``η < γ`` MCP reduces to the firm threshold ``(t − ηL)/(1 − η/γ)``, for ``η ≥ γ`` to a
hard threshold at ``L√(γη)``); log-sum takes the larger root of ``x² + (ε − t)x + s − tε = 0`` when it beats 0;
L0 is the hard threshold ``t > √(2s)``. A per-entry step tensor (adaptive optimizers) is applied entry by entry.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.penalty import Penalty, Step


def _tiny(x: Tensor) -> float:
    return torch.finfo(x.dtype).tiny


def _best(t: Tensor, s: Step, phi, candidates: list[Tensor]) -> Tensor:
    """The candidate ``x`` minimizing ``½(x − t)² + s φ(x)`` per entry (the first on ties: 0 comes first)."""
    xs = torch.stack(torch.broadcast_tensors(*candidates))
    objective = 0.5 * (xs - t).square() + s * phi(xs)
    return xs.gather(0, objective.argmin(dim=0, keepdim=True)).squeeze(0)


def check_above(name: str, value: object, low: float) -> float:
    """``value`` as a finite float > ``low``; a :class:`UserError` naming the bad value otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= low:
        raise UserError(f"{name} must be a finite number > {low:g}, got {value!r}")
    return float(value)


class NonconvexPenalty(Penalty, abc.ABC):
    """``R(w) = Σ_u φ(t_u)``: value, gradient, prox and limiting-subdifferential KKT pieces from the unit functions.

    The unit layout defaults to entries (``t = |w|``, ``c = 1``); group forms override :meth:`unit_norms`,
    :meth:`unit_weight` and :meth:`prox_`.
    """

    convex: ClassVar[bool] = False
    elementwise: ClassVar[bool] = True
    sparse = True

    # -- the unit functions (t >= 0 a tensor of unit norms, c the unit weight) -------------------------------
    @abc.abstractmethod
    def phi(self, t: Tensor, c: float) -> Tensor:
        """φ(t) per unit (unit strength)."""

    @abc.abstractmethod
    def slope(self, t: Tensor, c: float) -> Tensor:
        """φ'(t) for t > 0 (and φ'(0⁺) at t = 0)."""

    @abc.abstractmethod
    def unit_prox(self, t: Tensor, s: Step, c: float) -> Tensor:
        """``argmin_{x ≥ 0} ½(x − t)² + s φ(x)`` per unit, ``s`` a float or a tensor broadcastable to ``t``."""

    def slope_at_zero(self, c: float) -> float:
        """φ'(0⁺): the zero threshold at unit strength."""
        return c

    def at_strength(self, strength: float) -> NonconvexPenalty:
        """This penalty built for λ = ``strength`` (MCP and SCAD move their knee γλ; others are λ-homogeneous)."""
        return self

    # -- the unit layout -------------------------------------------------------------------------------------
    def unit_norms(self, x: Tensor) -> Tensor:
        return x.abs()

    def unit_weight(self, w: Tensor) -> float:
        """The weight c of every unit of ``w``: 1 per entry, √size per group."""
        return 1.0

    def _direction(self, w: Tensor, norms: Tensor) -> Tensor:
        return w / norms.clamp(min=_tiny(w))

    # -- the Penalty contract --------------------------------------------------------------------------------
    def value(self, w: Tensor) -> Tensor:
        return self.phi(self.unit_norms(w), self.unit_weight(w)).sum()

    @torch.no_grad()
    def grad(self, w: Tensor) -> Tensor:
        """``φ'(t) · w_u/t`` per unit; 0 at zero units (the minimum-norm element there)."""
        norms = self.unit_norms(w)
        return self._direction(w, norms) * self.slope(norms, self.unit_weight(w))

    @torch.no_grad()
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        norms = self.unit_norms(w)
        new = self.unit_prox(norms, step, self.unit_weight(w))
        return w.mul_(new / norms.clamp(min=_tiny(w)))

    def lambda_max(self, grad0: Tensor) -> float:
        """``max_u ‖∇f(0)_u‖ / φ'(0⁺)`` (L1's rule for MCP and SCAD, ``ε·max|∇f(0)|`` for log-sum)."""
        g = grad0.detach()
        c = self.unit_weight(g)
        return self.unit_norms(g).max().item() / self.slope_at_zero(c)

    def zero_threshold(self, w: Tensor, strength: float) -> Tensor:
        return torch.full_like(self.unit_norms(w), strength * self.slope_at_zero(self.unit_weight(w)))

    def subdiff_distance(self, w: Tensor, g: Tensor, strength: float) -> Tensor:
        """``‖g_u + λφ'(t_u) w_u/t_u‖`` where ``t_u > 0``; ``max(‖g_u‖ − λφ'(0⁺), 0)`` at zero units."""
        norms = self.unit_norms(w)
        c = self.unit_weight(w)
        moving = self.unit_norms(g + strength * self.slope(norms, c) * self._direction(w, norms))
        at_zero = (self.unit_norms(g) - strength * self.slope_at_zero(c)).clamp(min=0)
        return torch.where(norms > 0, moving, at_zero)


@dataclass(frozen=True)
class KneePenalty(NonconvexPenalty, abc.ABC):
    """MCP and SCAD: concavity ``gamma`` and the λ (``lam`` > 0) their knee ``γλc`` is placed for."""

    gamma: float = 3.0
    lam: float = 1.0
    min_gamma: ClassVar[float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", check_above(f"{self.name} gamma", self.gamma, self.min_gamma))
        object.__setattr__(self, "lam", check_above(f"{self.name} lam (the strength λ)", self.lam, 0.0))

    def at_strength(self, strength: float) -> KneePenalty:
        return dataclasses.replace(self, lam=float(strength)) if strength > 0 else self


@dataclass(frozen=True)
class MCP(KneePenalty):
    """Minimax concave penalty (Zhang 2010), γ > 1: ``λφ(t) = λct − t²/(2γ)`` up to ``t = γλc``, then flat.

    The prox is exact for every step (firm threshold for ``η < γ``, hard threshold at ``λc√(γη)`` for ``η ≥ γ``).
    """

    name: ClassVar[str] = "mcp"
    min_gamma: ClassVar[float] = 1.0

    def phi(self, t: Tensor, c: float) -> Tensor:
        knee = self.gamma * self.lam * c
        return torch.where(t <= knee, c * t - t.square() / (2 * self.gamma * self.lam), 0.5 * knee * c)

    def slope(self, t: Tensor, c: float) -> Tensor:
        return (c - t / (self.gamma * self.lam)).clamp(min=0)

    def unit_prox(self, t: Tensor, s: Step, c: float) -> Tensor:
        knee = self.gamma * self.lam * c
        shrink = 1 - s / (self.gamma * self.lam)  # 1 − η/γ: the curvature of the inner piece
        inner = (t - s * c) / torch.as_tensor(shrink, dtype=t.dtype).clamp(min=_tiny(t))
        zero = torch.zeros_like(t)
        candidates = [zero, inner.clamp(min=0).minimum(torch.full_like(t, knee)), zero + knee, t.clamp(min=knee)]
        return _best(t, s, lambda x: self.phi(x, c), candidates)


@dataclass(frozen=True)
class SCAD(KneePenalty):
    """Smoothly clipped absolute deviation (Fan & Li 2001), γ > 2: L1 up to ``λc``, a quadratic bend up to
    ``γλc``, flat beyond. Exact prox for every step (for ``η < γ − 1`` the classic three-piece threshold)."""

    name: ClassVar[str] = "scad"
    min_gamma: ClassVar[float] = 2.0

    def phi(self, t: Tensor, c: float) -> Tensor:
        g, lam = self.gamma, self.lam
        low, knee = lam * c, g * lam * c
        bend = (2 * g * low * t - t.square() - low * low) / (2 * (g - 1) * lam)
        return torch.where(t <= low, c * t, torch.where(t <= knee, bend, low * c * (g + 1) / 2))

    def slope(self, t: Tensor, c: float) -> Tensor:
        g, lam = self.gamma, self.lam
        low, knee = lam * c, g * lam * c
        return torch.where(t <= low, torch.full_like(t, c), ((knee - t) / ((g - 1) * lam)).clamp(min=0))

    def unit_prox(self, t: Tensor, s: Step, c: float) -> Tensor:
        g, lam = self.gamma, self.lam
        low, knee = lam * c, g * lam * c
        eta = s / lam
        denom = torch.as_tensor(g - 1 - eta, dtype=t.dtype)
        safe = torch.where(denom.abs() > 1e-12, denom, torch.ones_like(denom))
        middle = ((g - 1) * t - eta * g * low) / safe
        zero = torch.zeros_like(t)
        candidates = [
            zero,
            (t - s * c).clamp(min=0, max=low),
            zero + low,
            middle.clamp(min=low, max=knee),
            zero + knee,
            t.clamp(min=knee),
        ]
        return _best(t, s, lambda x: self.phi(x, c), candidates)


@dataclass(frozen=True)
class LogSum(NonconvexPenalty):
    """Log-sum penalty (Candès, Wakin & Boyd 2008), ε > 0: ``R(w) = Σ log(1 + |w|/ε)``; zero threshold ``λ/ε``.

    Prox: the larger root ``x = ((t − ε) + √((t + ε)² − 4s))/2`` of the stationarity quadratic when it is real,
    positive and better than 0; else 0.
    """

    eps: float = 1.0
    name: ClassVar[str] = "log_sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_above("log_sum eps", self.eps, 0.0))

    def phi(self, t: Tensor, c: float) -> Tensor:
        return c * torch.log1p(t / self.eps)

    def slope(self, t: Tensor, c: float) -> Tensor:
        return c / (self.eps + t)

    def slope_at_zero(self, c: float) -> float:
        return c / self.eps

    def unit_prox(self, t: Tensor, s: Step, c: float) -> Tensor:
        disc = (t + self.eps).square() - 4 * s * c
        root = ((t - self.eps) + disc.clamp(min=0).sqrt()) / 2
        root = torch.where(disc >= 0, root.clamp(min=0), torch.zeros_like(t))
        return _best(t, s, lambda x: self.phi(x, c), [torch.zeros_like(t), root])


@dataclass(frozen=True)
class L0(NonconvexPenalty):
    """L0 "norm": ``R(w) = #{w ≠ 0}``; prox is the hard threshold at ``√(2s)``.

    Every zero is stationary (the limiting subdifferential of ``[t ≠ 0]`` at 0 is the whole line), so the zero
    threshold is infinite; ``lambda_max`` is ``max ∇f(0)²/2``, the λ above which no single entry's best move from
    0 (unit curvature) pays λ. No gradient form: ``mode=grad`` is refused.
    """

    name: ClassVar[str] = "l0"

    def phi(self, t: Tensor, c: float) -> Tensor:
        return c * (t != 0).to(t.dtype)

    def slope(self, t: Tensor, c: float) -> Tensor:
        return torch.zeros_like(t)

    def slope_at_zero(self, c: float) -> float:
        return math.inf

    def grad(self, w: Tensor) -> Tensor:
        raise UserError("penalty l0 has no gradient (it is a count); use penalty.mode=prox or penalty.mode=exact")

    def unit_prox(self, t: Tensor, s: Step, c: float) -> Tensor:
        return torch.where(t.square() > 2 * s * c, t, torch.zeros_like(t))

    def lambda_max(self, grad0: Tensor) -> float:
        return 0.5 * grad0.detach().abs().max().item() ** 2


def at_strength(penalty: Penalty, strength: float) -> Penalty:
    """``penalty`` built for λ = ``strength``: MCP and SCAD place their knee at γλ; every other penalty as is."""
    return penalty.at_strength(strength) if isinstance(penalty, NonconvexPenalty) else penalty


__all__ = ["L0", "MCP", "SCAD", "KneePenalty", "LogSum", "NonconvexPenalty", "at_strength", "check_above"]
