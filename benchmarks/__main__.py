"""Run every benchmark, at its default sizes or (``--quick``) at tiny ones: ``python -m benchmarks --quick``.

The quick run is CI's smoke test (``tests/test_benchmarks.py``): each benchmark must start, run and print its table;
its figures mean nothing at these sizes. Each benchmark runs as ``python benchmarks/<name>.py`` from the repository
root; the run stops at the first failure with that benchmark's exit code.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

QUICK: dict[str, list[str]] = {
    "loop_overhead": ["--quick"],
    "cold_start": ["--repeats", "1", "trainer.max_epochs=1"],
    "penalty_overhead": ["--quick", "--repeats", "1", "--steps", "1", "--forms"],
    "monitor_overhead": ["--steps", "5", "--repeats", "1"],
    "loader_speed": ["--repeats", "1"],
    "group_prox_cost": ["--repeats", "2"],
    "convex_vs_sklearn": ["--prox-epochs", "5"],
    "seed001_columns": ["--epochs", "2", "--lambdas", "0.01"],
    "exact_support_seed001": [
        "--seeds",
        "1",
        "--epochs",
        "3",
        "--lambdas",
        "0.02",
        "--optimizers",
        "sgd",
        "--workers",
        "1",
    ],
    "exact_support_seed004": ["--seeds", "1", "--epochs", "2", "--workers", "1"],
    "group_step_adam": ["--seeds", "1", "--epochs", "2", "--lambdas", "0.02", "--workers", "1"],
    "lassonet_seed001": ["--seeds", "1", "--workers", "1"],
    "image_loader_speed": ["--quick", "--repeats", "1", "--workers", "1", "--threads", "1"],
    "compact_vs_prune": ["--lambdas", "0.03", "--epochs", "1", "--finetune", "1"],
    "lambda_path": ["--part", "sklearn", "--num", "3"],
    "seed001_adaptive_weights": ["--seeds", "1", "--lambdas", "0.04", "--workers", "1", "--dense-epochs", "1"],
    "seed001_support_oracle": ["--seeds", "1", "--workers", "1", "--dense-epochs", "1"],
    "seed001_selection": [
        "--seeds",
        "1",
        "--rules",
        "linear",
        "--optimizers",
        "adam",
        "--grid",
        "",
        "--no-lassonet",
        "--workers",
        "1",
        "--out",
        "outputs/benchmarks_quick/seed001_selection.jsonl",
    ],
    "seed001_prox_threshold": ["--optimizers", "adagrad"],
}
"""Every benchmark and its tiny-size arguments (a new benchmark must be added here; the smoke test checks it)."""

NEEDS: dict[str, str] = {"lassonet_seed001": "lassonet"}
"""Benchmarks that compare with a package lightreg does not depend on: run only where it is installed."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), help="run these benchmarks only")
    args = parser.parse_args()
    for name in args.only or QUICK:
        if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
            print(f"== benchmarks.{name}: not run, it needs the {NEEDS[name]!r} package (pip install {NEEDS[name]})")
            continue
        started = time.perf_counter()
        print(f"== benchmarks.{name} {' '.join(QUICK[name]) if args.quick else ''}", flush=True)
        command = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *(QUICK[name] if args.quick else [])]
        code = subprocess.run(command, cwd=ROOT).returncode
        print(f"== benchmarks.{name}: exit {code}, {time.perf_counter() - started:.1f} s", flush=True)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
