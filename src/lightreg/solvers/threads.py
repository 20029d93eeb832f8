"""Torch intra-op threads for a training run on the CPU: one thread for small models, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from lightreg.errors import UserError

SMALL_MODEL = 1 << 20
"""Models with at most this many parameters count as small for ``num_threads="auto"``."""


def check_num_threads(count: object, name: str = "num_threads") -> int | str | None:
    """``count`` if it is a positive integer, ``"auto"`` or ``None``; a :class:`UserError` naming ``name`` otherwise."""
    if count in (None, "auto") or (isinstance(count, int) and not isinstance(count, bool) and count > 0):
        return count  # type: ignore[return-value]
    raise UserError(f"{name} must be a positive integer, 'auto' or null (torch's default), got {count!r}")


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the block, restored afterwards; ``None`` leaves torch's setting alone."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def training_threads(count: int | str | None, model: nn.Module, on_cpu: bool) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the block, restored afterwards. ``"auto"``: 1 thread when training runs
    on the CPU and ``model`` has at most :data:`SMALL_MODEL` parameters, else unchanged; ``None``: unchanged.

    A small model's kernels are too short to split; each parallel region only adds a barrier, and on a busy CPU every
    barrier waits for a descheduled thread: 5 epochs of logistic regression on digits by hand took 5.6 s with 2
    threads and 0.20 s with 1 on 2 cores at load 14 (``benchmarks/speed/loop_overhead.py`` runs 1 thread throughout).
    """
    count = check_num_threads(count)
    if count == "auto":
        count = 1 if on_cpu and sum(p.numel() for p in model.parameters()) <= SMALL_MODEL else None
    with intra_op_threads(count):  # type: ignore[arg-type]
        yield


__all__ = ["SMALL_MODEL", "check_num_threads", "intra_op_threads", "training_threads"]
