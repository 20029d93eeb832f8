"""The penalty inside the optimizer's own step: its cost in a fit, per step and in memory, and the first compile.

Three parts, each one torch thread, on a deep MLP 64 → 41×256 → 10 (2.7 M weights; ``--quick``: 3×16), L1 λ = 1e-5,
SGD (lr 0.1, momentum 0.9), Adam (lr 1e-3) and Adagrad (lr 0.01):

``fit``: ``python -m train``'s pipeline (Hydra compose and its own builders, in this process) on sklearn digits, batch
128, no loggers, checkpoints or progress bar, as ratios to the same fit with the torch optimizer and no penalty: the
median step (seconds between consecutive batch starts within an epoch, so one whole step with every per-batch hook)
and the whole ``trainer.fit`` (each epoch's validation and sparsity record and the run's end included: on digits an
epoch is only 12 steps). Variants per optimizer and penalty mode (grad | prox):

  separate    ``+penalty=l1 penalty.mode=…``: the callback's own pass (λ∇R added to ``.grad`` before the step, or the prox
              in a step post-hook after it)
  fused       ``optimizer=prox_<opt> optimizer.compile=off``: the same penalty inside the optimizer's eager update
  compiled    ``optimizer=prox_<opt> optimizer.compile=on``: that update through ``torch.compile`` (Inductor)

``step``: the optimizer step alone on random gradients, as a ratio to torch's own optimizer (its default single-tensor
CPU step) without a penalty: ``prox_<opt>`` without a penalty (eager, compiled), with the L1 prox (eager, compiled)
and, eager and compiled, with the penalty's value read only on logging steps (``read_value`` off: what the steps
between two logging steps cost); also the torch step followed by the callback's separate prox pass.

``memory``: peak resident memory of one step above the memory before it (``VmHWM`` reset through
``/proc/self/clear_refs``, glibc told to map every block ≥ 64 KiB so that a freed temporary leaves the count), in a
fresh process, as % of the parameters' bytes: the penalty's extra memory is a row's figure minus the torch row's;
beside it, the scratch buffers an eager ``prox_*`` optimizer holds between steps (allocated at its first step).

``compile``: the first two compiled Adam + L1-prox steps in a fresh process, cold (an empty Inductor cache) then warm
(the same cache, the FX graph cache on by default).

Interleaved repeats (every round runs each variant once), medians of the per-round ratios and their spread
(min–max); compiled fits run once untimed before the rounds.

    python -m benchmarks.speed.fused_penalty [--parts fit step memory compile] [--repeats 5] [--epochs 3] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmarks._common import table, time_calls
from lightreg.solvers.threads import intra_op_threads

OPTIMIZERS = {
    "sgd": {"lr": 0.1, "momentum": 0.9},
    "adam": {"lr": 0.001},
    "adagrad": {"lr": 0.01},
}
TORCH_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}
LAMBDA = 1e-5
DEEP = [256] * 41


# -- fit ---------------------------------------------------------------------------------------------------------------
def fit_variants(optimizer: str, compiled: bool) -> dict[str, list[str]]:
    """Variant name -> overrides of one optimizer's fit rows."""
    torch_opt, prox_opt = [f"optimizer={optimizer}"], [f"optimizer=prox_{optimizer}"]
    rows = {"none": torch_opt}
    for mode in ("grad", "prox"):
        penalty = ["+penalty=l1", f"lambda={LAMBDA}", f"penalty.mode={mode}"]
        rows[f"separate-{mode}"] = [*torch_opt, *penalty]
        rows[f"fused-{mode}"] = [*prox_opt, "optimizer.compile=off", *penalty]
        if compiled:
            rows[f"compiled-{mode}"] = [*prox_opt, "optimizer.compile=on", *penalty]
    hyper = [f"optimizer.{key}={value}" for key, value in OPTIMIZERS[optimizer].items()]
    return {name: [*overrides, *hyper] for name, overrides in rows.items()}


class StepClock(L.Callback):
    """Seconds between consecutive training batch starts within an epoch: one whole step (batch, forward, backward,
    penalty, optimizer step and every per-batch hook), without the epoch's own boundaries (validation, epoch-end
    figures, the sparsity monitor's epoch record)."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self._last: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.steps.append(now - self._last)
        self._last = now


def fit_times(overrides: list[str], epochs: int, hidden: list[int]) -> tuple[float, float]:
    """(median step seconds (:class:`StepClock`), whole fit seconds) of ``python -m train``'s pipeline on ``overrides``:
    its own builders and callbacks (the sparsity monitor a penalty adds, the guard), no loggers or checkpoints."""
    from hydra import compose, initialize_config_module

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
    ]
    with tempfile.TemporaryDirectory() as out:
        with initialize_config_module("lightreg.conf", version_base="1.3"):
            cfg = compose("train", overrides=[*base, f"paths.output_dir={out}", *overrides])
        return _timed_fit(cfg)


def _timed_fit(cfg: Any) -> tuple[float, float]:
    from lightreg.cli.checks import check_config
    from lightreg.cli.pipeline import build_data, build_model, build_run_callbacks, build_trainer, fit

    check_config(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_data(cfg)
    model = build_model(cfg, datamodule)
    clock = StepClock()
    trainer = build_trainer(cfg, [*build_run_callbacks(cfg), clock], enable_checkpointing=False)
    started = time.perf_counter()
    fit(cfg, trainer, model, datamodule)
    return statistics.median(clock.steps), time.perf_counter() - started


def fit_part(optimizers: list[str], repeats: int, epochs: int, hidden: list[int], compiled: bool) -> None:
    fit_times(fit_variants("sgd", False)["none"], epochs, hidden)  # imports, data and first-call costs out
    rows = {(opt, name): o for opt in optimizers for name, o in fit_variants(opt, compiled).items()}
    for key, overrides in rows.items():  # each compiled graph's first fit pays the compile: untimed
        if key[1].startswith("compiled"):
            fit_times(overrides, epochs, hidden)
    steps: dict[tuple[str, str], list[float]] = {key: [] for key in rows}
    fits: dict[tuple[str, str], list[float]] = {key: [] for key in rows}
    for _ in range(repeats):  # interleaved rounds, as time_calls does
        for key, overrides in rows.items():
            step, whole = fit_times(overrides, epochs, hidden)
            steps[key].append(step)
            fits[key].append(whole)
    print(
        f"\nfit: digits, batch 128, {epochs} epoch(s), {repeats} interleaved repeats, ratios to none. step: median "
        "ms between batch starts (one whole step with every per-batch hook); fit: seconds of trainer.fit (also each "
        "epoch's validation and sparsity record, and the run's end)"
    )
    print(ratio_table(steps, lambda key: (key[0], "none"), scale=1000, fits=fits))


# -- step --------------------------------------------------------------------------------------------------------------
def mlp_params(hidden: list[int]) -> list[torch.nn.Parameter]:
    """The MLP's weights and biases, with a fixed random gradient each."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for a, b in itertools.pairwise([64, *hidden, 10]):
        params += [torch.nn.Parameter(torch.randn(b, a, generator=gen) * 0.05), torch.nn.Parameter(torch.zeros(b))]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    return params


def make_step(optimizer: str, variant: str, hidden: list[int]) -> Callable[[], None]:
    """One optimizer step of ``variant``: ``torch`` | ``separate-prox`` | ``<fused|compiled>-<none|prox|grad>``
    (``-logging``: the value read only on logging steps, i.e. never here)."""
    from lightreg.optim import FusedPenalty, ProxAdagrad, ProxAdam, ProxSGD
    from lightreg.penalties import make_penalty
    from lightreg.solvers import kernels, prox_step

    params = mlp_params(hidden)
    weights = [p for p in params if p.ndim >= 2]
    penalty = make_penalty("l1")
    kw = OPTIMIZERS[optimizer]
    if variant in ("torch", "separate-prox"):
        opt = TORCH_OPTIMIZERS[optimizer](params, **kw)
        if variant == "torch":
            return opt.step

        @torch.no_grad()
        def separate() -> None:  # the callback's pass after torch's step (RegularizationCallback._after_optimizer_step)
            opt.step()
            group = opt.param_groups[0]
            for p in weights:
                step = prox_step(opt, group, p, True, floor=LAMBDA, scale=LAMBDA)
                if isinstance(step, torch.Tensor):
                    penalty.prox_(p, step)
                else:
                    kernels.prox_(penalty, [p], step, kernels.DEFAULT_FORM)

        return separate
    form, mode, *rest = variant.split("-")
    prox_cls = {"sgd": ProxSGD, "adam": ProxAdam, "adagrad": ProxAdagrad}[optimizer]
    opt = prox_cls(params, compile="on" if form == "compiled" else "off", **kw)
    if mode != "none":
        opt.attach(FusedPenalty(penalty, LAMBDA, mode, weights, read_value=not rest))
    return opt.step


STEP_VARIANTS = ["torch", "separate-prox", "fused-none", "fused-prox", "compiled-none", "compiled-prox"]


def step_part(optimizers: list[str], repeats: int, hidden: list[int], compiled: bool) -> None:
    names = [v for v in STEP_VARIANTS if compiled or not v.startswith("compiled")]
    names += ["fused-prox-logging", *(["compiled-prox-logging"] if compiled else [])]
    steps = {(opt, name): make_step(opt, name, hidden) for opt in optimizers for name in names}
    for fn in steps.values():  # state, buffers and compiles out of the figures
        fn(), fn()
    times = time_calls(steps, repeats, calls=10)
    print(f"\nstep: one optimizer step on fixed gradients, {repeats} interleaved rounds of 10; ms and ratio to torch")
    print(ratio_table(times, lambda key: (key[0], "torch"), scale=1e3))


# -- memory --------------------------------------------------------------------------------------------------------------
def _status(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def peak_extra_bytes(step: Callable[[], None], tries: int = 3) -> int:
    """Peak resident bytes of one ``step`` above the resident bytes before it (the least of ``tries`` steps)."""
    step(), step()
    peaks = []
    for _ in range(tries):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        before = _status("VmRSS")
        step()
        peaks.append(_status("VmHWM") - before)
    return min(peaks)


def memory_probe(hidden: list[int], quick: bool) -> dict[str, list[float | None]]:
    """``{optimizer/variant: [peak extra %, scratch held %]}`` of the eager variants and Adam's compiled ones (in this
    process), as % of the parameters' bytes; the second figure is what an eager ``prox_*`` optimizer keeps between
    steps besides (its scratch buffers, already there before the measured step; ``None`` for the others)."""
    param_bytes = sum(p.numel() * p.element_size() for p in mlp_params(hidden))
    names = ["torch", "separate-prox", "fused-none", "fused-prox", "fused-grad"]
    rows = [(opt, name) for opt in OPTIMIZERS for name in names]
    rows += [] if quick else [("adam", "compiled-none"), ("adam", "compiled-prox"), ("adam", "compiled-prox-logging")]
    figures = {}
    for opt, name in rows:
        step = make_step(opt, name, hidden)
        peak = 100 * peak_extra_bytes(step) / param_bytes
        scratch = getattr(getattr(step, "__self__", None), "_scratch", None) if name.startswith("fused") else None
        held = (
            None if scratch is None else 100 * sum(b.numel() * b.element_size() for b in scratch.values()) / param_bytes
        )
        figures[f"{opt}/{name}"] = [peak, held]
    return figures


def run_probe(probe: str, quick: bool, env: dict[str, str] | None = None) -> dict[str, float]:
    args = [sys.executable, "-m", "benchmarks.speed.fused_penalty", "--probe", probe, *(["--quick"] if quick else [])]
    done = subprocess.run(args, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def memory_part(quick: bool) -> None:
    figures = run_probe("memory", quick, {"MALLOC_MMAP_THRESHOLD_": "65536"})
    print(
        "\nmemory: peak resident bytes of one step above those before it, and the scratch an eager prox_* optimizer "
        "holds between steps, % of the parameters' bytes"
    )
    rows = [
        [*key.split("/"), f"{peak:.2f}", "" if held is None else f"{held:.2f}"] for key, (peak, held) in figures.items()
    ]
    print(table(["optimizer", "variant", "peak extra %", "scratch held %"], rows))


# -- compile -----------------------------------------------------------------------------------------------------------
def compile_probe(hidden: list[int]) -> dict[str, float]:
    """Seconds of the first two compiled Adam + L1-prox steps (this process's first compile)."""
    step = make_step("adam", "compiled-prox", hidden)
    started = time.perf_counter()
    step(), step()
    return {"seconds": time.perf_counter() - started}


def compile_part(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {"TORCHINDUCTOR_CACHE_DIR": cache}
        cold = run_probe("compile", quick, env)["seconds"]
        warm = run_probe("compile", quick, env)["seconds"]
    print(f"\nfirst compile (Adam + L1 prox, first two steps, fresh process): cold {cold:.1f} s, warm {warm:.1f} s")


def ratio_table(times: dict, base: Callable, scale: float = 1.0, fits: dict | None = None) -> str:
    """Median, median ratio to ``base(key)``'s series of the same rounds and its spread per key; ``fits``: the same
    three columns of a second series per key (a whole fit's seconds)."""
    series_columns = [times] if fits is None else [times, fits]
    rows = []
    for key in times:
        row = [*key]
        for series_of, unit in zip(series_columns, (scale, 1.0)):
            series = series_of[key]
            ratios = [t / b for t, b in zip(series, series_of[base(key)])]
            row += [f"{statistics.median(series) * unit:.3f}", f"{statistics.median(ratios):.2f}x"]
            row.append(f"{min(ratios):.2f}–{max(ratios):.2f}")
        rows.append(row)
    header = ["optimizer", "variant", "median", "ratio", "spread"]
    if fits is not None:
        header = ["optimizer", "variant", "step ms", "ratio", "spread", "fit s", "ratio", "spread"]
    return table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["fit", "step", "memory", "compile"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled variants")
    parser.add_argument("--quick", action="store_true", help="a 3×16 MLP, 1 epoch, 1 repeat, no compile (smoke test)")
    parser.add_argument("--probe", choices=["memory", "compile"], help=argparse.SUPPRESS)  # a fresh process's part
    args = parser.parse_args()
    hidden = [16] * 3 if args.quick else DEEP
    if args.probe:
        with intra_op_threads(1):
            figures = memory_probe(hidden, args.quick) if args.probe == "memory" else compile_probe(hidden)
        print(json.dumps(figures))
        return
    if args.quick:
        args.repeats, args.epochs, args.no_compile = 1, 1, True
        args.parts = [p for p in args.parts if p != "compile"]
    compiled = not args.no_compile
    weights = sum(a * b + b for a, b in itertools.pairwise([64, *hidden, 10]))
    print(
        f"MLP 64→{len(hidden)}×{hidden[0]}→10 ({weights / 1e6:.2f} M weights), L1 λ={LAMBDA}; {os.cpu_count()} CPUs, "
        f"1 torch thread, torch {torch.__version__}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with intra_op_threads(1):
        if "fit" in args.parts:
            fit_part(args.optimizers, args.repeats, args.epochs, hidden, compiled)
        if "step" in args.parts:
            step_part(args.optimizers, args.repeats, hidden, compiled)
    if "memory" in args.parts:
        memory_part(args.quick)
    if "compile" in args.parts and compiled:
        compile_part(args.quick)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
