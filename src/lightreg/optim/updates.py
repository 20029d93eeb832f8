"""The per-tensor updates of the proximal optimizers: torch's single-tensor CPU updates with a penalty folded in.
Pure torch; no Lightning.

Each function updates one parameter ``p`` in place from its gradient ``g`` and state, exactly as the torch optimizer of
the same name (``torch.optim.*``, single-tensor form), and applies the penalty ``λ·R`` of an :class:`Elementwise`
``(a, b)`` = ``(ρ, 1 − ρ)`` (``R = a‖w‖₁ + b/2 ‖w‖²``) in the same pass:

- ``mode="grad"``: ``g ← g + λ(a·sign w + b·w)`` before the update (written into ``g``, as the callback does);
- ``mode="prox"``: after the update ``w ← S_{ηλa}(w) / (1 + ηλb)`` with η the step of
  :func:`lightreg.solvers.prox_step`: ``lr`` for SGD, the optimizer's per-entry metric ``lr·c/max(√v̂ + ε, floor)``
  for the adaptive ones (Adam's metric reuses the denominator the update has just computed).

A penalty that is not elementwise (group lasso) gets ``mode="prox"`` handled by the caller from the returned step
(``float`` or the per-entry step tensor); its ``grad`` likewise. ``s1``/``s2`` are scratch buffers shaped like ``p``
(eager: views of one preallocated buffer, so no weight-sized temporary is created); ``None`` lets the ops allocate,
which is what :func:`torch.compile` wants (Inductor fuses the chain into one loop and keeps no temporaries).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Elementwise:
    """The penalty part an update applies itself: ``λ·(a‖w‖₁ + b/2‖w‖²)`` by ``mode`` (``grad`` | ``prox``);
    ``a = b = 0`` with ``mode="prox"`` asks only for the prox step (a group penalty the caller applies)."""

    mode: str
    lam: float
    a: float
    b: float
    adaptive: bool = True
    floor: float = 0.0
    """Lower bound of the adaptive denominator (λ, or max(λ, c) during the warm-up; :func:`prox_step`)."""


def _axpy_(x: Tensor, y: Tensor, s: float | Tensor) -> Tensor:
    """``x += s·y``; ``s`` a float (eager) or a 0-dim tensor (compiled: a graph input, so no recompile per value)."""
    return x.add_(y * s) if isinstance(s, Tensor) else x.add_(y, alpha=s)


def _addcdiv_(x: Tensor, y: Tensor, z: Tensor, s: float | Tensor) -> Tensor:
    """``x += s·y/z`` (see :func:`_axpy_`)."""
    return x.add_(y / z * s) if isinstance(s, Tensor) else x.addcdiv_(y, z, value=s)


def add_penalty_grad_(p: Tensor, g: Tensor, pen: Elementwise, s: Tensor | None) -> None:
    """``g ← g + λ(a·sign p + b·p)``."""
    if pen.a > 0:
        _axpy_(g, torch.sign(p, out=s), pen.lam * pen.a)
    if pen.b > 0:
        _axpy_(g, p, pen.lam * pen.b)


def _decayed_grad(
    p: Tensor, g: Tensor, pen: Elementwise | None, weight_decay: float, s1: Tensor | None, s2: Tensor | None
) -> Tensor:
    """The gradient the update uses: ``g`` with the penalty's gradient added in place (``mode="grad"``), plus
    ``weight_decay·p`` into ``s2`` (``g`` itself stays the loss's gradient plus the penalty's, as torch keeps it)."""
    if pen is not None and pen.mode == "grad":
        add_penalty_grad_(p, g, pen, s1)
    return torch.add(g, p, alpha=weight_decay, out=s2) if weight_decay != 0 else g


def prox_(p: Tensor, step: float | Tensor, pen: Elementwise, s1: Tensor | None) -> None:
    """``p ← S_{step·a}(p) / (1 + step·b)`` for one scalar ``step`` (a float, or a 0-dim tensor when compiled or when
    the learning rate is a tensor). A float threshold goes through ATen's ``softshrink`` written into ``p`` (one pass,
    bit for bit ``p − clamp(p, −t, t)``); a tensor one, which ``softshrink`` does not take, through that difference
    (compiled, Inductor fuses it into the update's loop)."""
    if pen.a > 0:
        t = step * pen.a
        if isinstance(t, Tensor):
            p.sub_(torch.clamp(p, -t, t, out=s1))
        else:
            torch.ops.aten.softshrink.out(p, t, out=p)
    if pen.b > 0:
        p.div_(1 + step * pen.b)


def _penalize(
    p: Tensor, denom: Tensor | None, lr: float | Tensor, pen: Elementwise | None, s1: Tensor | None, s2: Tensor | None
) -> float | Tensor | None:
    """The prox after the update, in ``denom``'s buffer for the metric step ``λ·lr/max(denom, floor)`` (``lr`` carries
    the optimizer's learning-rate factor); returns the step λη (None without a prox; scaled by ``a`` when ``a > 0``:
    the threshold of the ℓ1 part, computed in the same pass)."""
    if pen is None or pen.mode != "prox":
        return None
    if denom is None or not pen.adaptive:
        step = pen.lam * lr
        prox_(p, step, pen, s1)
        return step
    a, b = pen.a, pen.b
    t = torch.div(pen.lam * lr * a if a > 0 else pen.lam * lr, denom.clamp_(min=pen.floor), out=denom)
    if a > 0:  # p ← p − clamp(p, −t, t), then the ℓ2 part's shrink 1/(1 + t·b/a)
        p.sub_(torch.clamp(p, min=torch.neg(t, out=s2), max=t, out=s2))
        if b > 0:
            p.div_(t.mul_(b / a).add_(1))
    elif b > 0:
        p.div_(t.mul_(b).add_(1))
    return t


def sgd_(
    p: Tensor,
    g: Tensor,
    buf: Tensor | None,
    first: bool,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    pen: Elementwise | None,
    s1: Tensor | None,
    s2: Tensor | None,
) -> float | Tensor | None:
    """torch.optim.SGD's update; ``buf`` the momentum buffer (``momentum > 0``), which the ``first`` step fills."""
    g = _decayed_grad(p, g, pen, weight_decay, s1, s2)
    if buf is not None:
        if first:
            buf.copy_(g)
        else:
            buf.mul_(momentum).add_(g, alpha=1 - dampening)
        if not nesterov:
            g = buf
        elif s2 is not None and g is s2:
            g.add_(buf, alpha=momentum)
        else:
            g = torch.add(g, buf, alpha=momentum, out=s2)
    _axpy_(p, g, -lr)
    return _penalize(p, None, lr, pen, s1, s2)


def adam_(
    p: Tensor,
    g: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    step: float | Tensor,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    pen: Elementwise | None,
    s1: Tensor | None,
    s2: Tensor | None,
) -> float | Tensor | None:
    """torch.optim.Adam / AdamW (``decoupled``) at step ``step`` (already counted); amsgrad when ``max_exp_avg_sq``."""
    g = _decayed_grad(p, g, pen, 0.0 if decoupled else weight_decay, s1, s2)
    if decoupled and weight_decay != 0:
        p.mul_(1 - lr * weight_decay)
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    v = exp_avg_sq
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = torch.sqrt(v, out=s1).div_((1 - beta2**step) ** 0.5).add_(eps)
    _addcdiv_(p, exp_avg, denom, -lr / (1 - beta1**step))
    return _penalize(p, denom, lr, pen, s1, s2)


def adagrad_(
    p: Tensor,
    g: Tensor,
    state_sum: Tensor,
    step: float | Tensor,
    lr: float | Tensor,
    lr_decay: float,
    eps: float,
    weight_decay: float,
    pen: Elementwise | None,
    s1: Tensor | None,
    s2: Tensor | None,
) -> float | Tensor | None:
    """torch.optim.Adagrad at step ``step`` (already counted)."""
    g = _decayed_grad(p, g, pen, weight_decay, s1, s2)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum.addcmul_(g, g, value=1)
    denom = torch.sqrt(state_sum, out=s1).add_(eps)
    _addcdiv_(p, g, denom, -clr)
    return _penalize(p, denom, clr, pen, s1, s2)


def rmsprop_(
    p: Tensor,
    g: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    buf: Tensor | None,
    lr: float | Tensor,
    alpha: float,
    eps: float,
    momentum: float,
    weight_decay: float,
    pen: Elementwise | None,
    s1: Tensor | None,
    s2: Tensor | None,
) -> float | Tensor | None:
    """torch.optim.RMSprop (centered when ``grad_avg``, momentum when ``buf``)."""
    g = _decayed_grad(p, g, pen, weight_decay, s1, s2)
    square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    if grad_avg is not None:
        grad_avg.lerp_(g, 1 - alpha)
        denom = torch.addcmul(square_avg, grad_avg, grad_avg, value=-1, out=s1).sqrt_()
    else:
        denom = torch.sqrt(square_avg, out=s1)
    denom.add_(eps)
    if buf is not None and momentum > 0:
        buf.mul_(momentum).addcdiv_(g, denom)
        _axpy_(p, buf, -lr)
    else:
        _addcdiv_(p, g, denom, -lr)
    return _penalize(p, denom, lr, pen, s1, s2)


__all__ = ["Elementwise", "adagrad_", "adam_", "add_penalty_grad_", "prox_", "rmsprop_", "sgd_"]
