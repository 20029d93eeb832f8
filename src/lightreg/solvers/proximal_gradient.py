"""Full-batch accelerated proximal gradient with a KKT-checked final thresholding. Pure torch; no Lightning.

Minimizes ``F(w) = f(w) + Σ_k λ_k R_k(w)`` over a list of tensors in place, ``f`` smooth (data loss plus
smooth penalties), each ``R_k`` with an exact prox (L1, elastic net, group lasso):

- FISTA (Beck & Teboulle, SIAM J. Imaging Sci. 2009) with backtracking on the step ``1/L`` (``L`` doubled until
  ``f(z) ≤ f(y) + ⟨∇f(y), z − y⟩ + L/2 ‖z − y‖²``, then relaxed by ``L ← 0.9 L`` each iteration so steps
  can grow again), and function-value restart (O'Donoghue & Candès 2015): a step that increases ``F`` is
  discarded and the momentum reset, so ``F`` never increases (also for non-convex ``f``).
- ``accelerate=False`` (nonconvex penalties: MCP, SCAD, log-sum, L0) drops the momentum: plain proximal gradient
  with the same backtracking. With the exact (global) prox of a nonconvex R and a step that passes the
  backtracking test, ``F(z) ≤ F(x)`` at every iteration (Attouch, Bolte & Svaiter 2013), so ``F`` decreases
  monotonically and no step is ever discarded.
- Proximal gradient identifies the support in finitely many iterations when the zeros are strictly
  optimal, ``|∇f| < λ`` (Hare & Lewis 2004; Nutini et al. 2019). The loop stops once the zero pattern has
  not changed for ``patience`` iterations and ``F`` decreased by at most ``tol·|F|`` over them.
- :func:`kkt_threshold` then handles entries still creeping towards zero: it zeros every nonzero entry/group
  whose norm is at most ``rel`` times the largest in its tensor, and keeps a zero only where the KKT
  condition of zero holds at the new point (``|∇f| ≤ λ`` per entry, ``‖∇_g f‖ ≤ λ√size`` per group) and
  ``F`` did not increase (safe-screening spirit of celer/skglm).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties import PenaltyTerm, penalty_value

LossAndGrad = Callable[[], tuple[float, list[Tensor]]]
"""``() -> (f(w), [∂f/∂p for p in params])`` at the current values of ``params``."""
Loss = Callable[[], float]
"""``() -> f(w)`` at the current values of ``params``."""


@dataclass(frozen=True)
class FistaResult:
    """What one call of :func:`fista` did: iterations run, whether it stopped by the criterion, final ``F``."""

    iterations: int
    converged: bool
    objective: float


def _objective(loss: Loss, terms: Sequence[PenaltyTerm]) -> float:
    return loss() + float(penalty_value(terms))


def _prox_(terms: Sequence[PenaltyTerm], step: float) -> None:
    for t in terms:
        for p in t.params.values():
            t.penalty.prox_(p, step * t.strength)


def _positions(params: Sequence[Tensor], terms: Sequence[PenaltyTerm]) -> list[tuple[PenaltyTerm, int]]:
    """``(term, index into params)`` for every penalized tensor; each must be one of ``params`` (same object)."""
    index = {id(p): i for i, p in enumerate(params)}
    missing = [name for t in terms for name, p in t.params.items() if id(p) not in index]
    if missing:
        raise ValueError(f"penalized tensors {missing} are not among the optimized params")
    return [(t, index[id(p)]) for t in terms for p in t.params.values()]


def support(values: Sequence[Tensor], positions: Sequence[tuple[PenaltyTerm, int]]) -> list[Tensor]:
    """The zero pattern (boolean masks) of every penalized tensor, read from ``values`` (aligned with params)."""
    return [values[i] == 0 for _, i in positions]


def _same(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@torch.no_grad()
def fista(
    params: Sequence[Tensor],
    terms: Sequence[PenaltyTerm],
    loss_and_grad: LossAndGrad,
    loss: Loss,
    max_iter: int = 1000,
    tol: float = 1e-7,
    patience: int = 20,
    lipschitz: float = 1.0,
    accelerate: bool = True,
) -> FistaResult:
    """Minimize ``f + Σ λR`` over ``params`` in place from their current values; see the module docstring.

    ``terms`` penalize tensors of ``params`` (the same objects). ``lipschitz`` is the first guess of ``L`` (the
    step is ``1/L``); it adapts by backtracking. ``accelerate=False``: plain proximal gradient (no momentum).
    """
    positions = _positions(params, terms)
    x_old = [p.detach().clone() for p in params]
    obj_old = _objective(loss, terms)
    if not math.isfinite(obj_old):
        raise UserError(
            f"the full-batch proximal finish starts from a non-finite objective ({obj_old}): training diverged "
            "before it; lower the learning rate (optimizer.lr) or standardize the inputs"
        )
    history = [obj_old]
    pattern, stable = support(params, positions), 0
    t, lip = 1.0, lipschitz
    for k in range(1, max_iter + 1):
        f_y, grad = loss_and_grad()
        y = [p.detach().clone() for p in params]
        lip *= 0.9
        while True:
            for p, yi, g in zip(params, y, grad):
                p.copy_(yi).sub_(g, alpha=1.0 / lip)
            _prox_(terms, 1.0 / lip)
            diff = [p - yi for p, yi in zip(params, y)]
            f_z = loss()
            upper = (
                f_y
                + sum(float((g * d).sum()) for g, d in zip(grad, diff))
                + 0.5 * lip * sum(float(d.square().sum()) for d in diff)
            )
            if f_z <= upper + 1e-12 * abs(f_y) or not math.isfinite(upper):
                break
            lip *= 2.0
            if lip > 1e20:
                break
        obj = f_z + float(penalty_value(terms))
        if not obj <= obj_old:  # restart: keep the previous iterate, drop the momentum
            for p, xo in zip(params, x_old):
                p.copy_(xo)
            obj, t = obj_old, 1.0
        else:
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0 if accelerate else 1.0
            x_new = [p.detach().clone() for p in params]
            if accelerate:
                for p, xn, xo in zip(params, x_new, x_old):
                    p.add_(xn - xo, alpha=(t - 1.0) / t_next)  # params now hold the extrapolated point y
            x_old, t = x_new, t_next
        history.append(obj)
        obj_old = obj
        new_pattern = support(x_old, positions)
        stable = stable + 1 if _same(new_pattern, pattern) else 0
        pattern = new_pattern
        if stable >= patience and history[-patience - 1] - obj <= tol * max(1.0, abs(obj)):
            _restore(params, x_old)
            return FistaResult(k, True, obj)
    _restore(params, x_old)
    return FistaResult(max_iter, False, obj_old)


def _restore(params: Sequence[Tensor], values: Sequence[Tensor]) -> None:
    for p, v in zip(params, values):
        p.copy_(v)


@torch.no_grad()
def kkt_threshold(
    params: Sequence[Tensor],
    terms: Sequence[PenaltyTerm],
    loss_and_grad: LossAndGrad,
    loss: Loss,
    rel: float = 1e-2,
) -> int:
    """Zero small units (entries or groups) whose zero satisfies the KKT condition; returns how many were zeroed.

    Candidates: nonzero units with norm ≤ ``rel`` × the largest in their tensor (:meth:`Penalty.unit_norms`). All
    are zeroed at once; ``∇f`` is evaluated there; a candidate stays zero iff :meth:`Penalty.zero_is_optimal`
    holds for it, the others get their values back. If ``F`` ended higher than before, everything is undone.
    """
    positions = _positions(params, terms)
    saved = [p.detach().clone() for p in params]
    obj_before = _objective(loss, terms)
    masks: list[tuple[PenaltyTerm, int, Tensor]] = []
    for t, i in positions:
        norms = t.penalty.unit_norms(params[i])
        mask = (norms > 0) & (norms <= rel * norms.max())
        if mask.any():
            masks.append((t, i, mask))
            params[i].masked_fill_(mask.broadcast_to(params[i].shape), 0.0)
    if not masks:
        return 0
    _, grad = loss_and_grad()
    zeroed = 0
    for t, i, mask in masks:
        keep = mask & t.penalty.zero_is_optimal(params[i], grad[i], t.strength)
        restore = (mask & ~keep).broadcast_to(params[i].shape)
        params[i].copy_(torch.where(restore, saved[i], params[i]))
        zeroed += int(keep.sum())
    obj_after = _objective(loss, terms)
    if obj_after > obj_before + 1e-9 * abs(obj_before):
        _restore(params, saved)
        return 0
    return zeroed


__all__ = ["FistaResult", "fista", "kkt_threshold", "support"]
