"""Every benchmark runs: ``python -m benchmarks --quick`` (tiny sizes) is CI's smoke test of the benchmark scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_is_in_the_quick_run() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.__main__ import QUICK
    finally:
        sys.path.remove(str(ROOT))
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    assert set(QUICK) == scripts


@pytest.mark.slow
def test_quick_benchmarks_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("loop_overhead", "penalty_overhead", "cold_start"):
        assert f"== benchmarks.{name}: exit 0" in proc.stdout
    assert "| hand |" in proc.stdout and "| prox-l1-adam |" in proc.stdout
