"""Run every benchmark, at its default sizes or (``--quick``) at tiny ones: ``python -m benchmarks --quick --jobs 2``.

The quick run is CI's smoke test (``tests/test_benchmarks.py``): each benchmark must start, run and print its table;
its figures mean nothing at these sizes. Each benchmark runs in its own process as ``python -m benchmarks.<name>``
from the repository root, ``<name>`` being ``<group>.<script>`` (``speed.loop_overhead``). ``--jobs N`` runs up to N
of them at a time and prints each one's output as a block when it ends (with ``--jobs 1``, the default, the output
streams as it comes); the figures of the ``speed`` group mean something only one at a time on an idle machine. The
run stops at the first failure: nothing starts after it, and once the running benchmarks end, the exit code is the
failed one's.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GROUPS = ("speed", "references", "studies")
"""The subpackages: what a step or a start costs; lightreg against another library or a known reference; selection
and sparsity studies on the seed problems."""

QUICK: dict[str, list[str]] = {
    "speed.loop_overhead": ["--quick"],
    "speed.cold_start": ["--repeats", "1", "trainer.max_epochs=1"],
    "speed.penalty_overhead": ["--quick", "--repeats", "1", "--steps", "1", "--forms"],
    "speed.fused_penalty": ["--quick"],
    "speed.monitor_overhead": ["--steps", "5", "--repeats", "1"],
    "speed.loader_speed": ["--repeats", "1"],
    "speed.image_loader_speed": ["--quick", "--repeats", "1", "--workers", "1", "--threads", "1"],
    "speed.group_prox_cost": ["--repeats", "2"],
    "speed.estimator_cost": ["--quick"],
    "references.convex_vs_sklearn": ["--prox-epochs", "5"],
    "references.lambda_path": ["--part", "sklearn", "--num", "3"],
    "references.compact_vs_prune": ["--lambdas", "0.03", "--epochs", "1", "--finetune", "1"],
    "references.structured_sparsity": [
        "--lambdas",
        "0.01",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--finetune",
        "1",
        "--repeats",
        "2",
        "--out",
        "outputs/benchmarks_quick/structured_sparsity",
    ],
    "references.lassonet_seed001": ["--seeds", "1", "--workers", "1"],
    "references.nonconvex_vs_skglm": ["--quick"],
    "studies.seed001_columns": ["--epochs", "2", "--lambdas", "0.01"],
    "studies.seed001_nonconvex": [
        "--seeds",
        "1",
        "--optimizers",
        "sgd",
        "--lambdas",
        "0.05",
        "--gammas",
        "10",
        "--workers",
        "1",
        "--out",
        "outputs/quick/seed001_nonconvex.jsonl",
    ],
    "studies.exact_support_seed001": [
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
    "studies.exact_support_seed004": ["--seeds", "1", "--epochs", "2", "--workers", "1"],
    "studies.group_step_adam": ["--seeds", "1", "--epochs", "2", "--lambdas", "0.02", "--workers", "1"],
    "studies.seed001_adaptive_weights": [
        "--seeds",
        "1",
        "--lambdas",
        "0.04",
        "--workers",
        "1",
        "--dense-epochs",
        "1",
    ],
    "studies.seed001_support_oracle": ["--seeds", "1", "--workers", "1", "--dense-epochs", "1"],
    "studies.seed001_selection": [
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
    "studies.seed001_prox_threshold": ["--optimizers", "adagrad"],
}
"""Every benchmark (``<group>.<script>``) and its tiny-size arguments (a new benchmark must be added here; the smoke
test checks it)."""

NEEDS: dict[str, str] = {"references.lassonet_seed001": "lassonet"}
"""Benchmarks that compare with a package lightreg does not depend on: run only where it is installed."""


def selected(only: list[str] | None) -> list[str]:
    """The benchmarks to run, in order: all of :data:`QUICK`, or those ``--only`` names (a group stands for its own)."""
    if not only:
        return list(QUICK)
    names = [n for item in only for n in ([item] if item in QUICK else [k for k in QUICK if k.startswith(f"{item}.")])]
    return list(dict.fromkeys(names))


def run_one(name: str, args: list[str], capture: bool) -> tuple[int, float, str]:
    """Run ``python -m benchmarks.<name> <args>`` from the repository root. Returns (exit code, wall seconds, its
    stdout and stderr as one text when ``capture``, else ``""``: the output went to this process's)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        errors="replace",
    )
    return proc.returncode, time.perf_counter() - started, proc.stdout or ""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*GROUPS, *sorted(QUICK)],
        metavar="NAME",
        help=f"run these benchmarks (group.script) or groups ({', '.join(GROUPS)}) only",
    )
    parser.add_argument("--jobs", type=int, default=1, help="benchmarks run at a time (default 1: output streams)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    todo = []
    for name in selected(args.only):
        if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
            print(f"== benchmarks.{name}: not run, it needs the {NEEDS[name]!r} package (pip install {NEEDS[name]})")
        else:
            todo.append(name)
    capture, started, failed, ran = args.jobs > 1, time.perf_counter(), 0, 0
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        while todo or running:
            while todo and not failed and len(running) < args.jobs:
                name = todo.pop(0)
                if not capture:
                    print(f"== benchmarks.{name} {' '.join(QUICK[name]) if args.quick else ''}", flush=True)
                running[pool.submit(run_one, name, QUICK[name] if args.quick else [], capture)] = name
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in [f for f in running if f in done]:  # in start order
                name = running.pop(future)
                code, seconds, output = future.result()
                if capture:
                    print(f"== benchmarks.{name} {' '.join(QUICK[name]) if args.quick else ''}")
                    print(output, end="" if output.endswith("\n") or not output else "\n")
                print(f"== benchmarks.{name}: exit {code}, {seconds:.1f} s", flush=True)
                ran += 1
                failed = failed or code
    stopped = f", stopped at the first failure (exit {failed})" if failed else ""
    print(f"== benchmarks: {ran} run, {time.perf_counter() - started:.1f} s{stopped}", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
