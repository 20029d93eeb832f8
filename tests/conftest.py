"""Shared helpers: the CLI in a subprocess, small CSV files, the config groups' options."""

from __future__ import annotations

import csv
import logging
import subprocess
from collections.abc import Callable, Iterable, Sequence
from importlib.resources import files
from pathlib import Path

import pytest

from lightreg.cli.quiet import SMALL_DATA_ADVICE, UNACTIONABLE

from helpers import run_train


def pytest_configure(config: pytest.Config) -> None:
    for pattern in (*UNACTIONABLE, *SMALL_DATA_ADVICE):  # the CLI's own lists of Lightning noise
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}:Warning")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "Tip:" not in r.getMessage())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the ``cli`` fixture starts ``python -m train``: it is ``slow`` (``-m "not slow"`` skips it)."""
    for item in items:
        if "cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# ---------------------------------------------------------------------------------------------------------------
# config groups
# ---------------------------------------------------------------------------------------------------------------
CONF = files("lightreg.conf")


def config_options(group: str) -> list[str]:
    """Every option of a config group, read from the packaged YAML files (new options are picked up)."""
    return sorted(p.name[: -len(".yaml")] for p in (CONF / group).iterdir() if p.name.endswith(".yaml"))


# ---------------------------------------------------------------------------------------------------------------
# CSV files
# ---------------------------------------------------------------------------------------------------------------
def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a small CSV file (header row + rows) and return its path."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """40 rows, features a, b, c (c is constant), binary target ``label`` that depends on a."""
    rows = [(i / 10 - 2, (i * 7) % 11 - 5, 1.0, int(i % 4 < 2)) for i in range(40)]
    return write_csv(tmp_path / "train.csv", ["a", "b", "c", "label"], rows)


# ---------------------------------------------------------------------------------------------------------------
# the CLI
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*overrides)`` runs ``python -m train`` with ``tmp_path`` as working directory: in this process, or in a
    subprocess with ``process=True`` or where an override needs one (:func:`helpers.run_train`)."""

    def run(*args: str, timeout: float = 600, process: bool | None = None) -> subprocess.CompletedProcess[str]:
        return run_train(*args, cwd=tmp_path, timeout=timeout, process=process)

    return run


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit code and output of a CLI run, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
