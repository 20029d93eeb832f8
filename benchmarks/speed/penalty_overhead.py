"""Cost of a penalty per training step, as a ratio to the unregularized step, measured side by side.

Models: ``deep`` = 42 Linear 256×256 (784 in, 10 out, ~2.8 M parameters), batch 128; ``wide`` = 4 Linear
4096×4096 (~50.4 M parameters), batch 512. ``--quick`` shrinks both (deep 42×64², batch 32; wide 4×512², batch 64).
Variants (``RegularizationCallback`` driving the same hooks as in training, outside the Trainer; λ = 1e-5):

  none / none-<opt>     the plain step (forward, backward, optimizer step): the baseline of its rows
  loss-loop             L1 written into the loss by hand: ``loss + λ·Σ p.abs().sum()`` (the usual forum answer)
  grad-<penalty>        mode="grad": λ∇R added to ``.grad`` before the SGD step
  prox-<penalty>        mode="prox": the prox after the SGD step
  prox-l1-<opt>         L1 prox in the metric of Adam / AdamW / Adagrad after their step
  ...[form]             ``--forms``: grad/prox L1 with each kernel form of :mod:`lightreg.solvers.kernels`

The callback's steps are non-logging steps, as most of training's: no penalty value is read (the callback reads it
only on the steps that log). Timings: interleaved repeats,
medians; CUDA synchronized. Extra peak memory of one step over ``none``: CUDA ``max_memory_allocated``; CPU the peak of
the running sum of torch's allocations and frees inside the step (``torch.profiler`` with ``profile_memory``), which
is what the penalty adds on top of the parameters, gradients and optimizer state already held.

    python -m benchmarks.speed.penalty_overhead [--device cpu|cuda] [--model deep|wide|both] [--quick] [--forms] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn

from benchmarks._common import time_calls
from lightreg.callbacks import RegularizationCallback
from lightreg.penalties import make_penalty
from lightreg.solvers import kernels
from lightreg.solvers.threads import intra_op_threads

MODELS = {  # name -> (widths, batch); quick sizes second
    "deep": (([784] + [256] * 41 + [10], 128), ([784] + [64] * 41 + [10], 32)),
    "wide": (([4096] * 5, 512), ([512] * 5, 64)),
}
OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-4),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-4, weight_decay=0.0),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=1e-3),
}
PENALTIES = {"l1": {}, "l2": {}, "elastic_net": {"l1_ratio": 0.5}, "group_lasso": {"groups": "rows"}}
STRENGTH = 1e-5


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def variants(forms: bool) -> dict[str, tuple[str, str | None, str | None, str | None]]:
    """name -> (optimizer, mode, penalty, kernel form)."""
    table: dict[str, tuple[str, str | None, str | None, str | None]] = {
        "none": ("sgd", None, None, None),
        "loss-loop": ("sgd", "loss", "l1", None),
    }
    for penalty in PENALTIES:
        table[f"grad-{penalty}"] = ("sgd", "grad", penalty, None)
        table[f"prox-{penalty}"] = ("sgd", "prox", penalty, None)
    for opt in ("adam", "adamw", "adagrad"):
        table[f"none-{opt}"] = (opt, None, None, None)
        table[f"prox-l1-{opt}"] = (opt, "prox", "l1", None)
    if forms:
        for form in kernels.FORMS:
            table[f"grad-l1[{form}]"] = ("sgd", "grad", "l1", form)
            table[f"prox-l1[{form}]"] = ("sgd", "prox", "l1", form)
    return table


def make_step(spec: tuple, widths: list[int], x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt, mode, penalty, form = spec
    torch.manual_seed(0)
    model = mlp(widths).to(x.device)
    optimizer = OPTIMIZERS[opt](model.parameters())
    callback = None
    if mode in ("grad", "prox"):
        reg = make_penalty(penalty, **PENALTIES[penalty])
        callback = RegularizationCallback(reg, STRENGTH, mode=mode, kernel_form=form)
        callback.setup(SimpleNamespace(strategy=object()), model, "fit")
        callback._step_strength = STRENGTH
        if mode == "prox":
            optimizer.register_step_post_hook(callback._after_optimizer_step)
    trainer = SimpleNamespace(  # a step that does not log (lightreg.callbacks.regularization.samples_value)
        current_epoch=0,
        is_last_batch=False,
        max_steps=-1,
        global_step=0,
        log_every_n_steps=0,  # Lightning's rule then logs no step (lightreg.models.logging_steps.logging_step)
    )
    sink = SimpleNamespace(report_penalty=lambda name, value: None)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if mode == "loss":
            reg = 0
            for p in model.parameters():
                if p.ndim >= 2:
                    reg = reg + p.abs().sum()
            loss = loss + STRENGTH * reg
        if callback is not None:
            callback.on_train_batch_start(trainer, sink, None, 0)
        loss.backward()
        if callback is not None:
            callback.on_before_optimizer_step(trainer, model, optimizer)
        optimizer.step()

    return step


def peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated during one step beyond what was held before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    running = peak = 0
    for event in events:
        running += event.self_cpu_memory_usage
        peak = max(peak, running)
    return peak


def run(model_name: str, args: argparse.Namespace, device: torch.device) -> None:
    widths, batch = MODELS[model_name][1 if args.quick else 0]
    x = torch.randn(batch, widths[0], device=device)
    y = torch.randint(0, widths[-1], (batch,), device=device)
    table = variants(args.forms)
    steps = {name: make_step(spec, widths, x, y) for name, spec in table.items()}
    n_params = sum(p.numel() for p in mlp(widths).parameters())
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    # one warm-up step of each (optimizer state, allocator); interleaved repeats, so load changes hit every variant alike
    seconds = time_calls(steps, args.repeats, calls=args.steps, warmup=1, sync=sync)
    times = {v: [1e3 * s for s in t] for v, t in seconds.items()}  # ms per step
    memory = {name: peak_bytes(step, device) for name, step in steps.items()}
    median = {v: statistics.median(t) for v, t in times.items()}
    param_bytes = n_params * 4
    print(
        f"\n{model_name} MLP: {len(widths) - 1} Linear {widths[1]}x{widths[1]}, {n_params / 1e6:.2f} M parameters, "
        f"batch "
        f"{batch}, {device}, {torch.get_num_threads()} threads, median of {args.repeats} x {args.steps} steps, "
        f"load average {os.getloadavg()[0]:.2f}; kernel form by default: {kernels.DEFAULT_FORM}"
    )
    print("| variant | ms/step | ratio | extra peak MiB | % of param bytes |\n|---|---|---|---|---|")
    for name, (opt, *_rest) in table.items():
        base = "none" if opt == "sgd" else f"none-{opt}"
        extra = max(0, memory[name] - memory[base])
        print(
            f"| {name} | {median[name]:.2f} | {median[name] / median[base]:.2f} | {extra / 2**20:.1f} | "
            f"{100 * extra / param_bytes:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="both", choices=["deep", "wide", "both"])
    parser.add_argument("--quick", action="store_true", help="small models (CPU smoke test / CI)")
    parser.add_argument("--forms", action="store_true", help="also time grad/prox L1 in each kernel form")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU (restored after)")
    args = parser.parse_args()
    device = torch.device(args.device)
    with intra_op_threads(args.threads if device.type == "cpu" else None):
        for name in ["deep", "wide"] if args.model == "both" else [args.model]:
            run(name, args, device)


if __name__ == "__main__":
    main()
