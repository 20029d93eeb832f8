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
zeroes weights that merely went quiet (a prototype lost whole informative input columns this way). The
denominator is therefore floored at ``floor`` (the caller passes λ, in gradient units): η ≤ lr/λ, so the
threshold λ·η never exceeds ``lr`` — the most any Adam step can move an entry (|m̂|/√v̂ ≲ 1). Entries
whose gradients are at least λ in size (the ones that matter for the optimality condition |∇f| ≤ λ at
zeros) keep their exact metric step.
"""

from __future__ import annotations

from torch import Tensor
from torch.optim import Adagrad, Adam, AdamW, Optimizer, RMSprop

ADAPTIVE = (Adam, AdamW, Adagrad, RMSprop)


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


def prox_step(
    optimizer: Optimizer, group: dict, param: Tensor, adaptive: bool = True, floor: float = 0.0, scale: float = 1.0
) -> float | Tensor:
    """``scale`` × the step η of the proximal operator that follows ``optimizer``'s last step on ``param``
    (pass ``scale=λ`` to get the threshold of λR directly).

    Returns ``scale·lr`` (a float) for SGD-like optimizers, when ``adaptive`` is False, or before the optimizer
    has state for ``param``; otherwise the per-entry tensor ``scale·lr·c / max(√v̂ + ε, floor)``, computed in
    one buffer (this runs after every step, on every penalized tensor).
    """
    lr = _as_float(group["lr"])
    state = optimizer.state.get(param)
    if not adaptive or not is_adaptive(optimizer) or not state or "step" not in state:
        return scale * lr
    denom, factor = _denominator(optimizer, group, state)
    if floor > 0:
        denom.clamp_(min=floor)
    return denom.reciprocal_().mul_(scale * lr * factor)


__all__ = ["ADAPTIVE", "is_adaptive", "prox_step"]
