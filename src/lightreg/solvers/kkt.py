"""How far a model is from optimal: the KKT residual ``dist(−∇f(w), λ∂R(w))`` (skglm's ``subdiff_distance``).

For ``F(w) = f(w) + Σ_k λ_k R_k(w)`` (``f`` the full-training-set mean data loss), ``w`` is a stationary point iff
``0 ∈ ∇f(w) + Σ λ_k ∂R_k(w)``. Each penalty gives its own distance per entry or group
(:meth:`~lightreg.penalties.Penalty.subdiff_distance`); smooth penalties (L2) are folded into the gradient first,
and parameters without a penalty (biases) contribute ``|g|``. :func:`stationarity` returns the largest of these
over every trainable parameter, in gradient units of the mean loss: 0 at an exact optimum of a convex model,
and at a stationary point of a network. Pure torch: no Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from lightreg.errors import UserError
from lightreg.penalties import Penalty, PenaltyTerm, penalty_value, select_parameters
from lightreg.solvers import full_batch


@runtime_checkable
class TermSource(Protocol):
    """Anything that can state its penalty term, e.g. a :class:`~lightreg.callbacks.RegularizationCallback`."""

    def as_term(self) -> PenaltyTerm: ...


def as_terms(model: nn.Module, penalties: Sequence[Any]) -> list[PenaltyTerm]:
    """Normalize ``penalties``: :class:`PenaltyTerm`, objects with ``as_term()`` (a fitted
    ``RegularizationCallback``), or tuples ``(penalty, strength)`` / ``(penalty, strength, include)`` that select
    from ``model``."""
    terms = []
    for item in penalties:
        if isinstance(item, PenaltyTerm):
            terms.append(item)
        elif isinstance(item, TermSource):
            terms.append(item.as_term())
        elif isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], Penalty):
            include = item[2] if len(item) == 3 else None
            terms.append(PenaltyTerm(item[0], float(item[1]), dict(select_parameters(model, include))))
        else:
            raise UserError(
                "kkt_violation takes RegularizationCallback, PenaltyTerm or (penalty, strength[, include]) items, "
                f"got {item!r}"
            )
    return terms


def stationarity(model: nn.Module, terms: Sequence[PenaltyTerm], grads: dict[str, Tensor]) -> float:
    """max over every trainable parameter of the KKT residual, given ``grads`` = ∇f by parameter name."""
    by_param: dict[int, list[PenaltyTerm]] = {}
    for term in terms:
        for p in term.params.values():
            by_param.setdefault(id(p), []).append(term)
    worst = 0.0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        g, w = grads[name], p.detach()
        own = by_param.get(id(p), [])
        for t in own:
            if not t.penalty.sparse:
                g = g + t.strength * t.penalty.grad(w)
        sparse = [t for t in own if t.penalty.sparse]
        if len(sparse) > 1:
            raise UserError(f"kkt_violation supports one sparse penalty per parameter; {name} has {len(sparse)}")
        dist = sparse[0].penalty.subdiff_distance(w, g, sparse[0].strength) if sparse else g.abs()
        worst = max(worst, float(dist.max()))
    return worst


def kkt_report(model: nn.Module, batches: list[tuple[Tensor, ...]], terms: Sequence[PenaltyTerm]) -> dict[str, float]:
    """``{"kkt_violation", "full_objective", "full_loss"}`` on ``batches`` (the whole training set)."""
    names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    with full_batch.eval_mode(model):
        loss, grads = full_batch.data_loss_and_grad(model, batches, params)
    violation = stationarity(model, terms, dict(zip(names, grads)))
    return {"kkt_violation": violation, "full_objective": loss + float(penalty_value(terms)), "full_loss": loss}


def kkt_violation(model: nn.Module, datamodule: Any, *penalties: Any) -> float:
    """Largest KKT residual ``dist(−∇f(w), Σλ∂R(w))`` of ``model`` over the whole training set of ``datamodule``.

    ``penalties``: fitted :class:`~lightreg.callbacks.RegularizationCallback` instances, :class:`PenaltyTerm`, or
    ``(penalty, strength[, include])`` tuples. With no penalty it is ``max |∇f|``. Units: gradient of the mean
    loss per weight; 0 at an optimum (skglm's ``subdiff_distance``, maximum norm).
    """
    datamodule.setup("fit")
    batches = full_batch.materialize(datamodule.train_dataloader(), next(model.parameters()))
    return kkt_report(model, batches, as_terms(model, penalties))["kkt_violation"]


__all__ = ["TermSource", "as_terms", "kkt_report", "kkt_violation", "stationarity"]
