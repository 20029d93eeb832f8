"""``mode=exact`` runs its full-batch finish whenever training ends: at the last planned step (``max_epochs`` or
``max_steps``), and, with a warning naming what predates it, when training stops early."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from lightreg.callbacks import ExactFinish, RegularizationCallback
from lightreg.callbacks.exact_finish import restart_best_checkpoints
from lightreg.data import SyntheticDataModule
from lightreg.errors import LightregWarning, UserError
from lightreg.models import LogisticRegression
from lightreg.penalties import L1

from helpers import quiet_trainer, seeded_mlp


def _model_and_data() -> tuple[LogisticRegression, SyntheticDataModule]:
    dm = SyntheticDataModule(n_samples=200, batch_size=32, seed=0)
    torch.manual_seed(0)
    model = LogisticRegression(
        input_shape=(10,),
        num_classes=2,
        task="binary",
        print_epochs=False,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    return model, dm


def _fit(**trainer_options) -> tuple[RegularizationCallback, L.Trainer]:
    model, dm = _model_and_data()
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


def test_one_finish_is_added_to_a_plain_trainer_and_reports_on_its_owner() -> None:
    """A ``mode="exact"`` penalty in a plain ``Trainer`` adds the one ``ExactFinish`` itself; a second exact penalty
    shares it; the report is the first exact penalty's."""
    first = RegularizationCallback(L1(), 0.01, mode="exact", name="first")
    second = RegularizationCallback(L1(), 0.02, mode="exact", name="second")
    trainer = quiet_trainer([first, second], max_epochs=2)
    trainer.fit(*_model_and_data())
    finishes = [cb for cb in trainer.callbacks if isinstance(cb, ExactFinish)]
    assert len(finishes) == 1 and finishes[0].owner is first
    assert first.finish_report is finishes[0].report is not None and second.finish_report is None


def test_restarting_the_best_checkpoints_leaves_a_fresh_model_checkpoint() -> None:
    """The one place lightreg writes a ``ModelCheckpoint``'s best-model bookkeeping sets every field a fresh one has:
    a field Lightning adds to that bookkeeping makes this test fail."""
    fresh = ModelCheckpoint(monitor="val/loss", mode="min")
    used = ModelCheckpoint(monitor="val/loss", mode="min")
    used.best_k_models = {"a.ckpt": torch.tensor(0.5)}
    used.kth_best_model_path = used.best_model_path = "a.ckpt"
    used.best_model_score, used.kth_value = torch.tensor(0.5), torch.tensor(0.5)

    class Strategy:
        def remove_checkpoint(self, path: str) -> None:
            removed.append(path)

    removed: list[str] = []
    restart_best_checkpoints(SimpleNamespace(checkpoint_callbacks=[used], strategy=Strategy()))
    assert removed == ["a.ckpt"]
    tracked = {k for k in fresh.state_dict() if k not in ("dirpath", "monitor")}
    assert tracked, fresh.state_dict()
    for key in tracked:
        assert str(used.state_dict()[key]) == str(fresh.state_dict()[key]), key


class _PlainLogistic(L.LightningModule):
    """A user's own LightningModule, no lightreg base class."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.binary_cross_entropy_with_logits(self(x).squeeze(-1), y.float())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _PlainWithDataLoss(_PlainLogistic):
    def batch_loss(self, batch):
        x, y = batch
        output = self(x)
        return output, torch.nn.functional.binary_cross_entropy_with_logits(output.squeeze(-1), y.float()), y


def test_exact_mode_in_a_plain_lightning_module() -> None:
    """In a user's own LightningModule the finish needs the module's data loss: without ``batch_loss`` a one-line
    error says what to define; with it, the finish runs and gives exact zeros."""
    dm = SyntheticDataModule(n_samples=200, batch_size=32, seed=0)
    with pytest.raises(UserError, match=r"define batch_loss\(batch\)"):
        quiet_trainer([RegularizationCallback(L1(), 0.02, mode="exact")]).fit(_PlainLogistic(), datamodule=dm)
    callback = RegularizationCallback(L1(), 0.02, mode="exact", finish={"max_iter": 200})
    module = _PlainWithDataLoss()
    quiet_trainer([callback], max_epochs=2).fit(module, datamodule=dm)
    assert callback.finish_report is not None and callback.finish_report["iterations"] > 0
    assert 0 < int((module.net.weight == 0).sum()) < 10


@pytest.mark.parametrize(
    ("include", "advice"), [(None, "standardize the data"), (["net.fc1.weight"], "add L2 on the others")]
)
def test_a_finish_at_its_cap_names_the_residual_and_the_likely_cause(include: list[str] | None, advice: str) -> None:
    """The capped finish says where it stopped (the KKT residual) and gives the advice that fits the model: a fully
    penalized model is told to scale its data; one with unpenalized layers that its objective may have no minimizer."""

    dm = SyntheticDataModule(n_samples=200, batch_size=32, seed=0)
    model = seeded_mlp([8], functools.partial(torch.optim.SGD, lr=0.1))
    callback = RegularizationCallback(L1(), 0.02, mode="exact", include=include, finish={"max_iter": 2})
    with pytest.warns(LightregWarning, match=rf"finish.max_iter=2 with KKT residual \d.*{advice}"):
        quiet_trainer([callback], max_epochs=1).fit(model, datamodule=dm)
