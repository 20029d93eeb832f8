"""A penalty term ``λ · Σ_p R(p)`` over named tensors: the one term type that callbacks, solvers and checks share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from lightreg.penalties.penalty import Penalty


@dataclass(frozen=True)
class PenaltyTerm:
    """``strength · penalty`` applied to each tensor of ``params`` (name → tensor, e.g. ``net.fc1.weight``)."""

    penalty: Penalty
    strength: float
    params: Mapping[str, Tensor]


@torch.no_grad()
def penalty_value(terms: Iterable[PenaltyTerm]) -> Tensor:
    """``Σ_k λ_k Σ_p R_k(p)`` as a detached 0-dim tensor on the tensors' device (no host synchronization)."""
    total: Tensor | None = None
    for term in terms:
        for p in term.params.values():
            part = term.penalty.value(p) * term.strength
            total = part if total is None else total + part
    return total if total is not None else torch.zeros(())


__all__ = ["PenaltyTerm", "penalty_value"]
