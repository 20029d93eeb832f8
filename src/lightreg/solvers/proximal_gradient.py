"""Full-batch accelerated proximal gradient with a KKT-checked final thresholding. Pure torch; no Lightning.

Minimizes ``F(w) = f(w) + Σ_k λ_k R_k(w)`` over a list of tensors in place, ``f`` smooth (data loss plus
smooth penalties), each ``R_k`` with an exact prox (L1, elastic net, group lasso; MCP, SCAD, log-sum, L0 by their
global prox):

- Monotone FISTA (Beck & Teboulle 2009, MFISTA; Li & Lin 2015, monotone APG) with backtracking on the step ``1/L``
  (``L`` doubled until ``f(z) ≤ f(y) + ⟨∇f(y), z − y⟩ + L/2 ‖z − y‖²`` up to ``f``'s rounding, then relaxed by
  ``L ← 0.9 L`` each iteration so steps can grow again). A momentum step is kept only if ``F(z) ≤ F(x)``;
  otherwise it is discarded, the momentum reset, and the next step is a plain proximal-gradient step from ``x``,
  which cannot increase ``F`` (exact prox, step passing the backtracking test; Attouch, Bolte & Svaiter 2013).
  So ``F`` never increases, for convex and nonconvex penalties alike. The momentum is also reset when a step turns
  against it (gradient restart, O'Donoghue & Candès 2015). ``accelerate=False``: plain proximal gradient.
- Stop rule: the KKT residual ``max dist(−∇f(x), Σλ∂R(x))`` (:func:`residual`; the limiting subdifferential for
  nonconvex penalties, ``|∇f|`` for unpenalized tensors), measured at ``x`` whenever the gradient is taken there
  (after a restart, or forced once the support has been stable for ``patience`` iterations, then at doubling
  intervals up to ``8·patience``), is at most ``tol × kkt_scale``, with the zero pattern unchanged for ``patience``
  iterations (proximal gradient identifies the support in finitely many iterations when the zeros are strictly
  optimal, Hare & Lewis 2004; Nutini et al. 2019). An objective-settled rule is loose along nearly flat directions:
  a coefficient creeping towards 0 barely changes ``F``. ``"stalled"`` (converged, with its residual reported):
  ``patience`` plain steps in a row did not lower ``F`` (its rounding: the residual is then ≈ √(eps·|F|·L)), or ``F``
  fell by at most :data:`SETTLED` × ``|F|`` over ``patience`` iterations (a ReLU network's residual creeps at its
  kinks). ``max_iter`` bounds the rest (``converged`` False; the callers warn by name).
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
    """What one call of :func:`fista` did: iterations run, why it stopped (``"kkt"``: the KKT residual reached the
    tolerance; ``"stalled"``: no step from the iterate lowers ``F``; ``"max_iter"``), final ``F``, the KKT residual
    last measured at an iterate (``inf`` if none was), and ``F`` at every accepted iterate (the start first)."""

    iterations: int
    stop: str
    objective: float
    kkt: float
    objectives: tuple[float, ...]

    @property
    def converged(self) -> bool:
        return self.stop != "max_iter"


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


def kkt_scale(params: Sequence[Tensor], terms: Sequence[PenaltyTerm]) -> float:
    """The unit of the stop tolerance: the largest gradient a zero unit may have, ``max_k zero_threshold`` (λ for
    L1, MCP and SCAD, λρ for elastic net, λ√size for a group), 1 without a sparse term."""
    scales = [float(t.penalty.zero_threshold(params[i], t.strength).max()) for t, i in _positions(params, terms)]
    return max([s for s in scales if s > 0], default=1.0)


def residual(params: Sequence[Tensor], grads: Sequence[Tensor], positions: Sequence[tuple[PenaltyTerm, int]]) -> float:
    """``max dist(−∇f, λ∂R)`` over every entry/group of ``params`` (:meth:`Penalty.subdiff_distance`; ``|∇f|`` for
    tensors without a sparse term), ``grads`` the gradient of ``f`` at ``params``."""
    penalized = {i: t for t, i in positions}
    worst = 0.0
    for i, (p, g) in enumerate(zip(params, grads)):
        t = penalized.get(i)
        dist = t.penalty.subdiff_distance(p, g, t.strength) if t is not None else g.abs()
        if dist.numel():
            worst = max(worst, float(dist.max()))
    return worst


def rounding(value: Tensor | float, dtype: torch.dtype) -> float:
    """What a loss of size ``value`` may be off by in ``dtype``: ``16·eps·|value|`` (a sum's rounding, with room)."""
    return 16.0 * torch.finfo(dtype).eps * abs(float(value))


SETTLED = 1e-9
"""``F`` falling by at most this × ``|F|`` over ``patience`` accepted iterations with a stable zero pattern stops the
solve as stalled: 100× stricter than an objective-settled stop that left a diabetes lasso coefficient at 0.009, a
network whose KKT residual creeps (ReLU kinks) still ends."""


@torch.no_grad()
def fista(
    params: Sequence[Tensor],
    terms: Sequence[PenaltyTerm],
    loss_and_grad: LossAndGrad,
    loss: Loss,
    max_iter: int = 1000,
    tol: float = 1e-4,
    patience: int = 20,
    lipschitz: float = 1.0,
    accelerate: bool = True,
) -> FistaResult:
    """Minimize ``f + Σ λR`` over ``params`` in place from their current values; see the module docstring.

        ``terms`` penalize tensors of ``params`` (the same objects). Stops at an iterate ``x`` whose zero pattern was
        unchanged for ``patience`` iterations and whose KKT residual (:func:`residual`) is at most
        ``tol × kkt_scale`` (gradient units of ``f``), or from which ``patience`` plain steps in a row failed to lower
    ``F`` (stalled: the method's fixed point in this precision, or a kink of a ReLU network); else after ``max_iter``
        iterations. ``lipschitz`` is the first guess of ``L`` (the step is ``1/L``); it adapts by backtracking.
        ``accelerate=False``: plain proximal gradient (no momentum).
    """
    positions = _positions(params, terms)
    x = [p.detach().clone() for p in params]
    obj_x = _objective(loss, terms)
    if not math.isfinite(obj_x):
        raise UserError(
            f"the full-batch proximal finish starts from a non-finite objective ({obj_x}): training diverged "
            "before it; lower the learning rate (optimizer.lr) or standardize the inputs"
        )
    dtype = params[0].dtype if params else torch.float64
    target = tol * kkt_scale(params, terms)
    objectives = [obj_x]
    pattern, stable = support(x, positions), 0
    t, lip, at_x, kkt = 1.0, lipschitz, True, math.inf
    recheck, wait = 0, patience  # the next KKT check forced by a momentum restart, and the interval after it
    stuck, settled = 0, False  # plain steps from x in a row that did not lower F; F settled (SETTLED)
    for k in range(1, max_iter + 1):
        f_y, grad = loss_and_grad()
        if at_x:  # params hold x itself: its KKT residual comes with the gradient
            kkt = residual(params, grad, positions)
            if stable >= patience:
                if kkt <= target or settled:
                    return FistaResult(k - 1, "kkt" if kkt <= target else "stalled", obj_x, kkt, tuple(objectives))
                recheck, wait = k + wait, min(2 * wait, 8 * patience)  # keep the momentum longer each time
        y = [p.detach().clone() for p in params]
        slack = rounding(f_y, dtype)
        lip *= 0.9
        while True:
            for p, yi, g in zip(params, y, grad):
                p.copy_(yi).sub_(g, alpha=1.0 / lip)
            _prox_(terms, 1.0 / lip)
            diff = [p - yi for p, yi in zip(params, y)]
            f_z = loss()
            step2 = sum(float(d.square().sum()) for d in diff)
            upper = f_y + sum(float((g * d).sum()) for g, d in zip(grad, diff)) + 0.5 * lip * step2
            if f_z <= upper + slack or not math.isfinite(upper):  # slack: f's own rounding (float32 would stall)
                break
            lip *= 2.0
            if lip > 1e20:
                break
        obj_z = f_z + float(penalty_value(terms))
        if not obj_z <= obj_x:  # restart: back to x, a plain step from there next
            stuck = stuck + 1 if at_x else 0
            _restore(params, x)
            t, at_x = 1.0, True
            if stuck >= patience:  # x is a fixed point of the method (f's rounding, or a kink of a ReLU network)
                return FistaResult(k, "kkt" if kkt <= target else "stalled", obj_x, kkt, tuple(objectives))
        else:
            stuck = 0
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0 if accelerate else 1.0
            beta = (t - 1.0) / t_next
            z = [p.detach().clone() for p in params]
            # gradient restart (O'Donoghue & Candès 2015): the new step turned against the momentum
            turned = sum(float(((yi - zi) * (zi - xi)).sum()) for yi, zi, xi in zip(y, z, x)) > 0
            if turned or (stable >= patience and k >= recheck):
                t_next, at_x = 1.0, True  # momentum restart: the next gradient is taken at x
            elif beta == 0.0:
                at_x = True  # the first step after a restart carries no momentum yet
            else:
                for p, zi, xi in zip(params, z, x):
                    p.add_(zi - xi, alpha=beta)  # params now hold the extrapolated point y
                at_x = False
            x, obj_x, t = z, obj_z, t_next
            objectives.append(obj_x)
        new_pattern = support(x, positions)
        stable = stable + 1 if _same(new_pattern, pattern) else 0
        pattern = new_pattern
        settled = stable >= patience and len(objectives) > patience
        settled = settled and objectives[-patience - 1] - obj_x <= SETTLED * abs(obj_x)
        if settled and not at_x:  # measure the residual at x before stopping on it
            _restore(params, x)
            t, at_x = 1.0, True
    _restore(params, x)
    return FistaResult(max_iter, "max_iter", obj_x, kkt, tuple(objectives))


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
