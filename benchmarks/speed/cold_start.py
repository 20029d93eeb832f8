"""Cold wall time of ``python -m train`` split into interpreter start + imports, setup, fit and what follows the fit.

Each repeat is a fresh process (nothing imported yet; with ``PYTHONDONTWRITEBYTECODE=1`` in the environment nothing
is cached as bytecode either, so every start compiles the sources again: the figure says which). Inside it the
harness times ``import train`` (Hydra, lightreg's config checks), ``import lightreg.cli.pipeline`` (torch, Lightning,
torchmetrics, the models), and ``main()``; ``fit`` is ``metrics.json``'s ``fit_seconds`` (``trainer.fit``);
``setup`` is the rest of ``main()`` before the fit (compose, data, model, trainer) plus after it (metrics, the
sparsity report and plots when there is a penalty).

    python -m benchmarks.speed.cold_start [--repeats 3] [overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HARNESS = """
import json, sys, time
t0 = time.perf_counter()
sys.argv = ["train", *json.loads(sys.argv[1])]
import train
t1 = time.perf_counter()
import lightreg.cli.pipeline
t2 = time.perf_counter()
try:
    train.main()
except SystemExit:
    pass
t3 = time.perf_counter()
print("TIMES", json.dumps({"import_train": t1 - t0, "import_pipeline": t2 - t1, "main": t3 - t2}))
"""


def one_run(overrides: list[str], run_dir: Path) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, json.dumps([*overrides, f"hydra.run.dir={run_dir}"])],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    times = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("TIMES"))[6:])
    fit = json.loads((run_dir / "metrics.json").read_text())["fit_seconds"]
    imports = wall - times["main"]  # interpreter start + both imports
    return {"wall": wall, "imports": imports, "setup": times["main"] - fit, "fit": fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_run(overrides, Path(tmp) / str(i)) for i in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    compiled = (
        "compiles every start (PYTHONDONTWRITEBYTECODE=1)"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "bytecode cached"
    )
    print(
        f"python -m train {' '.join(overrides)}: median of {args.repeats} cold starts; {compiled}; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print("| wall s | interpreter + imports s | setup s | fit s |\n|---|---|---|---|")
    print(f"| {median['wall']:.2f} | {median['imports']:.2f} | {median['setup']:.2f} | {median['fit']:.2f} |")


if __name__ == "__main__":
    main()
