"""Batch-norm running statistics recomputed on the training data before each validation (``callbacks=bn_refresh``).

A BatchNorm layer normalizes with the batch's statistics in training and with its running averages (momentum 0.1)
in eval mode. When the weights before it move fast (a proximal step shrinking whole channels every step), the running
averages lag behind them and the eval-mode model drifts away from the one that was trained. Before each validation
run of a fit, this callback resets them and recomputes them with :func:`torch.optim.swa_utils.update_bn`: one forward
pass in train mode, without gradients, over ``batches`` training batches with ``momentum=None``, so

    running_mean = (1/B) Σ_b mean_b,    running_var = (1/B) Σ_b var_b (unbiased, per batch)

over the ``B`` batches (under DDP, over every rank's batches: :func:`average_over_ranks`). Validation figures, the
checkpoints written after validation (``best.ckpt``, ``last.ckpt``) and what is compacted from them all see these
statistics. Weights, the data order and torch's random stream of training are untouched (the pass runs under
:func:`torch.random.fork_rng`, the loader's ``state_dict`` is restored); each layer's momentum and each module's
train/eval mode are restored. A model without BatchNorm costs nothing.

Logged: ``bn_refresh/batches`` (batches of the last refresh) and ``bn_refresh/seconds`` (its wall time).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn
from typing_extensions import override

from lightreg.errors import UserError


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``module`` that keep running statistics."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def refresh_batch_norm(module: nn.Module, loader: Iterable[Any], batches: int | None = None) -> int:
    """Recompute the running statistics of every BatchNorm layer of ``module`` from ``batches`` batches of
    ``loader`` (all when ``None``; each batch a tensor or an ``(x, y, ...)`` tuple, ``module(x)`` its forward),
    leaving torch's random state, each layer's momentum and each module's train/eval mode as they were.
    Returns the number of batches used (0, without touching ``loader``, when there is no BatchNorm)."""
    if not batch_norms(module):
        return 0
    device = next(itertools.chain(module.parameters(), module.buffers())).device
    modes = {m: m.training for m in module.modules()}
    state = loader.state_dict() if hasattr(loader, "state_dict") and hasattr(loader, "load_state_dict") else None
    counted = _Counted(itertools.islice(loader, batches) if batches is not None else loader)
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            update_bn(counted, module, device=device)
    finally:
        for m, training in modes.items():
            m.training = training
        if state is not None:
            loader.load_state_dict(state)
    return counted.count


def average_over_ranks(module: nn.Module, batches: int, sum_over_ranks: Callable[[Tensor], Tensor]) -> None:
    """Give every rank the running statistics of all ranks' refresh batches: each BatchNorm layer's ``running_mean``
    and ``running_var`` replaced by ``Σ_r B_r·stat_r / Σ_r B_r`` over the ranks ``r`` (``B_r`` the batches rank ``r``
    refreshed from; a rank with none counts for nothing), with one collective (``sum_over_ranks``: an all-reduce sum
    that returns the summed tensor) for all layers. Without it, each DDP rank validates, and rank 0 checkpoints, with
    statistics of its own shard only."""
    layers = batch_norms(module)
    if not layers:
        return
    buffers = [b for m in layers for b in (m.running_mean, m.running_var)]
    dtype = torch.float64  # summed as the epoch figures are (DDP runs on CUDA or CPU, which have float64)
    weight = torch.tensor([float(batches)], dtype=dtype, device=buffers[0].device)
    total = sum_over_ranks(torch.cat([*(b.detach().reshape(-1).to(dtype) * weight for b in buffers), weight]))
    if total[-1] <= 0:
        return
    averaged = total[:-1] / total[-1]
    for b, part in zip(buffers, averaged.split([b.numel() for b in buffers])):
        b.copy_(part.view_as(b))


class _Counted:
    """An iterable that counts the items it yields."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.count += 1
            yield item


class BatchNormRefresh(L.Callback):
    """Recompute BatchNorm running statistics on the training data before each validation run of a fit.

    Runs in ``on_validation_epoch_start``: Lightning validates at the end of the training epoch, before
    ``on_train_epoch_end``, and the checkpoint callbacks save after validation, so they hold the refreshed
    statistics. The sanity check before training is skipped (its figures are discarded), as is ``trainer.validate``.
    The training dataloader is Lightning's (``trainer.train_dataloader``): any ``LightningModule`` whose forward
    takes the first element of a training batch works.

    Args:
        batches: training batches per refresh (a positive integer), or ``None`` for the whole training set.
    """

    def __init__(self, batches: int | None = None) -> None:
        if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches <= 0):
            raise UserError(f"BatchNormRefresh: batches must be a positive integer or null (all), got {batches!r}")
        self.batches = batches

    @override
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or not batch_norms(pl_module):
            return
        loader = trainer.train_dataloader
        if loader is None or isinstance(loader, (Mapping, list, tuple)):
            raise UserError(
                "BatchNormRefresh needs a single training dataloader, got "
                f"{type(loader).__name__}: drop callbacks.bn_refresh or train on one loader"
            )
        start = time.perf_counter()
        used = refresh_batch_norm(pl_module, loader, self.batches)
        if trainer.world_size > 1:
            average_over_ranks(pl_module, used, lambda t: trainer.strategy.reduce(t, reduce_op="sum"))
        seconds = time.perf_counter() - start
        pl_module.log("bn_refresh/batches", float(used), on_step=False, on_epoch=True, batch_size=1)
        pl_module.log("bn_refresh/seconds", seconds, on_step=False, on_epoch=True, batch_size=1)


__all__ = ["BatchNormRefresh", "average_over_ranks", "batch_norms", "refresh_batch_norm"]
