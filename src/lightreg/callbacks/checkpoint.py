"""``last.ckpt`` at an interval and at the end of training: what ``ckpt_path=`` resumes, without a write per epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lightreg.errors import UserError


class LastCheckpoint(ModelCheckpoint):
    """A :class:`~lightning.pytorch.callbacks.ModelCheckpoint` without a monitor (the newest weights) that writes every
    ``every_n_epochs`` epochs and, in addition, once when training ends (also after early stopping or ``max_time``),
    so the file always holds the final model.

    Resuming from an interval checkpoint continues bit-for-bit: the data order of an epoch depends only on its number
    (:class:`~lightreg.data.TensorBatches`), and the file holds the optimizer state and the callbacks' state. A crash
    loses at most ``every_n_epochs - 1`` epochs of work. On small tabular problems a write costs about as much as an
    epoch of training (``benchmarks/speed/loop_overhead.py --split``).
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("monitor") is not None:
            monitor = kwargs["monitor"]
            raise UserError(f"LastCheckpoint keeps the newest weights: monitor must be None, not {monitor!r}")
        super().__init__(**kwargs)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):  # skips when this global step is already saved
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))


__all__ = ["LastCheckpoint"]
