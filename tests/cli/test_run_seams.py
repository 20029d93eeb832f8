"""Where a run meets what came before it, through the real CLI: float16 autocast asked for on the CPU, a run folder
that already holds a run, a resume under another optimizer setting."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lightreg.cli.rerun import check_run_folder
from lightreg.errors import UserError
from lightreg.run_folder import read_metrics, write_metrics

from conftest import describe, run_train

FAST = ["logger=none", "~callbacks.progress_bar", "data=wine"]


@pytest.mark.parametrize("precision", ["16-mixed", "16"])
def test_float16_autocast_on_the_cpu_is_refused_with_the_fix(precision: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(f"trainer.precision={precision}", "trainer.accelerator=cpu", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    [line] = proc.stderr.strip().splitlines()
    assert f"trainer.precision={precision}" in line and "trainer.precision=bf16-mixed" in line, line
    assert not (run / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="accelerator auto picks the GPU here")
def test_float16_autocast_with_auto_accelerator_and_no_gpu_is_refused(tmp_path: Path) -> None:
    proc = run_train("trainer.precision=16-mixed", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "bf16-mixed" in proc.stderr, describe(proc)


@pytest.mark.slow
def test_bf16_mixed_on_the_cpu_still_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["trainer.precision=bf16-mixed", "trainer.accelerator=cpu", "trainer.max_epochs=1", *FAST]
    proc = run_train(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)


# A run folder that already holds a run


def _first_run(tmp_path: Path, *extra: str) -> Path:
    run = tmp_path / "run"
    proc = run_train("trainer.max_epochs=1", *FAST, *extra, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    return run


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_second_run_into_a_finished_folder_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    run = _first_run(tmp_path)
    before = _snapshot(run)
    proc = run_train("trainer.max_epochs=2", *FAST, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    [line] = proc.stderr.strip().splitlines()
    assert "already holds a run" in line and "overwrite=true" in line and f"ckpt_path={run}" in line, line
    assert _snapshot(run) == before, "the refused run changed the finished one (its .hydra, logs or checkpoints)"


@pytest.mark.slow
def test_overwrite_true_replaces_the_previous_run(tmp_path: Path) -> None:
    run = _first_run(tmp_path, "logger=csv")
    assert (run / "csv" / "metrics.csv").is_file()
    proc = run_train("trainer.max_epochs=2", *FAST, "overwrite=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "removed the previous run" in proc.stdout
    assert not (run / "csv").exists(), "the previous run's logs stayed beside the new run's"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert read_metrics(run)["epochs"] == 2
    assert "max_epochs: 2" in (run / ".hydra" / "config.yaml").read_text()
    assert (run / "train.log").read_text().count("Epoch 1/") == 1, "train.log holds the previous run's lines"


@pytest.mark.slow
def test_a_resume_from_the_folders_own_checkpoint_continues_in_place(tmp_path: Path) -> None:
    run = _first_run(tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    proc = run_train("trainer.max_epochs=2", *FAST, f"ckpt_path={ckpt}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert read_metrics(run)["epochs"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    refused = run_train(
        "trainer.max_epochs=3", *FAST, f"ckpt_path={ckpt}", "overwrite=true", f"hydra.run.dir={run}", cwd=tmp_path
    )
    assert refused.returncode == 2 and "would delete ckpt_path" in refused.stderr, describe(refused)


@pytest.mark.slow
def test_a_sweep_into_the_same_folder_is_not_checked(tmp_path: Path) -> None:
    args = ["-m", "seed=0", "trainer.max_epochs=1", "logger=none", "callbacks=none", "data=wine"]
    for _ in range(2):
        proc = run_train(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
        assert proc.returncode == 0, describe(proc)


def test_check_run_folder_reads_status_and_checkpoints(tmp_path: Path) -> None:
    write_metrics(tmp_path, {"status": "failed"})
    assert check_run_folder(tmp_path, overwrite=False, ckpt_path=None) == []  # a failed run without checkpoints
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(UserError, match=r"checkpoints/last.ckpt\)"):
        check_run_folder(tmp_path, overwrite=False, ckpt_path=None)
    with pytest.raises(UserError, match="overwrite must be true or false"):
        check_run_folder(tmp_path, overwrite="yes", ckpt_path=None)  # type: ignore[arg-type]
    (tmp_path / "notes.txt").write_text("mine")
    assert check_run_folder(tmp_path, overwrite=True, ckpt_path=None) == ["checkpoints", "metrics.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"], "only the run's own files are removed"


# A resume under another optimizer setting

LR_MONITOR = [
    "+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor",
    "+callbacks.lr.logging_interval=epoch",
]


@pytest.mark.slow
def test_a_resume_with_another_lr_is_refused_naming_both_values(tmp_path: Path) -> None:
    ckpt = _first_run(tmp_path) / "checkpoints" / "last.ckpt"
    second = tmp_path / "second"
    args = ["trainer.max_epochs=2", *FAST, f"ckpt_path={ckpt}", f"hydra.run.dir={second}"]
    proc = run_train(*args, "optimizer.lr=0.01", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    [line] = proc.stderr.strip().splitlines()
    assert "optimizer.lr=0.1" in line and "optimizer.lr=0.01" in line and "resume.allow_changes=true" in line, line
    assert not (second / "metrics.json").exists()
    other = run_train(*args, "optimizer=adam", cwd=tmp_path)
    assert other.returncode == 2 and "trained with SGD, this run asks for Adam" in other.stderr, describe(other)


@pytest.mark.slow
def test_allow_changes_applies_the_new_optimizer_settings_after_the_restore(tmp_path: Path) -> None:
    ckpt = _first_run(tmp_path) / "checkpoints" / "last.ckpt"
    second = tmp_path / "second"
    new = ["optimizer.lr=0.01", "optimizer.momentum=0.5", "resume.allow_changes=true"]
    args = ["trainer.max_epochs=3", *FAST, "logger=csv", *LR_MONITOR, *new, f"ckpt_path={ckpt}"]
    proc = run_train(*args, f"hydra.run.dir={second}", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "optimizer.lr 0.1 -> 0.01, optimizer.momentum 0.9 -> 0.5" in proc.stderr, describe(proc)
    with (second / "csv" / "metrics.csv").open() as f:
        rates = [float(row["lr-SGD"]) for row in csv.DictReader(f) if row.get("lr-SGD")]
    assert rates == [0.01, 0.01], "the resumed epochs ran at the checkpoint's lr"
    [group] = torch.load(second / "checkpoints" / "last.ckpt", weights_only=False)["optimizer_states"][0][
        "param_groups"
    ]
    assert (group["lr"], group["momentum"]) == (0.01, 0.5)


@pytest.mark.slow
def test_a_resume_with_another_scheduler_setting_is_refused(tmp_path: Path) -> None:
    step = [
        "+model.scheduler._target_=torch.optim.lr_scheduler.StepLR",
        "+model.scheduler._partial_=true",
        "+model.scheduler.step_size=1",
    ]
    ckpt = _first_run(tmp_path, *step, "+model.scheduler.gamma=0.5") / "checkpoints" / "last.ckpt"
    args = ["trainer.max_epochs=2", *FAST, *step, "+model.scheduler.gamma=0.1", f"ckpt_path={ckpt}"]
    proc = run_train(*args, f"hydra.run.dir={tmp_path / 'second'}", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert "model.scheduler.gamma=0.5" in proc.stderr and "model.scheduler.gamma=0.1" in proc.stderr, describe(proc)
