"""Bad input through the CLI: a non-zero exit, one clear line naming the bad value, no Python traceback.

Every case is a separate ``python -m train`` process; they are started together (a few at a time) when the
first test of this module runs, because each one spends its seconds importing torch and Lightning.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import describe, run_train, write_csv

pytestmark = pytest.mark.slow  # every test here starts `python -m train` in a subprocess

QUICK = ["logger=none", "callbacks=none", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]


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

    def __init__(self, root: Path, pool: ThreadPoolExecutor) -> None:
        self.root = root
        self.futures: dict[str, Future] = {
            name: pool.submit(run_train, *args, cwd=root) for name, args in _cases(root).items()
        }

    def __call__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadRuns]:
    with ThreadPoolExecutor(max_workers=4) as pool:
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
