"""Bad input through the CLI: a non-zero exit, one clear line naming the bad value, no Python traceback.

Every case is a separate ``python -m train`` process; they are started together (a few at a time) when the
first test of this module runs, because each one spends its seconds importing torch and Lightning.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from conftest import describe, run_train, write_csv
from helpers import InThisThread

pytestmark = pytest.mark.slow  # every case is a `python -m train` process

QUICK = ["logger=none", "callbacks=none", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
# The earlier run that the resume cases point at (2 epochs, L1 prox); no bad run may change a byte of it.
EARLIER = ["+penalty=l1", "lambda=0.001", "logger=none", "trainer.max_epochs=2", "~callbacks.progress_bar"]


def _table(root: Path, ckpt: Path) -> dict[str, tuple[list[str], list[str]]]:
    """The table of bad inputs, several values of each kind: name -> (CLI arguments, fragments the one stderr line
    must contain). Writes the files the cases read into ``root``."""
    rows = [(i, i % 3, i % 2) for i in range(20)]
    missing_target = write_csv(root / "missing_target.csv", ["a", "b", "label"], [*rows[:5], (5, 2, ""), *rows[6:]])
    missing_feature = write_csv(root / "missing_feature.csv", ["a", "b", "label"], [*rows[:3], (3, "NA", 1), *rows[4:]])
    one_class = write_csv(root / "one_class.csv", ["a", "b", "label"], [(i, i % 3, 1) for i in range(20)])
    one_string_class = write_csv(root / "one_string.csv", ["a", "b", "label"], [(i, i % 3, "yes") for i in range(20)])
    text_regression = write_csv(root / "text_regression.csv", ["a", "b", "y"], [(i, i % 3, "high") for i in range(20)])
    good = write_csv(root / "good.csv", ["id", "a", "b", "label"], [(100 + i, *r) for i, r in enumerate(rows)])
    not_ckpt = root / "notes.ckpt"
    not_ckpt.write_text("not a checkpoint\n")
    empty_ckpt = root / "empty.ckpt"
    empty_ckpt.write_bytes(b"")
    json_ckpt = root / "metrics.ckpt"
    json_ckpt.write_text(json.dumps({"epoch": 1}))
    csv = ["data=csv", *QUICK]
    resume = [f"ckpt_path={ckpt}", "logger=none", "~callbacks.progress_bar"]
    return {
        # trainer.max_epochs
        "max_epochs_0": (["trainer.max_epochs=0", "logger=none", "callbacks=none"], ["max_epochs=0"]),
        "max_epochs_text": (["trainer.max_epochs=ten", "logger=none", "callbacks=none"], ["max_epochs", "'ten'"]),
        # optimizer arguments, before Lightning starts
        "lr_-1": (["optimizer.lr=-1", *QUICK], ["optimizer.lr", "-1"]),
        "lr_0": (["optimizer.lr=0", *QUICK], ["optimizer.lr", "got 0"]),
        "adam_lr_-1e-3": (["optimizer=adam", "optimizer.lr=-1e-3", *QUICK], ["optimizer.lr", "-0.001"]),
        "lr_nan": (["optimizer.lr=nan", *QUICK], ["optimizer.lr", "nan"]),
        "weight_decay_-0.1": (["optimizer.weight_decay=-0.1", *QUICK], ["optimizer.weight_decay", "-0.1"]),
        "momentum_-0.5": (["optimizer.momentum=-0.5", *QUICK], ["optimizer.momentum", "-0.5"]),
        "rmsprop_momentum_-1": (["optimizer=rmsprop", "optimizer.momentum=-1", *QUICK], ["optimizer.momentum", "-1"]),
        "adam_eps_-1e-8": (["optimizer=adam", "optimizer.eps=-1e-8", *QUICK], ["optimizer.eps", "-1e-08"]),
        "adagrad_eps_-1": (["optimizer=adagrad", "optimizer.eps=-1", *QUICK], ["optimizer.eps", "-1"]),
        "betas_1.0": (["optimizer=adam", "optimizer.betas=[0.9,1.0]", *QUICK], ["optimizer.betas", "1.0"]),
        "betas_-0.1": (["optimizer=adamw", "optimizer.betas=[-0.1,0.999]", *QUICK], ["optimizer.betas", "-0.1"]),
        "betas_three": (["optimizer=adam", "optimizer.betas=[0.9,0.99,0.999]", *QUICK], ["optimizer.betas"]),
        "optimizer_unknown_arg": (["+optimizer.foo=1", *QUICK], ["optimizer", "foo"]),
        "progress_bar_off": (
            ["trainer.enable_progress_bar=false", "trainer.max_epochs=1"],
            ["enable_progress_bar", "~callbacks.progress_bar"],
        ),
        # mandatory CSV settings and penalty options without a penalty
        "csv_no_target": ([*csv, f"data.train_path={good}"], ["data.target", "data.target=label"]),
        "csv_nothing": (csv, ["data.target", "data.train_path"]),
        "penalty_mode_only": (["+penalty.mode=grad", *QUICK], ["penalty.mode", "+penalty=l1"]),
        "penalty_include_only": (["+penalty.include=[net.linear.weight]", *QUICK], ["penalty.include", "+penalty="]),
        # CSV contents
        "csv_missing_target": (
            [*csv, f"data.train_path={missing_target}", "data.target=label"],
            ["missing", "line 7", "label", "data.dropna=true"],
        ),
        "csv_missing_feature": (
            [*csv, f"data.train_path={missing_feature}", "data.target=label"],
            ["missing", "line 5", "b", "data.dropna=true"],
        ),
        "csv_one_class": ([*csv, f"data.train_path={one_class}", "data.target=label"], ["single class", "1"]),
        "csv_one_string_class": (
            [*csv, f"data.train_path={one_string_class}", "data.target=label"],
            ["single class", "'yes'"],
        ),
        "csv_text_regression": (
            [*csv, f"data.train_path={text_regression}", "data.target=y", "data.task=regression"],
            ["'high'", "regression"],
        ),
        "csv_drop_unknown": (
            [*csv, f"data.train_path={good}", "data.target=label", "data.drop=[ID]"],
            ["data.drop", "ID"],
        ),
        "csv_drop_target": (
            [*csv, f"data.train_path={good}", "data.target=label", "data.drop=[label]"],
            ["data.drop", "'label'"],
        ),
        "csv_bad_delimiter": (
            [*csv, f"data.train_path={good}", "data.target=label", "data.delimiter=';'"],
            ["'label'", "delimiter"],
        ),
        # checkpoints
        "ckpt_text": ([f"ckpt_path={not_ckpt}", *QUICK], ["notes.ckpt", "not a checkpoint"]),
        "ckpt_empty": ([f"ckpt_path={empty_ckpt}", *QUICK], ["empty.ckpt", "not a checkpoint"]),
        "ckpt_json": ([f"ckpt_path={json_ckpt}", *QUICK], ["metrics.ckpt", "not a"]),
        "ckpt_dir": ([f"ckpt_path={root}", *QUICK], ["ckpt_path", "not a file"]),
        "resume_fewer_epochs": (
            [*resume, "+penalty=l1", "lambda=0.001", "trainer.max_epochs=1"],
            ["max_epochs=1", "2 epochs"],
        ),
        "resume_other_penalty": (
            [*resume, "+penalty=l2", "lambda=0.001", "trainer.max_epochs=4"],
            ["L1()", "L2()", "resume.allow_changes=true"],
        ),
        "resume_other_strength": (
            [*resume, "+penalty=l1", "lambda=0.01", "trainer.max_epochs=4"],
            ["strength=0.001", "strength=0.01"],
        ),
        "resume_other_mode": (
            [*resume, "+penalty=l1", "lambda=0.001", "penalty.mode=grad", "trainer.max_epochs=4"],
            ["mode=prox", "mode=grad"],
        ),
        "resume_no_penalty": ([*resume, "trainer.max_epochs=4"], ["L1()", "no penalty"]),
    }


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` (relative path -> sha256 and mtime): any change shows."""
    return {
        str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mtime_ns}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cases(root: Path) -> dict[str, list[str]]:
    """Name -> CLI arguments; writes the CSV files the cases read into ``root``."""
    good = [(i, i % 3, i % 2) for i in range(20)]
    columns = write_csv(root / "columns.csv", ["a", "b", "label"], good)
    cells = list(good)
    cells[7] = (7, "seven", 1)  # file line 9 (the header is line 1)
    non_numeric = write_csv(root / "non_numeric.csv", ["a", "b", "label"], cells)
    empty = write_csv(root / "empty.csv", ["a", "b", "label"], [])
    cases = {
        "unknown_model": ["model=nope", *QUICK],
        "missing_csv": ["data=csv", f"data.train_path={root / 'absent.csv'}", "data.target=y", *QUICK],
        "missing_target": ["data=csv", f"data.train_path={columns}", "data.target=target", *QUICK],
        "non_numeric": ["data=csv", f"data.train_path={non_numeric}", "data.target=label", *QUICK],
        "empty_csv": ["data=csv", f"data.train_path={empty}", "data.target=label", *QUICK],
        "batch_size_0": ["data.batch_size=0", *QUICK],
        "batch_size_-3": ["data.batch_size=-3", *QUICK],
        "max_epochs_-5": ["logger=none", "callbacks=none", "trainer.max_epochs=-5"],
        "lambda_-0.1": ["lambda=-0.1", *QUICK],
        "lambda_nan": ["lambda=nan", *QUICK],
        "missing_ckpt": [f"ckpt_path={root / 'absent.ckpt'}", *QUICK],
    }
    return {name: [*args, f"hydra.run.dir={root / name}"] for name, args in cases.items()}


class BadRuns:
    """The cases' CLI runs, started together; ``runs(name)`` waits for one and returns its result."""

    def __init__(self, root: Path, pool: InThisThread) -> None:
        self.root = root
        self.futures: dict[str, Future] = {
            name: pool.submit(run_train, *args, cwd=root) for name, args in _cases(root).items()
        }

    def __call__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadRuns]:
    with InThisThread() as pool:
        yield BadRuns(tmp_path_factory.mktemp("bad_input"), pool)


def _check(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in out, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, describe(proc)
    for fragment in fragments:
        assert any(fragment in line for line in lines), f"no line names {fragment!r}\n{describe(proc)}"


def _lightreg_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Our own errors: exactly one ``lightreg: error: ...`` line on stderr, naming the bad value; no results."""
    _check(proc, *fragments)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lightreg: error:")]
    assert len(errors) == 1, describe(proc)
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    assert proc.returncode == 2


def test_unknown_model(bad_run) -> None:
    proc = bad_run("unknown_model")
    _check(proc, "model/nope")
    assert "logistic" in proc.stderr and "mlp" in proc.stderr, "Hydra lists the available options"


def test_missing_csv(bad_run) -> None:
    proc = bad_run("missing_csv")
    _lightreg_error(proc, "absent.csv", "not found")


def test_missing_target_column(bad_run) -> None:
    _lightreg_error(bad_run("missing_target"), "'target'", "a, b, label")


def test_non_numeric_cell(bad_run) -> None:
    _lightreg_error(bad_run("non_numeric"), "'seven'", "line 9", "'b'")


def test_empty_csv(bad_run) -> None:
    _lightreg_error(bad_run("empty_csv"), "empty.csv", "no data rows")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_bad_batch_size(bad_run, value: str) -> None:
    _lightreg_error(bad_run(f"batch_size_{value}"), "batch_size", f"got {value}")


def test_negative_max_epochs(bad_run) -> None:
    _lightreg_error(bad_run("max_epochs_-5"), "max_epochs", "-5")


@pytest.mark.parametrize("value", ["-0.1", "nan"])
def test_bad_lambda(bad_run, value: str) -> None:
    _lightreg_error(bad_run(f"lambda_{value}"), "lambda", value)


def test_nothing_was_trained(bad_run: BadRuns) -> None:
    for name in bad_run.futures:
        if name == "missing_ckpt":  # fails inside trainer.fit, which writes metrics.json with status "failed"
            continue
        bad_run(name)
        assert not (bad_run.root / name / "metrics.json").exists(), name
        assert not (bad_run.root / name / "checkpoints").exists(), name


def test_missing_checkpoint(bad_run) -> None:
    _lightreg_error(bad_run("missing_ckpt"), "absent.ckpt")


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict, dict]]:
    """The earlier run, its snapshot, the table, and each case's finished process (4 at a time)."""
    root = tmp_path_factory.mktemp("bad_table")
    earlier = root / "earlier"
    proc = run_train(*EARLIER, f"hydra.run.dir={earlier}", cwd=root)
    assert proc.returncode == 0, describe(proc)
    before = _snapshot(earlier)
    table = _table(root, earlier / "checkpoints" / "last.ckpt")
    with InThisThread() as pool:
        futures = {
            name: pool.submit(run_train, *args, f"hydra.run.dir={root / 'runs' / name}", cwd=root)
            for name, (args, _) in table.items()
        }
        yield earlier, before, table, {name: f.result() for name, f in futures.items()}


def test_table_of_bad_inputs(table_runs) -> None:
    """Each bad value: exit code 2, exactly one stderr line (``lightreg: error: ...`` naming the value and the fix),
    no traceback, no metrics.json or checkpoint in its own run folder."""
    _, _, table, procs = table_runs
    problems = []
    for name, (_, fragments) in table.items():
        proc = procs[name]
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        if proc.returncode != 2 or len(lines) != 1 or not lines[0].startswith("lightreg: error: "):
            problems.append(f"{name}: {describe(proc)}")
            continue
        missing = [f for f in fragments if f not in lines[0]]
        if missing:
            problems.append(f"{name}: {missing} not in {lines[0]!r}")
        if "Traceback" in proc.stdout:
            problems.append(f"{name}: traceback on stdout")
    assert not problems, "\n\n".join(problems)


def test_table_touches_no_earlier_run(table_runs) -> None:
    earlier, before, table, _ = table_runs
    assert _snapshot(earlier) == before
    for name in table:
        run_dir = earlier.parent / "runs" / name
        assert not (run_dir / "metrics.json").exists(), name
        assert not (run_dir / "checkpoints").exists(), name
