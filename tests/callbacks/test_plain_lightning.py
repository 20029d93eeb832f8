"""The penalty callbacks in a user's own LightningModule and a plain ``lightning.Trainer`` (no lightreg base class, no
CLI): the figures they log there, where the sparsity file goes, the report on that folder, the hand-written-penalty
checks, and the same figures as the CLI on the same data, start and λ."""

from __future__ import annotations

import csv
import json
import warnings
from collections import OrderedDict
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.nn import functional as F

from lightreg import run_folder
from lightreg.callbacks import RegularizationCallback, SparsityMonitor
from lightreg.cli.commands import main as lightreg_main
from lightreg.data import SklearnDataModule
from lightreg.errors import LightregWarning
from lightreg.penalties import L1

from helpers import composed

LAMBDA = 0.1


class PlainLogistic(L.LightningModule):
    """A user's own binary logistic regression; ``hand_written`` adds a term of its own to the loss."""

    def __init__(self, num_inputs: int, lr: float = 0.1, momentum: float = 0.9, hand_written: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), linear=nn.Linear(num_inputs, 1)))
        self.lr, self.momentum, self.hand_written = lr, momentum, hand_written

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self.net(x).squeeze(-1), y.float())
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        if self.hand_written > 0:
            return loss + self.hand_written * self.net.linear.weight.abs().sum()
        if self.hand_written < 0:
            return loss - (-self.hand_written) * self.net.linear.weight.abs().sum()
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", F.binary_cross_entropy_with_logits(self.net(x).squeeze(-1), y.float()), batch_size=len(y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


def _data() -> SklearnDataModule:
    dm = SklearnDataModule("breast_cancer", batch_size=64, seed=0)
    dm.setup("fit")
    return dm


def _trainer(root: Path, callbacks: list, max_epochs: int = 3, **options) -> L.Trainer:
    return L.Trainer(
        **options,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=CSVLogger(root, name="logs"),
        default_root_dir=root,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _lightreg_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, LightregWarning)]


def test_plain_module_logs_penalty_objective_and_writes_beside_the_logger(tmp_path: Path, monkeypatch) -> None:
    """``train/penalty`` and ``train/objective`` (= the returned loss + the penalty, epoch means) are logged by the
    callback itself; ``sparsity.json`` lands in the logger's folder, not in the working folder; ``lightreg report``
    renders that folder."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    dm = _data()
    torch.manual_seed(0)  # the start, whatever ran before in this process
    module = PlainLogistic(dm.input_shape[0])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer = _trainer(tmp_path / "run", [RegularizationCallback(L1(), LAMBDA), SparsityMonitor()])
        trainer.fit(module, datamodule=dm)
    assert not _lightreg_warnings(record)  # nothing hand-written: no hand-written-penalty warning
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert logged["train/penalty"] > 0
    assert logged["train/objective"] == pytest.approx(logged["train/loss"] + logged["train/penalty"], rel=1e-5)
    assert 0 < logged["sparsity/total"] < 1 and "sparsity/l1" in logged
    sparsity = Path(trainer.log_dir) / run_folder.SPARSITY_FILE
    assert sparsity.is_file() and not (elsewhere / run_folder.SPARSITY_FILE).exists()
    history = json.loads(sparsity.read_text())["history"]
    assert history[-1]["metrics"]["train/penalty"] == pytest.approx(logged["train/penalty"])
    assert lightreg_main(["report", trainer.log_dir]) == 0
    assert (Path(trainer.log_dir) / run_folder.PLOTS).is_dir()


class _L1ByHand(L.Callback):
    """``(global step, batch size, λ·‖w‖₁)`` at every training batch's start, and the batch count of an epoch."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        value = LAMBDA * float(pl_module.net.linear.weight.detach().abs().sum())
        self.rows.append((trainer.global_step, batch_idx, len(batch[0]), value))


def test_plain_module_logs_the_penalty_of_the_logging_steps(tmp_path: Path) -> None:
    """log_every_n_steps=3 over 8 batches (7 × 64 rows + 7): ``train/penalty/l1`` is logged on the logging steps
    (global steps 2, 5, 8, ...) and, like ``train/penalty``, its epoch figure is the batch-size-weighted mean of λ·R
    over those batches and the epoch's last; ``train/objective`` adds it to the mean returned loss of every batch."""
    dm = _data()
    torch.manual_seed(0)
    module, by_hand = PlainLogistic(dm.input_shape[0]), _L1ByHand()
    trainer = _trainer(tmp_path, [by_hand, RegularizationCallback(L1(), LAMBDA)], max_epochs=1, log_every_n_steps=3)
    trainer.fit(module, datamodule=dm)
    sampled = [(n, v) for step, batch, n, v in by_hand.rows if (step + 1) % 3 == 0 or batch == 7]
    assert len(by_hand.rows) == 8 and [n for n, _ in sampled] == [64, 64, 7]
    expected = sum(n * v for n, v in sampled) / sum(n for n, _ in sampled)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert logged["train/penalty"] == pytest.approx(expected, rel=1e-6)
    assert logged["train/penalty/l1_epoch"] == pytest.approx(expected, rel=1e-6)
    assert logged["train/objective"] == pytest.approx(logged["train/loss"] + expected, rel=1e-6)
    with (Path(trainer.log_dir) / "metrics.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row.get("train/penalty/l1_step")]
    assert steps == [2, 5]


@pytest.mark.parametrize(
    ("hand_written", "message"), [(1e-3, "regularized twice"), (-1e-3, "SUBTRACTS a norm of net.linear.weight")]
)
def test_hand_written_penalty_beside_the_callback_is_warned_about(
    hand_written: float, message: str, tmp_path: Path
) -> None:
    """A norm of the weights written into the loss next to the callback's penalty (twice), or subtracted: warned
    about by name, once."""
    dm = _data()
    module = PlainLogistic(dm.input_shape[0], hand_written=hand_written)
    with pytest.warns(LightregWarning, match=message) as record:
        _trainer(tmp_path, [RegularizationCallback(L1(), LAMBDA)], max_epochs=1).fit(module, datamodule=dm)
    assert sum(message in str(w.message) for w in record) == 1


@pytest.mark.slow
def test_plain_lightning_logs_the_cli_figures(tmp_path: Path) -> None:
    """The same data, initial weights, optimizer and λ: a user's own module in a plain Trainer logs the penalty and
    sparsity figures the CLI writes to ``metrics.json``."""
    from lightreg.cli.job import run
    from lightreg.cli.pipeline import build_data, build_model

    overrides = ("data=breast_cancer", "+penalty=l1", f"lambda={LAMBDA}", "trainer.max_epochs=3", "num_threads=1")
    cfg = composed(tmp_path / "cli", *overrides)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # what the pipeline does before building
    dm = build_data(cfg)
    start = build_model(cfg, dm).net.state_dict()
    run(composed(tmp_path / "cli", *overrides))
    cli = run_folder.read_metrics(tmp_path / "cli")

    module = PlainLogistic(dm.input_shape[0])
    module.net.load_state_dict(start)
    trainer = _trainer(tmp_path / "plain", [RegularizationCallback(L1(), LAMBDA), SparsityMonitor()])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI's num_threads=1
    try:
        trainer.fit(module, datamodule=dm)
    finally:
        torch.set_num_threads(threads)
    plain = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for key in ("train/penalty", "train/objective", "train/loss", "val/loss", "sparsity/total", "sparsity/l1"):
        assert plain[key] == pytest.approx(cli[key], rel=1e-4, abs=1e-6), key
    assert plain["sparsity/net.linear.weight"] == pytest.approx(cli["sparsity/net.linear.weight"])
