"""Proximal step sizes in an optimizer's own metric. Pure torch; no Lightning.

After an optimizer step ``w ← w − D⁻¹·u`` (``D`` the optimizer's diagonal preconditioner), the proximal
step of λR in the same metric is ``w ← prox_{λ·η R}(w)`` with the per-entry step ``η = diag(D⁻¹)``
(ProxGen, Yun et al., NeurIPS 2021; AdaGrad composite mirror descent, Duchi et al. 2011):

| optimizer | η (per entry) |
| SGD (any momentum), others | lr |
| Adam, AdamW | lr / (√v̂ + ε),  v̂ = v / (1 − β₂ᵗ) (amsgrad: the running max of v) |
| Adagrad | lr / (1 + (t−1)·lr_decay) / (√G + ε),  G the sum of squared gradients |
| RMSprop | lr / (√(v − ḡ²·[centered]) + ε) |

Bounded metric. Where an entry's gradients vanish, √v̂ → 0 and η → lr/ε: the threshold λ·η explodes and
zeroes weights that merely went quiet. The denominator is therefore floored at ``floor`` (the caller passes λ,
in gradient units): η ≤ lr/λ, so the threshold λ·η never exceeds ``lr``, the most one Adam step moves an entry.

Warm-up (``warmup`` steps, the first half of the run from the callback). A fresh network sits near a
stationary point (the origin of a ReLU network is one; on the ``ring`` data its input-column gradients are
≈ 0.01 ≪ λ = 0.04), so the metric threshold λ·lr/√v̂, which compares λ with |∇f| from the very first step,
removes every input column before the data has spoken — as does plain SGD without momentum at the same
effective step. Prox-SGD with momentum β escapes only because its stochastic phase settles at λ·(1−β): its
threshold lr·λ is applied once per step while the gradient acts through the momentum sum lr·g/(1−β).
While ``step ≤ warmup`` the adaptive step is bounded by the plain one, ``η ≤ lr`` (the denominator is floored
at 1, i.e. the metric is never more aggressive than SGD's lr·λ); for a step of size ≈ lr that is a penalty of
strength λ·√v̂ in gradient units, so the network learns first. From step ``warmup + 1`` on, η is the floored
ProxGen step above, whose fixed points are those of ``f + λR``; ``mode=exact``'s full-batch finish settles the
support at the λ asked for either way (benchmarks/studies/seed001_prox_threshold.py measures the thresholds).
"""

from __future__ import annotations

import math

from torch import Tensor
from torch.optim import Adagrad, Adam, AdamW, Optimizer, RMSprop

ADAPTIVE = (Adam, AdamW, Adagrad, RMSprop)
WARMUP_FRACTION = 0.5
"""Share of a run's optimizer steps during which an adaptive prox step is bounded by the plain one."""
UNBOUNDED_RUN_WARMUP = 1000
"""Warm-up steps when the run length is unknown (``max_epochs=-1``): Adam's second-moment horizon 1/(1−β₂)."""


def is_adaptive(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` has a per-entry preconditioner that :func:`prox_step` knows."""
    return isinstance(optimizer, ADAPTIVE)


def _as_float(x: float | Tensor) -> float:
    return float(x.item()) if isinstance(x, Tensor) else float(x)


def _denominator(optimizer: Optimizer, group: dict, state: dict) -> tuple[Tensor, float]:
    """(√(second moment) + ε, learning-rate factor) for the optimizers in :data:`ADAPTIVE`."""
    step = _as_float(state["step"])
    if isinstance(optimizer, (Adam, AdamW)):
        beta2 = group["betas"][1]
        v = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
        return v.div(1 - beta2**step).sqrt_().add_(group["eps"]), 1.0
    if isinstance(optimizer, Adagrad):
        return state["sum"].sqrt().add_(group["eps"]), 1.0 / (1 + (step - 1) * group["lr_decay"])
    v = state["square_avg"]
    if group["centered"]:
        v = v - state["grad_avg"] ** 2
    return v.sqrt().add_(group["eps"]), 1.0


def warmup_steps(total_steps: float) -> int:
    """The default ``warmup`` of :func:`prox_step`: the first half of a run of ``total_steps`` optimizer steps
    (:data:`WARMUP_FRACTION`), or :data:`UNBOUNDED_RUN_WARMUP` steps when the run has no known length."""
    if not math.isfinite(total_steps):
        return UNBOUNDED_RUN_WARMUP
    return int(max(total_steps, 0) * WARMUP_FRACTION)


def prox_step(
    optimizer: Optimizer,
    group: dict,
    param: Tensor,
    adaptive: bool = True,
    floor: float = 0.0,
    scale: float = 1.0,
    warmup: int = 0,
) -> float | Tensor:
    """``scale`` × the step η of the proximal operator that follows ``optimizer``'s last step on ``param``
    (pass ``scale=λ`` to get the threshold of λR directly).

    Returns ``scale·lr`` (a float) for SGD-like optimizers, when ``adaptive`` is False, or before the optimizer
    has state for ``param``; otherwise the per-entry tensor ``scale·lr·c / max(√v̂ + ε, floor)``, computed in
    one buffer (this runs after every step, on every penalized tensor). While the optimizer's step count is at
    most ``warmup`` the denominator is also floored at ``c``, so η ≤ lr: never above the plain step.
    """
    lr = _as_float(group["lr"])
    state = optimizer.state.get(param)
    if not adaptive or not is_adaptive(optimizer) or not state or "step" not in state:
        return scale * lr
    denom, factor = _denominator(optimizer, group, state)
    if _as_float(state["step"]) <= warmup:
        floor = max(floor, factor)
    if floor > 0:
        denom.clamp_(min=floor)
    return denom.reciprocal_().mul_(scale * lr * factor)


__all__ = ["ADAPTIVE", "UNBOUNDED_RUN_WARMUP", "WARMUP_FRACTION", "is_adaptive", "prox_step", "warmup_steps"]
