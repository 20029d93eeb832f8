"""A run folder whose ``metrics.json`` says it did not complete: ``lightreg predict``/``export`` and
``python -m lightreg.compact`` refuse a diverged run's named checkpoints in one line (exit 2) and warn by name for an interrupted or failed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightreg import run_folder
from lightreg.cli.commands import main
from lightreg.cli.trained import check_status
from lightreg.compact.__main__ import main as compact_main
from lightreg.errors import LightregWarning, UserError


def _run(tmp_path: Path, status: str) -> Path:
    run = tmp_path / "run"
    (run / run_folder.CHECKPOINTS).mkdir(parents=True)
    (run / run_folder.CHECKPOINTS / "best.ckpt").write_bytes(b"")
    (run / run_folder.METRICS_FILE).write_text(json.dumps({"status": status}))
    return run


@pytest.mark.parametrize("command", ["predict", "export", "compact"])
def test_a_diverged_run_is_refused_in_one_line(tmp_path: Path, capsys, command: str) -> None:
    run = _run(tmp_path, "diverged")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    if command == "compact":
        code = compact_main([str(run)])
    else:
        args = [str(tmp_path / "x.csv")] if command == "predict" else ["--format", "onnx"]
        code = main([command, str(run), *args, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "status diverged" in err and "--checkpoint PATH" in err
    assert not (tmp_path / "out").exists() and not (run / run_folder.COMPACT_MODEL).exists()


def test_an_explicit_checkpoint_of_a_diverged_run_is_the_users_choice(tmp_path: Path) -> None:
    run = _run(tmp_path, "diverged")
    path = run / run_folder.CHECKPOINTS / "best.ckpt"
    with pytest.warns(LightregWarning, match="status diverged"):
        check_status(run, str(path), path)


@pytest.mark.parametrize("status", ["interrupted", "failed"])
def test_an_unfinished_run_is_warned_about_by_name(tmp_path: Path, status: str) -> None:
    run = _run(tmp_path, status)
    with pytest.warns(LightregWarning, match=f"status {status}.*best.ckpt"):
        check_status(run, None, run / run_folder.CHECKPOINTS / "best.ckpt")


def test_a_completed_run_or_one_without_metrics_passes_quietly(tmp_path: Path, recwarn) -> None:
    run = _run(tmp_path, "completed")
    check_status(run, "best", run / run_folder.CHECKPOINTS / "best.ckpt")
    (run / run_folder.METRICS_FILE).unlink()
    check_status(run, "best", run / run_folder.CHECKPOINTS / "best.ckpt")
    assert not [w for w in recwarn if issubclass(w.category, LightregWarning)]
    with pytest.raises(UserError):  # and the refusal is a UserError, not a crash
        check_status(_run(tmp_path / "d", "diverged"), "last", run)
