"""``mode=exact`` runs its full-batch finish whenever training ends: at the last planned step (``max_epochs`` or
``max_steps``), and, with a warning naming what predates it, when training stops early."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from lightreg.callbacks import RegularizationCallback
from lightreg.data import SyntheticDataModule
from lightreg.errors import LightregWarning
from lightreg.models import LogisticRegression
from lightreg.penalties import L1

from helpers import quiet_trainer


def _fit(**trainer_options) -> tuple[RegularizationCallback, L.Trainer]:
    dm = SyntheticDataModule(n_samples=200, batch_size=32, seed=0)
    torch.manual_seed(0)
    model = LogisticRegression(
        input_shape=(10,),
        num_classes=2,
        task="binary",
        print_epochs=False,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    callback = RegularizationCallback(L1(), 0.02, mode="exact", finish={"max_iter": 200})
    trainer = quiet_trainer([callback, *trainer_options.pop("callbacks", [])], **trainer_options)
    trainer.fit(model, datamodule=dm)
    return callback, trainer


def test_finish_runs_after_the_last_epoch() -> None:
    callback, trainer = _fit(max_epochs=2)
    assert callback.finish_report is not None and callback.finish_report["iterations"] > 0
    assert "exact/iterations" in trainer.callback_metrics


def test_finish_runs_at_max_steps() -> None:
    callback, trainer = _fit(max_epochs=50, max_steps=7)
    assert trainer.global_step == 7
    assert callback.finish_report is not None
    assert "exact/iterations" in trainer.callback_metrics  # ran after the last batch, before validation


def test_finish_runs_when_early_stopping_ends_training_and_says_so() -> None:
    stop = EarlyStopping(monitor="val/loss", min_delta=10.0, patience=0)  # no epoch can improve by 10: stops at once
    with pytest.warns(LightregWarning, match=r"before trainer.max_epochs=50 .*val/\* and the checkpoints predate it"):
        callback, trainer = _fit(max_epochs=50, callbacks=[stop])
    assert trainer.current_epoch < 50
    assert callback.finish_report is not None
