"""A LightningDataModule over tensors already in memory (what the scikit-learn estimators fit on)."""

from __future__ import annotations

import lightning as L
from torch import Tensor
from typing_extensions import override

from lightreg.data.loader import TensorBatches


class ArrayDataModule(L.LightningDataModule):
    """Training batches of ``(x, y)`` (shuffled, seeded) and optional validation batches; no splitting, no scaling.

    Args:
        x, y: training features ``(n, d)`` and targets ``(n,)``.
        batch_size: samples per step; ``None`` = full batch.
        seed: seed of the shuffling.
        x_val, y_val: optional validation set.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int | None = 64,
        seed: int = 0,
        x_val: Tensor | None = None,
        y_val: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.x_train, self.y_train, self.x_val, self.y_val = x, y, x_val, y_val
        self.batch_size, self.seed = batch_size, seed

    @override
    def train_dataloader(self) -> TensorBatches:
        return TensorBatches(self.x_train, self.y_train, batch_size=self.batch_size, shuffle=True, seed=self.seed)

    @override
    def val_dataloader(self) -> TensorBatches | list:
        if self.x_val is None:
            return []
        return TensorBatches(self.x_val, self.y_val, batch_size=self.batch_size)
