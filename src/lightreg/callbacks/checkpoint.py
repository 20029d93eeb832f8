"""``last.ckpt`` at an interval, at the end of training and where Ctrl-C stopped it: what ``ckpt_path=`` resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from typing_extensions import override

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


class InterruptCheckpoint(Callback):
    """Save the model at the step where training was interrupted (Ctrl-C), as ``<dirpath>/<filename>.ckpt``
    (``last.ckpt`` by default, so ``ckpt_path=`` resumes from there). Any other exception writes nothing: a diverged
    run keeps its last good checkpoint.

    Args:
        dirpath: the checkpoint folder.
        filename: the file's name without ``.ckpt``.
    """

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        if not filename:
            raise UserError("InterruptCheckpoint needs a filename (without .ckpt), got an empty one")
        self.path = Path(dirpath) / f"{filename}.ckpt"

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.path)


__all__ = ["InterruptCheckpoint", "LastCheckpoint"]
