"""The end-of-multirun summary: rows from job folders, sorting, CSV, the console table, the λ plot, failed jobs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console

from lightreg.sweep import summary

from conftest import describe


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    folder = sweep / str(num)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    common = ["+penalty=l1", "trainer.max_epochs=3"]
    _job(
        tmp_path,
        0,
        [*common, "lambda=0.0001", "optimizer=sgd"],
        {"status": "completed", "val/loss": 0.30, "val/acc": 0.9, "sparsity/nnz": 60},
    )
    _job(
        tmp_path,
        1,
        [*common, "lambda=0.01", "optimizer=sgd"],
        {"status": "completed", "val/loss": 0.20, "val/acc": 0.95, "sparsity/nnz": 20},
    )
    _job(tmp_path, 2, [*common, "lambda=0.1", "optimizer=adam"], None)  # failed before training
    _job(
        tmp_path,
        10,
        [*common, "lambda=0.001", "optimizer=adam"],
        {"status": "completed", "val/loss": 0.25, "val/acc": 0.93, "sparsity/nnz": 40},
    )
    (tmp_path / "multirun.yaml").write_text("{}\n")  # not a job
    return tmp_path


def test_rows_in_job_order_with_failed_jobs(sweep: Path) -> None:
    rows = summary.collect(sweep)
    assert [r.job for r in rows] == ["0", "1", "2", "10"]
    assert [r.status for r in rows] == ["completed", "completed", "failed", "completed"]
    assert summary.swept_keys(rows) == ["lambda", "optimizer"]
    assert summary.common_overrides(rows) == ["+penalty=l1", "trainer.max_epochs=3"]
    assert summary.val_metric(rows) == "val/acc"


@pytest.mark.parametrize(
    ("monitor", "mode", "order"),
    [("val/loss", "min", ["1", "10", "0", "2"]), ("sparsity/nnz", "max", ["0", "10", "1", "2"])],
)
def test_sorted_by_monitor_failed_last(sweep: Path, monitor: str, mode: str, order: list[str]) -> None:
    assert [r.job for r in summary.sort_rows(summary.collect(sweep), monitor, mode)] == order


def test_csv_has_every_job_and_figure(sweep: Path, tmp_path: Path) -> None:
    rows = summary.collect(sweep)
    path = summary.write_csv(summary.sort_rows(rows, "val/loss", "min"), tmp_path / "summary.csv")
    lines = list(csv.DictReader(path.open()))
    assert [line["job"] for line in lines] == ["1", "10", "0", "2"]
    assert lines[0]["lambda"] == "0.01" and float(lines[0]["val/loss"]) == 0.20
    assert lines[3]["status"] == "failed" and lines[3]["val/loss"] == ""
    assert lines[3]["overrides"] == "+penalty=l1 trainer.max_epochs=3 lambda=0.1 optimizer=adam"


def test_console_table_fits_80_columns(sweep: Path) -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(summary.rich_table(summary.collect(sweep), "val/loss", "min", title="sweep"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text, text  # nothing truncated
    body = [line for line in text.splitlines() if line.startswith("│")]
    assert body[0].split("│")[1].strip() == "1" and "failed" in body[-1]


def test_lambda_plot_one_line_per_other_setting(sweep: Path) -> None:
    fig = summary.lambda_figure(summary.collect(sweep))
    assert fig is not None
    metric_ax, nnz_ax = fig.axes
    assert metric_ax.get_xscale() == "log"
    assert len(metric_ax.lines) == 2  # optimizer=sgd and optimizer=adam (the failed adam job is left out)
    assert sorted(nnz_ax.lines[0].get_xdata()) == [0.0001, 0.01]


def test_no_lambda_plot_without_a_lambda_sweep(tmp_path: Path) -> None:
    _job(tmp_path, 0, ["seed=0"], {"status": "completed", "val/loss": 0.3})
    _job(tmp_path, 1, ["seed=1"], {"status": "completed", "val/loss": 0.2})
    assert summary.lambda_figure(summary.collect(tmp_path)) is None


@pytest.mark.slow  # a four-job sweep through the CLI
def test_cli_sweep_ends_with_a_summary_and_survives_a_failed_job(cli, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = cli(
        "-m",
        "+penalty=l1",
        "lambda=1e-4,-1,1e-1",
        "data=breast_cancer",
        "trainer.max_epochs=3",
        "logger=none",
        "callbacks=none",
        "model.print_epochs=false",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 2, describe(proc)  # a job failed on bad input: not green
    assert "lightreg: error: 1 of 3 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    lines = list(csv.DictReader((sweep / "summary.csv").open()))
    assert lines[-1]["status"] == "failed"  # failed jobs last
    by_lambda = {line["lambda"]: line for line in lines}
    assert by_lambda["-1"]["status"] == "failed" and "lambda must be" in by_lambda["-1"]["error"]
    done = [line for line in lines if line["status"] == "completed"]
    assert len(done) == 2
    assert [float(d["val/loss"]) for d in done] == sorted(float(d["val/loss"]) for d in done)
    for d in done:  # the figures are the job's own metrics.json
        job = json.loads((sweep / d["job"] / "metrics.json").read_text())
        assert float(d["val/loss"]) == job["val/loss"] and float(d["sparsity/nnz"]) == job["sparsity/nnz"]
    assert float(by_lambda["0.1"]["sparsity/nnz"]) < float(by_lambda["0.0001"]["sparsity/nnz"])
    assert (sweep / "summary.png").stat().st_size > 10_000
    assert "val/loss↓" in proc.stdout and "failed" in proc.stdout
