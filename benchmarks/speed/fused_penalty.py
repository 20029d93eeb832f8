"""The penalty inside the optimizer's own step: in-fit cost of L1 as a ratio to the same fit without a penalty.

Fit: ``python -m train``'s pipeline (Hydra compose, in this process) on sklearn digits with a deep MLP 64 → 41×256 →
10 (2.7 M weights; ``--quick``: 3×16), batch 128, one torch thread, no loggers, checkpoints or progress bar; the time is
``metrics.json``'s ``fit_seconds``. Per optimizer (SGD lr 0.1 momentum 0.9, Adam lr 1e-3), λ = 1e-5:

  none        the torch optimizer, no penalty: the baseline of its rows
  separate    ``+penalty=l1 penalty.mode=grad|prox``: the callback's own pass (λ∇R added to ``.grad`` before the step, or
              the prox in a step post-hook after it)
  fused       ``optimizer=prox_<opt> optimizer.compile=off``: the same penalty inside the optimizer's eager update
  compiled    ``optimizer=prox_<opt> optimizer.compile=on``: that update through ``torch.compile`` (Inductor)
  none-compiled  ``optimizer=prox_<opt> optimizer.compile=on`` without a penalty

Interleaved repeats (every round fits each variant once), medians of the per-round ratios, and their spread (min–max).
The first compiled fit of each variant runs untimed before the rounds (each penalty mode is its own graph);
the first of each optimizer (grad) is timed apart: ``first compile`` = its seconds minus the median compiled fit.

    python -m benchmarks.speed.fused_penalty [--repeats 5] [--epochs 6] [--quick] [--no-compile]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import table, time_calls
from lightreg.solvers.threads import intra_op_threads

OPTIMIZERS = {"sgd": ["optimizer.lr=0.1", "optimizer.momentum=0.9"], "adam": ["optimizer.lr=0.001"]}
LAMBDA = 1e-5


def variants(optimizer: str, compiled: bool) -> dict[str, list[str]]:
    """Variant name -> overrides of one optimizer's rows."""
    torch_opt, prox_opt = [f"optimizer={optimizer}"], [f"optimizer=prox_{optimizer}"]
    rows = {"none": torch_opt}
    for mode in ("grad", "prox"):
        penalty = ["+penalty=l1", f"lambda={LAMBDA}", f"penalty.mode={mode}"]
        rows[f"separate-{mode}"] = [*torch_opt, *penalty]
        rows[f"fused-{mode}"] = [*prox_opt, "optimizer.compile=off", *penalty]
        if compiled:
            rows[f"compiled-{mode}"] = [*prox_opt, "optimizer.compile=on", *penalty]
    if compiled:
        rows["none-compiled"] = [*prox_opt, "optimizer.compile=on"]
    return {name: [*overrides, *OPTIMIZERS[optimizer]] for name, overrides in rows.items()}


def fit_seconds(overrides: list[str], epochs: int, hidden: list[int], out: Path) -> float:
    from hydra import compose, initialize_config_module

    from lightreg.cli.pipeline import train

    base = [
        "callbacks=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "data=digits",
        "data.batch_size=128",
        "model=mlp",
        f"model.hidden_sizes=[{','.join(map(str, hidden))}]",
        "model.print_epochs=false",
        "num_threads=1",
        f"trainer.max_epochs={epochs}",
        f"paths.output_dir={out}",
    ]
    with initialize_config_module("lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*base, *overrides])
    with contextlib.redirect_stdout(io.StringIO()):  # the run's final block, once per fit
        return float(train(cfg)["fit_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled variants")
    parser.add_argument("--quick", action="store_true", help="a 3×16 MLP, 1 epoch, 1 repeat, no compile (smoke test)")
    args = parser.parse_args()
    hidden = [256] * 41
    if args.quick:
        hidden, args.repeats, args.epochs, args.no_compile = [16] * 3, 1, 1, True
    compiled = not args.no_compile
    with tempfile.TemporaryDirectory() as tmp, intra_op_threads(1):
        runs = itertools.count(1)

        def fit(overrides: list[str]) -> float:
            return fit_seconds(overrides, args.epochs, hidden, Path(tmp) / str(next(runs)))

        fit(variants("sgd", False)["none"])  # imports, data and first-call costs out of the figures
        first_compile: dict[str, float] = {}
        if compiled:  # the process's first compiled fit of each graph (mode) pays the compile: all untimed here
            for opt in args.optimizers:
                for name, overrides in variants(opt, True).items():
                    if name.endswith("compiled") or name.startswith("compiled"):
                        started = time.perf_counter()
                        fit(overrides)
                        first_compile.setdefault(opt, time.perf_counter() - started)
        fits = {
            (opt, name): (lambda o=o: fit(o)) for opt in args.optimizers for name, o in variants(opt, compiled).items()
        }
        times = time_calls(fits, args.repeats, returns_seconds=True)
    load = os.getloadavg()[0]
    weights = sum(a * b + b for a, b in itertools.pairwise([64, *hidden, 10]))
    print(
        f"digits, MLP 64→{len(hidden)}×{hidden[0]}→10 ({weights / 1e6:.2f} M weights), batch 128, {args.epochs} "
        f"epoch(s), L1 λ={LAMBDA}; {args.repeats} interleaved repeats; {os.cpu_count()} CPUs, 1 torch thread, "
        f"torch {torch.__version__}, load average {load:.2f} at the end"
    )
    rows = []
    for (opt, name), series in times.items():
        ratios = [t / base for t, base in zip(series, times[(opt, "none")])]
        rows.append(
            [
                opt,
                name,
                f"{statistics.median(series):.3f}",
                f"{statistics.median(ratios):.2f}x",
                f"{min(ratios):.2f}–{max(ratios):.2f}",
            ]
        )
    print(table(["optimizer", "variant", "fit s (median)", "vs none", "spread"], rows))
    for opt, seconds in first_compile.items():
        rest = statistics.median(times[(opt, "compiled-grad")])
        print(f"first compile ({opt}, grad, in this process): {seconds - rest:.1f} s")


if __name__ == "__main__":
    main()
