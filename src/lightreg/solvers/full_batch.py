"""The training objective on the whole training set: ``f(w) = (1/N) Σ_i loss_i`` and its gradient. No Lightning.

Used by the KKT check and the full-batch proximal finish. The model runs in eval mode (no dropout: the
deterministic objective), and batches are fed through the model's own ``batch_loss`` so the loss is
exactly the training data loss (:class:`~lightreg.models.LightregModule`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from lightreg.solvers.threads import intra_op_threads


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore its previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


SMALL_DATA = 1 << 22
"""Training sets up to this many numbers count as small for ``num_threads="auto"`` (:func:`intra_op_threads`)."""


@contextmanager
def finish_threads(count: int | str | None, batches: list[tuple[Tensor, ...]]) -> Iterator[None]:
    """Intra-op threads for full-batch passes (:func:`lightreg.solvers.threads.intra_op_threads`): ``count`` threads;
    ``"auto"`` = 1 thread when ``batches`` hold at most :data:`SMALL_DATA` numbers, else unchanged; ``None`` leaves
    torch's setting alone.

    Tiny full-batch problems gain nothing from threads, and on a busy CPU every parallel region waits for a
    descheduled thread: a 800×10 finish took 61 s with 2 threads and 2.6 s with 1 on 2 loaded cores.
    """
    if count == "auto":
        count = 1 if sum(t.numel() for batch in batches for t in batch) <= SMALL_DATA else None
    with intra_op_threads(count):  # type: ignore[arg-type]
        yield


def materialize(batches: Iterable[Sequence[Tensor]], like: Tensor) -> list[tuple[Tensor, ...]]:
    """Read one pass of a loader into a list of batches (reused by every full-batch evaluation), on the device of
    the parameter ``like``, floating tensors in its dtype (as Lightning's ``64-true`` precision does)."""
    return [
        tuple(t.to(like.device, like.dtype if t.is_floating_point() else t.dtype) for t in batch) for batch in batches
    ]


def _batch_loss(model: Any, batch: tuple[Tensor, ...]) -> tuple[Tensor, int]:
    _, loss, y = model.batch_loss(batch)
    return loss, int(y.shape[0])


@torch.no_grad()
def data_loss(model: Any, batches: list[tuple[Tensor, ...]]) -> float:
    """Sample-weighted mean data loss over ``batches`` (what ``train/loss`` estimates per epoch)."""
    total, count = 0.0, 0
    for batch in batches:
        loss, n = _batch_loss(model, batch)
        total += float(loss) * n
        count += n
    return total / count


def data_loss_and_grad(
    model: Any, batches: list[tuple[Tensor, ...]], params: Sequence[Tensor]
) -> tuple[float, list[Tensor]]:
    """``(f(w), [∂f/∂p for p in params])`` with ``f`` the sample-weighted mean data loss over ``batches``."""
    grads = [torch.zeros_like(p) for p in params]
    total, count = 0.0, 0
    with torch.enable_grad():
        for batch in batches:
            loss, n = _batch_loss(model, batch)
            parts = torch.autograd.grad(loss, list(params), allow_unused=True)
            for g, part in zip(grads, parts):
                if part is not None:
                    g.add_(part, alpha=n)
            total += float(loss.detach()) * n
            count += n
    for g in grads:
        g.div_(count)
    return total / count, grads


__all__ = ["SMALL_DATA", "data_loss", "data_loss_and_grad", "eval_mode", "finish_threads", "materialize"]
