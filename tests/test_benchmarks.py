"""Every benchmark runs: ``python -m benchmarks --quick`` (tiny sizes) is CI's smoke test of the benchmark scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("speed", "references", "studies")


def test_every_benchmark_is_in_the_quick_run() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.__main__ import GROUPS as RUNNER_GROUPS
        from benchmarks.__main__ import QUICK
    finally:
        sys.path.remove(str(ROOT))
    assert RUNNER_GROUPS == GROUPS
    scripts = {
        f"{folder}.{p.stem}"
        for folder in GROUPS
        for p in (ROOT / "benchmarks" / folder).glob("*.py")
        if p.stem[0] != "_"
    }
    assert set(QUICK) == scripts
    # every script lives in a group: the top level holds the package, its runner and the shared helpers only
    assert {p.name for p in (ROOT / "benchmarks").glob("*.py")} == {"__init__.py", "__main__.py", "_common.py"}


@pytest.mark.slow
def test_quick_benchmarks_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("speed.loop_overhead", "speed.penalty_overhead", "speed.cold_start"):
        assert f"== benchmarks.{name}: exit 0" in proc.stdout
    assert "| hand |" in proc.stdout and "| prox-l1-adam |" in proc.stdout
