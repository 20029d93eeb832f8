"""The run guard names the right epoch (counted from 1, as the console's ``Epoch N/M`` lines): where a NaN appeared,
and where a validation loss worse than the intercept-only model's began the streak that lasted to the end. Under DDP
a run logs without Lightning's sync_dist advice, and what runs in one process only is refused once, before any
process starts."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from lightreg.cli.checks import check_config, trainer_processes
from lightreg.cli.guard import NULL_MARGIN, Diverged, RunGuard
from lightreg.errors import LightregWarning, UserError
from lightreg.run_folder import read_metrics

from conftest import describe
from helpers import composed, run_train

QUIET = ["logger=none", "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]


def _trainer(epoch: int, val_loss: float) -> SimpleNamespace:
    optimizer = SimpleNamespace(param_groups=[{"lr": 0.5}])
    return SimpleNamespace(
        current_epoch=epoch, sanity_checking=False, optimizers=[optimizer], callback_metrics={"val/loss": val_loss}
    )


def _validate(guard: RunGuard, losses: list[float]) -> list[str]:
    """Validations at epochs 0, 1, ... (Lightning's 0-based ``current_epoch``) with these ``val/loss``, then the end
    of training: the guard's warnings."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for epoch, loss in enumerate(losses):
            guard.on_validation_end(_trainer(epoch, loss), None)
        guard.on_train_end(_trainer(len(losses), losses[-1]), SimpleNamespace(task="multiclass"))
    return [str(w.message) for w in seen if issubclass(w.category, LightregWarning)]


def test_the_warning_names_the_epoch_that_began_the_last_streak_above_the_floor() -> None:
    guard = RunGuard()
    guard._null_loss = 2.0
    above, below = 2.0 * NULL_MARGIN + 1, 1.0
    (message,) = _validate(guard, [above, below, below, above, above + 2, above])
    assert "after epoch 6 is worse than the intercept-only model's 2 " in message
    assert f"since epoch 4 (val/loss {above:.4g})" in message and "optimizer.lr (now 0.5)" in message
    assert _validate(guard, [above, above, below]) == []  # ended below the floor: nothing to say


def test_the_divergence_names_the_epoch_the_nan_appeared_in() -> None:
    guard = RunGuard()
    guard.on_train_batch_end(_trainer(0, 0.5), None, {"loss": torch.tensor(float("nan"))}, None, 0)
    with pytest.raises(Diverged, match=r"training diverged in epoch 1: train/loss is NaN"):
        guard.on_validation_end(_trainer(0, 0.5), None)


@pytest.mark.slow
def test_lr_100_on_digits_warns_from_the_first_epoch(tmp_path: Path) -> None:
    proc = run_train("optimizer.lr=100", "trainer.max_epochs=3", *QUIET, cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    (line,) = [line for line in proc.stderr.splitlines() if "intercept-only" in line]
    assert "after epoch 3 is worse than the intercept-only model's 2.30" in line
    assert re.search(r"since epoch 1 \(val/loss \d+(\.\d+)?\)", line) and "optimizer.lr (now 100)" in line


@pytest.mark.slow
def test_divergence_names_the_epoch_after_the_last_finite_epoch_line(tmp_path: Path) -> None:
    """diabetes at lr=1e4: epoch 1 ends finite (its line is printed), epoch 2 overflows; the error names epoch 2."""
    proc = run_train("data=diabetes", "optimizer.lr=1e4", *QUIET, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    printed = re.findall(r"^Epoch\s+(\d+)/", proc.stdout, flags=re.MULTILINE)
    (error,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert error.startswith(f"lightreg: error: training diverged in epoch {len(printed) + 1}:"), describe(proc)
    assert printed == [str(i + 1) for i in range(len(printed))]


@pytest.mark.parametrize(
    ("trainer", "processes"),
    [
        ({"devices": 2, "strategy": "ddp", "accelerator": "cpu"}, 2),
        ({"devices": "2", "num_nodes": 2}, 4),
        ({"devices": [0, 1]}, 2),
        ({"devices": "0,1,"}, 2),
        ({"devices": "auto", "accelerator": "cpu"}, 1),
        ({"devices": 1, "strategy": "ddp"}, 1),
    ],
)
def test_processes_as_lightning_counts_them(trainer: dict, processes: int) -> None:
    assert trainer_processes(OmegaConf.create(trainer)) == processes


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["+penalty=l1", "lambda=0.001", "penalty.mode=exact"], "penalty.mode=exact needs the full-batch finish"),
        (
            ["+penalty@extra_penalties.first=l1", "lambda=0.001", "extra_penalties.first.mode=exact"],
            "extra_penalties.first.mode=exact",
        ),
        (["+penalty=l1", "+path=geometric"], "path.finish=auto (every λ of this linear model"),
    ],
)
def test_one_process_finishes_are_refused_by_the_config_check(tmp_path: Path, overrides: list, named: str) -> None:
    for trainer in (["trainer=ddp_cpu"], ["trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu"]):
        with pytest.raises(UserError, match=re.escape(named)) as error:
            check_config(composed(tmp_path, *trainer, *overrides))
        assert "this run starts 2" in str(error.value) and "trainer.devices=1" in str(error.value)
    check_config(composed(tmp_path, *overrides))  # one process: fine
    check_config(composed(tmp_path, "trainer=ddp_cpu", "+penalty=l1", "+path=geometric", "path.finish=none"))


def test_exact_under_ddp_is_one_line_before_any_process_starts(tmp_path: Path) -> None:
    proc = run_train("trainer=ddp_cpu", "+penalty=l1", "lambda=0.001", "penalty.mode=exact", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, describe(proc)
    assert lines[0].startswith("lightreg: error: penalty.mode=exact needs the full-batch finish")
    assert not list(tmp_path.rglob("metrics.json")), "refused before training"


@pytest.mark.slow
def test_ddp_on_cpu_logs_without_sync_dist_advice(tmp_path: Path) -> None:
    """Two CPU processes, one epoch, an L1 penalty and the sparsity monitor: every epoch figure is logged with
    sync_dist (the callbacks' included), so Lightning gives no advice, and metrics.json holds the synced figures."""
    proc = run_train(
        "trainer=ddp_cpu", "trainer.max_epochs=1", "+penalty=l1", "lambda=0.001", "hydra.run.dir=run", *QUIET,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    assert "sync_dist" not in proc.stderr, describe(proc)
    metrics = read_metrics(tmp_path / "run")
    assert {"val/acc", "val/balanced_acc", "sparsity/l1", "sparsity/total", "features/selected"} <= set(metrics)
    assert metrics["val/acc"] > 0.8


def test_a_nan_in_the_modules_epoch_sums_stops_the_run_without_a_per_step_check() -> None:
    """A LightregModule sums each step's losses itself: the guard skips its per-step flag and reads the sums."""
    guard = RunGuard()
    module = SimpleNamespace(epoch_samples=64, training_losses_finite=lambda: False)
    guard.on_train_batch_end(_trainer(2, 0.5), module, {"loss": torch.tensor(1.0)}, None, 0)
    assert guard._bad is None
    with pytest.raises(Diverged, match=r"training diverged in epoch 3: train/loss is NaN"):
        guard.on_validation_end(_trainer(2, 0.5), module)
    guard.on_validation_end(_trainer(2, 0.5), SimpleNamespace(epoch_samples=64, training_losses_finite=lambda: True))
