"""Pure in-place math for the proximal operators; no classes, no state.

Thresholds ``t`` are a Python float or a tensor broadcastable to the tensor they act on.
"""

from __future__ import annotations

import torch
from torch import Tensor


def soft_threshold_(w: Tensor, t: float | Tensor) -> Tensor:
    """In place ``w <- sign(w) * max(|w| - t, 0)``, computed as ``w - clamp(w, -t, t)``; returns ``w``.

    A per-entry ``t`` of ``w``'s shape costs one temporary (``-t``, then the clamp written over it).
    """
    if isinstance(t, Tensor) and t.shape == w.shape:
        inner = torch.neg(t)
        return w.sub_(torch.clamp(w, min=inner, max=t, out=inner))
    return w.sub_(w.clamp(min=-t, max=t))


def reduce_dims(w: Tensor, dim: int) -> tuple[int, ...]:
    """Every dimension of ``w`` except ``dim``: the dimensions a group along ``dim`` is flattened over."""
    return tuple(d for d in range(w.ndim) if d != dim)


def group_size(w: Tensor, dim: int) -> int:
    """Number of entries in each group ``w.select(dim, i)``."""
    return w.numel() // w.shape[dim]


def group_norms(w: Tensor, dim: int) -> Tensor:
    """Euclidean norm of each group ``w.select(dim, i)``, kept as size-1 dims so it broadcasts against ``w``."""
    return torch.linalg.vector_norm(w, dim=reduce_dims(w, dim), keepdim=True)


def group_min(x: Tensor, w: Tensor, dim: int) -> Tensor:
    """Minimum of ``x`` (broadcast to ``w``'s shape) over each group of ``w`` along ``dim``; shaped like group_norms."""
    return torch.amin(x.broadcast_to(w.shape), dim=reduce_dims(w, dim), keepdim=True)


def block_soft_threshold_(w: Tensor, t: float | Tensor, dim: int) -> Tensor:
    """In place ``w_g <- w_g * max(0, 1 - t_g / ||w_g||)`` for every group along ``dim`` (zero-norm groups stay 0).

    ``t`` is one threshold for all groups or a tensor shaped like ``group_norms(w, dim)``. Returns ``w``.
    """
    norms = group_norms(w, dim)
    scale = (norms - t).clamp_(min=0).div_(norms.clamp(min=torch.finfo(norms.dtype).tiny))
    return w.mul_(scale)


def normalize_groups_(w: Tensor, dim: int) -> Tensor:
    """In place ``w_g <- w_g / ||w_g||`` for every group along ``dim``; zero-norm groups stay 0. Returns ``w``."""
    return w.div_(group_norms(w, dim).clamp_(min=torch.finfo(w.dtype).tiny))
