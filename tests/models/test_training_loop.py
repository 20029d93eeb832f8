"""The thin training loop: per-step figures only on logged steps, exact epoch figures, last.ckpt at an interval and
at the end, one intra-op thread for small CPU runs (restored)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from lightreg.errors import UserError
from lightreg.models.logging_steps import logging_step, logs_this_step
from lightreg.solvers.threads import SMALL_MODEL, training_threads

from helpers import read_metrics, run_cli


def test_no_logger_means_no_step_logs() -> None:
    assert not logs_this_step(None)
    assert not logs_this_step(SimpleNamespace(loggers=[]))


class _LogRule(L.Callback):
    """Records lightreg's logging-step answers beside Lightning's own ``should_update_logs``."""

    def __init__(self) -> None:
        self.now: list[tuple[bool, bool]] = []
        self.ahead: list[bool] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        self.now.append((logging_step(trainer), trainer._logger_connector.should_update_logs))

    def on_before_optimizer_step(self, trainer: L.Trainer, *args: object) -> None:
        self.ahead.append(logging_step(trainer, ahead=1))


@pytest.mark.parametrize("every", [1, 3, 4])
def test_logging_step_is_lightnings_rule_now_and_one_batch_ahead(every: int) -> None:
    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).square().mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    rule = _LogRule()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(10, 2)), batch_size=2)
    L.Trainer(
        max_epochs=2,
        log_every_n_steps=every,
        callbacks=[rule],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(Tiny(), data)
    ours, lightnings = zip(*rule.now)
    assert list(ours) == list(lightnings) and any(ours) and (every == 1 or not all(ours))
    assert rule.ahead[:-1] == list(lightnings[1:])  # asked before a step: the next batch's answer


def test_training_threads_auto_and_restore() -> None:
    before = torch.get_num_threads()
    with training_threads("auto", nn.Linear(64, 10), on_cpu=True):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    big = nn.Linear(SMALL_MODEL, 2)  # 2·SMALL_MODEL + 2 parameters: torch's setting stays
    with training_threads("auto", big, on_cpu=True):
        assert torch.get_num_threads() == before
    with training_threads("auto", nn.Linear(4, 2), on_cpu=False):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), training_threads(1, nn.Linear(4, 2), on_cpu=True):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before
    with pytest.raises(UserError, match=r"num_threads must be .* got 0"), training_threads(0, nn.Linear(4, 2), True):
        pass


@pytest.mark.slow
def test_step_figures_on_logged_steps_and_last_checkpoint_at_the_end(tmp_path: Path) -> None:
    """7 epochs of 23 steps, log_every_n_steps=10: per-step rows only at steps 9, 19, ...; epoch figures exact;
    last.ckpt (every 5 epochs) also written at the end, so it holds epoch 7's weights."""
    run = tmp_path / "run"
    run_cli(
        run,
        "+penalty=l1",
        "lambda=0.001",
        "trainer.max_epochs=7",
        "trainer.log_every_n_steps=10",
        "logger=csv",
        "model.print_epochs=false",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
    )
    metrics = read_metrics(run)
    with (run / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    step_rows = [int(r["step"]) for r in rows if r.get("train/loss_step")]
    assert step_rows == list(range(9, metrics["global_step"], 10))
    assert all(r.get("train/penalty_step") for r in rows if r.get("train/loss_step"))
    epoch_rows = [r for r in rows if r.get("train/loss")]
    assert len(epoch_rows) == 7
    last = epoch_rows[-1]
    objective = float(last["train/loss"]) + float(last["train/penalty"])
    assert float(last["train/objective"]) == pytest.approx(objective, rel=1e-5)
    assert metrics["train/loss"] == pytest.approx(float(last["train/loss"]), rel=1e-6)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # written after the 7th epoch (at train end the epoch counter already reads 7; resuming continues from there,
    # tests/cli/test_cli_penalty.py::test_resume_from_last_checkpoint_continues_exactly)
    assert ckpt["global_step"] == metrics["global_step"] and ckpt["epoch"] == 7


@pytest.mark.slow
def test_bad_num_threads_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "run", "num_threads=0", "trainer.max_epochs=1", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "lightreg: error: num_threads must be a positive integer, 'auto' or null (torch's default), got 0"
    )
    assert "Traceback" not in proc.stderr
