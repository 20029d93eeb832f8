"""Batches of in-memory tensors by index slicing (no per-sample ``__getitem__`` + collate)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


class TensorBatches:
    """Iterate over ``(x[idx], y[idx])`` mini-batches of tensors that already sit in memory.

    One ``index_select`` per tensor per batch replaces ``batch_size`` calls to ``__getitem__`` plus a
    collate. Shuffling is seeded per epoch: the permutation of epoch ``e`` comes from ``seed + e``. Lightning
    sets ``e`` before every epoch through ``sampler.set_epoch`` (as for a ``DistributedSampler``), so a run
    resumed from a checkpoint sees exactly the batches of an uninterrupted one; iterated by hand, the epoch
    advances by one per pass (and is saved by ``state_dict``).
    Under ``torch.distributed`` each rank takes every ``world_size``-th index of the (padded) permutation,
    as ``DistributedSampler`` does, so every rank runs the same number of batches.

    Args:
        tensors: tensors with the same first dimension.
        batch_size: samples per batch and per process; ``None`` means the full (per-rank) dataset.
        shuffle: reshuffle every epoch.
        seed: base seed of the shuffling.
        drop_last: drop a short final batch.
    """

    def __init__(
        self,
        *tensors: Tensor,
        batch_size: int | None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"tensors differ in length: {[t.shape[0] for t in tensors]}")
        if n == 0:
            raise ValueError("cannot batch an empty dataset")
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer or None (full batch), got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.sampler = _Epoch()
        self.batch_sampler = None  # read with `sampler` by Lightning's DataLoader duck-typing

    @staticmethod
    def _world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _num_local(self) -> int:
        _, world = self._world()
        return math.ceil(self.tensors[0].shape[0] / world)

    def _local_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else self._num_local()

    def __len__(self) -> int:
        n, bs = self._num_local(), self._local_batch_size()
        return n // bs if self.drop_last else math.ceil(n / bs)

    def _indices(self) -> Tensor:
        n = self.tensors[0].shape[0]
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.sampler.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        rank, world = self._world()
        if world > 1:
            padded = self._num_local() * world
            order = torch.cat([order, order[: padded - n]])[rank::world]
        return order

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._indices()
        self.sampler.epoch += 1
        bs = self._local_batch_size()
        for start in range(0, len(self) * bs, bs):
            idx = order[start : start + bs]
            yield tuple(t.index_select(0, idx) for t in self.tensors)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.epoch = int(state["epoch"])

    @property
    def epoch(self) -> int:
        """The epoch whose permutation the next pass uses."""
        return self.sampler.epoch


class _Epoch:
    """Where Lightning's ``_set_sampler_epoch`` finds ``set_epoch`` (it looks at ``loader.sampler``)."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
