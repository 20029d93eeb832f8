"""How far a model is from optimal: the KKT residual ``dist(−∇f(w), λ∂R(w))`` (skglm's ``subdiff_distance``).

For ``F(w) = f(w) + Σ_k λ_k R_k(w)`` (``f`` the full-training-set mean data loss), ``w`` is a stationary
point iff ``0 ∈ ∇f(w) + Σ λ_k ∂R_k(w)``. Per entry (or group) the distance of ``−∇f`` to ``λ∂R`` is

| R | w ≠ 0 | w = 0 (entry or whole group) |
| none (biases) | \\|g\\| | \\|g\\| |
| L2 (½Σw²) | \\|g + λw\\| | \\|g\\| |
| L1 | \\|g + λ·sign w\\| | max(\\|g\\| − λ, 0) |
| elastic net ρ | L1 row with g ← g + λ(1−ρ)w, λ ← λρ | max(\\|g\\| − λρ, 0) |
| group lasso | ‖g_g + λ√s·w_g/‖w_g‖‖ | max(‖g_g‖ − λ√s, 0) |

:func:`kkt_violation` returns the largest of these over every trainable parameter, in gradient units of
the mean loss (0 at an exact optimum of a convex model; for an MLP, at a stationary point).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightreg import full_batch
from lightreg.errors import UserError
from lightreg.penalties import L1, L2, ElasticNet, GroupLasso, Penalty, select_parameters
from lightreg.penalties.functional import group_norms, reduce_dims


@dataclass(frozen=True)
class PenaltyTerm:
    """``strength · penalty`` applied to ``params`` (name → parameter)."""

    penalty: Penalty
    strength: float
    params: dict[str, nn.Parameter]


def as_terms(model: nn.Module, penalties: Iterable[Any]) -> list[PenaltyTerm]:
    """Normalize ``penalties``: each a :class:`RegularizationCallback` (after ``setup``), a :class:`PenaltyTerm`,
    or a tuple ``(penalty, strength)`` / ``(penalty, strength, include)`` selecting from ``model``."""
    terms = []
    for item in penalties:
        if isinstance(item, PenaltyTerm):
            terms.append(item)
        elif hasattr(item, "penalty") and hasattr(item, "strength") and hasattr(item, "params"):
            params = item.params or dict(select_parameters(model, item.include, item.exclude))
            terms.append(PenaltyTerm(item.penalty, float(item.strength), params))
        elif isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], Penalty):
            include = item[2] if len(item) == 3 else None
            terms.append(PenaltyTerm(item[0], float(item[1]), dict(select_parameters(model, include))))
        else:
            raise UserError(
                f"kkt_violation takes RegularizationCallback, PenaltyTerm or (penalty, strength[, include]) items, got {item!r}"
            )
    return terms


def _l1_ratio(penalty: Penalty) -> float:
    """Weight ρ of the ℓ1 part of an elementwise penalty ``ρ|w| + (1−ρ)/2 w²``: 1 (L1), ``l1_ratio``, 0 (L2)."""
    if isinstance(penalty, L1):
        return 1.0
    if isinstance(penalty, ElasticNet):
        return penalty.l1_ratio
    if isinstance(penalty, L2):
        return 0.0
    raise UserError(f"no KKT rule for {penalty!r}; known: L1, L2, ElasticNet, GroupLasso")


def zero_threshold(penalty: Penalty, w: Tensor, strength: float) -> Tensor:
    """Per entry (elementwise penalties) or per group (shaped like ``group_norms``): the largest gradient norm
    at which ``0`` is optimal for that entry/group: λ (L1), λρ (elastic net), λ√size (group lasso), 0 (L2)."""
    if isinstance(penalty, GroupLasso):
        size = w.numel() // w.shape[penalty.dim]
        return torch.full_like(group_norms(w, penalty.dim), strength * math.sqrt(size))
    return torch.full_like(w, strength * _l1_ratio(penalty))


def gradient_norm(penalty: Penalty, g: Tensor) -> Tensor:
    """``|g|`` per entry, or ``‖g_g‖`` per group (the quantity compared with :func:`zero_threshold`)."""
    return group_norms(g, penalty.dim) if isinstance(penalty, GroupLasso) else g.abs()


def subdiff_distance(penalty: Penalty, w: Tensor, g: Tensor, strength: float) -> Tensor:
    """``dist(−g, λ∂R(w))`` per entry (elementwise) or per group (group lasso); see the module table."""
    if isinstance(penalty, GroupLasso):
        tau = zero_threshold(penalty, w, strength)
        norms = group_norms(w, penalty.dim)
        moving = torch.linalg.vector_norm(g + tau * w / norms.clamp(min=torch.finfo(w.dtype).tiny),
                                          dim=reduce_dims(w, penalty.dim), keepdim=True)
        return torch.where(norms > 0, moving, (group_norms(g, penalty.dim) - tau).clamp(min=0))
    rho = _l1_ratio(penalty)
    g = g + strength * (1 - rho) * w  # smooth (ridge) part
    lam = strength * rho
    return torch.where(w != 0, (g + lam * w.sign()).abs(), (g.abs() - lam).clamp(min=0))


def stationarity(model: nn.Module, terms: Sequence[PenaltyTerm], grads: dict[str, Tensor]) -> float:
    """max over every trainable parameter of the KKT residual, given ``grads`` = ∇f by parameter name."""
    by_param: dict[str, list[PenaltyTerm]] = {}
    for term in terms:
        for name in term.params:
            by_param.setdefault(name, []).append(term)
    worst = 0.0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        g, w = grads[name], p.detach()
        sparse = [t for t in by_param.get(name, []) if t.penalty.sparse]
        for t in by_param.get(name, []):
            if not t.penalty.sparse:
                g = g + t.strength * t.penalty.grad(w)
        if len(sparse) > 1:
            raise UserError(f"kkt_violation supports one sparse penalty per parameter; {name} has {len(sparse)}")
        dist = subdiff_distance(sparse[0].penalty, w, g, sparse[0].strength) if sparse else g.abs()
        worst = max(worst, float(dist.max()))
    return worst


def penalty_value(terms: Sequence[PenaltyTerm]) -> float:
    """``Σ_k λ_k R_k(w)`` at the current weights."""
    with torch.no_grad():
        return float(sum(t.strength * float(t.penalty.value(p)) for t in terms for p in t.params.values()))


def kkt_report(model: nn.Module, batches: list[tuple[Tensor, ...]], terms: Sequence[PenaltyTerm]) -> dict[str, float]:
    """``{"kkt_violation", "full_objective", "full_loss"}`` on ``batches`` (the whole training set)."""
    names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    with full_batch.eval_mode(model), full_batch.threads_for(batches):
        loss, grads = full_batch.data_loss_and_grad(model, batches, params)
    violation = stationarity(model, terms, dict(zip(names, grads)))
    return {"kkt_violation": violation, "full_objective": loss + penalty_value(terms), "full_loss": loss}


def kkt_violation(model: nn.Module, datamodule: Any, *penalties: Any) -> float:
    """Largest KKT residual ``dist(−∇f(w), Σλ∂R(w))`` of ``model`` over the whole training set of ``datamodule``.

    ``penalties``: :class:`~lightreg.callbacks.RegularizationCallback` instances, :class:`PenaltyTerm`, or
    ``(penalty, strength[, include])`` tuples. With no penalty it is ``max |∇f|``. Units: gradient of the mean
    loss per weight; 0 at an optimum (skglm's ``subdiff_distance``, maximum norm).
    """
    datamodule.setup("fit")
    batches = full_batch.materialize(datamodule.train_dataloader(), next(model.parameters()))
    return kkt_report(model, batches, as_terms(model, penalties))["kkt_violation"]


def trainer_figures(trainer: Any) -> dict[str, float]:
    """``kkt_violation``, ``full_objective`` and ``full_loss`` of a finished fit, for ``metrics.json``: computed
    for convex models (:class:`~lightreg.models.LogisticRegression`) and for runs with a ``mode: exact`` penalty,
    in a single process (each DDP rank only sees its shard), empty otherwise. Penalties at their final
    strength; one extra pass over the training set."""
    from lightreg.callbacks.regularization import RegularizationCallback
    from lightreg.models import LogisticRegression

    model, datamodule = trainer.lightning_module, trainer.datamodule
    regs = [cb for cb in trainer.callbacks if isinstance(cb, RegularizationCallback)]
    if datamodule is None or trainer.world_size > 1:
        return {}
    if not (isinstance(model, LogisticRegression) or any(cb.mode == "exact" for cb in regs)):
        return {}
    terms = [PenaltyTerm(cb.penalty, cb.current_strength(trainer.current_epoch), cb.params) for cb in regs]
    batches = full_batch.materialize(datamodule.train_dataloader(), next(model.parameters()))
    return kkt_report(model, batches, terms)


__all__ = [
    "PenaltyTerm", "as_terms", "gradient_norm", "kkt_report", "kkt_violation", "subdiff_distance", "trainer_figures",
    "zero_threshold",
]
