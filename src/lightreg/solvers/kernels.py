"""How a penalty pass runs on a device: the kernels behind the maths of :mod:`lightreg.penalties`. Pure torch.

The maths is the penalties' own (``λ ρ sign w + λ (1 − ρ) w`` for the gradient, ``w ← S_{ηλρ}(w) / (1 + ηλ(1 − ρ))``
for the prox of an elementwise penalty ``ρ‖w‖₁ + (1 − ρ)/2 ‖w‖²``); this module only chooses how to run it:

| form | where | temporaries |
| ``foreach`` | one multi-tensor launch per batch of chunks | ≤ ``budget`` entries |
| ``chunked`` | the default: per tensor, slices through one reused buffer | ≤ ``budget`` entries |
| ``plain`` | the per-tensor forms (``w.sub_(w.clamp(-t, t))``, ``g.add_(w.sign())``) | one weight-sized per tensor |

``budget`` = 1 % of the penalized entries (at least :data:`MIN_CHUNK`), so the extra memory stays ≤ 1 % of the
parameters. Pure-L2 passes need no temporary in any form. Group penalties and per-entry (adaptive-optimizer) prox
steps use the penalty's own per-tensor code. ``benchmarks/speed/penalty_overhead.py --forms`` times each form.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightreg.penalties import ElementwisePenalty, Penalty

FORMS = ("foreach", "chunked", "plain")
MIN_CHUNK = 1 << 14
"""Smallest temporary, in entries (64 KiB of fp32): below that a pass is launch-bound."""


DEFAULT_FORM = "chunked"
"""The form used where none is named, on every device. Measured by ``penalty_overhead.py --forms`` (grad-L1 step ×
the plain SGD step): on an NVIDIA H100, chunked 1.57 / 1.23 against foreach 1.55 / 1.56 (deep / wide MLP); on the
2-core CPU the three forms are within noise (1.12–1.19 on the deep MLP). ``plain`` is faster on the H100 (1.22 / 1.14)
but holds a weight-sized temporary (up to 22 % of the parameters' bytes)."""


def budget(params: Sequence[Tensor]) -> int:
    """Entries a pass may hold in temporaries: 1 % of ``params``' entries, at least :data:`MIN_CHUNK`."""
    return max(MIN_CHUNK, sum(p.numel() for p in params) // 100)


def _chunks(tensors: Sequence[Tensor], size: int) -> list[list[int | tuple[int, int, int]]]:
    """Batches of ``(tensor index, start, stop)`` slices of the flattened tensors, each batch ≤ ``size`` entries."""
    batches: list[list] = [[]]
    room = size
    for i, t in enumerate(tensors):
        start, n = 0, t.numel()
        while start < n:
            take = min(n - start, room)
            batches[-1].append((i, start, start + take))
            start += take
            room -= take
            if room == 0:
                batches.append([])
                room = size
    return [b for b in batches if b]


def _elementwise(penalty: Penalty, tensors: Sequence[Tensor]) -> bool:
    return isinstance(penalty, ElementwisePenalty) and all(t.is_contiguous() for t in tensors)


@torch.no_grad()
def add_grad_(penalty: Penalty, params: Sequence[Tensor], grads: Sequence[Tensor], strength: float, form: str) -> None:
    """In place ``g ← g + strength · ∇R(w)`` for every pair (the minimum-norm subgradient at kinks)."""
    if not _elementwise(penalty, [*params, *grads]) or form == "plain":
        for p, g in zip(params, grads):
            g.add_(penalty.grad(p), alpha=strength)
        return
    rho = penalty.l1_weight
    if rho < 1:
        torch._foreach_add_(list(grads), list(params), alpha=strength * (1 - rho))
    if rho > 0:
        _map_chunks(params, grads, budget(params), form, lambda w, out: torch.sign(w, out=out), strength * rho)


@torch.no_grad()
def prox_(penalty: Penalty, params: Sequence[Tensor], step: float, form: str) -> None:
    """In place ``w ← prox_{step·R}(w)`` with one scalar ``step`` (already multiplied by λ) for every tensor."""
    if not _elementwise(penalty, params) or form == "plain":
        for p in params:
            penalty.prox_(p, step)
        return
    rho = penalty.l1_weight
    if rho > 0:
        t = step * rho
        _map_chunks(params, params, budget(params), form, lambda w, out: torch.clamp(w, -t, t, out=out), -1.0)
    if rho < 1:
        torch._foreach_div_(list(params), 1 + step * (1 - rho))


def _map_chunks(src: Sequence[Tensor], dst: Sequence[Tensor], size: int, form: str, fn, alpha: float) -> None:
    """``dst += alpha · fn(src)`` slice by slice, the temporaries of one batch holding ≤ ``size`` entries."""
    flat_src = [t.view(-1) for t in src]
    flat_dst = [t.view(-1) for t in dst]
    if form == "foreach":
        for batch in _chunks(src, size):
            views = [flat_src[i][a:b] for i, a, b in batch]
            outs = [torch.empty_like(v) for v in views]
            for v, out in zip(views, outs):
                fn(v, out)
            torch._foreach_add_([flat_dst[i][a:b] for i, a, b in batch], outs, alpha=alpha)
        return
    buffer = torch.empty(min(size, max(t.numel() for t in src)), dtype=src[0].dtype, device=src[0].device)
    for s, d in zip(flat_src, flat_dst):
        for start in range(0, s.numel(), size):
            v = s[start : start + size]
            out = fn(v, buffer[: v.numel()])
            d[start : start + size].add_(out, alpha=alpha)


@torch.no_grad()
def value(penalty: Penalty, params: Sequence[Tensor]) -> Tensor:
    """``Σ_p R(p)`` as a detached 0-dim tensor, with no weight-sized temporary for elementwise penalties (one
    multi-tensor norm per part) and no host synchronization."""
    if not params:
        return torch.zeros(())
    if not isinstance(penalty, ElementwisePenalty):
        return torch.stack([penalty.value(p) for p in params]).sum()
    rho = penalty.l1_weight
    total = torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    if rho > 0:
        total += rho * torch.stack(torch._foreach_norm(list(params), 1)).sum()
    if rho < 1:
        total += 0.5 * (1 - rho) * torch.stack(torch._foreach_norm(list(params), 2)).square().sum()
    return total


__all__ = ["DEFAULT_FORM", "FORMS", "MIN_CHUNK", "add_grad_", "budget", "prox_", "value"]
