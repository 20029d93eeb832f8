"""Cost of a penalty per training step, as a ratio to the unregularized step, measured side by side.

Deep MLP of DESIGN.md §5 (42 weight tensors, ~2.65 M parameters), batch 128, SGD. Variants:
  none          plain step (forward, backward, SGD)
  loss-loop     L1 written into the loss by hand: `loss + λ·Σ p.abs().sum()` (the usual forum answer)
  grad          RegularizationCallback(L1, mode="grad"): λ·sign(w) added to .grad
  prox          RegularizationCallback(L1, mode="prox"): soft-threshold after the step (SGD)
  prox-adam     the same with Adam (per-entry threshold in Adam's metric) vs a plain Adam step
Every callback variant also computes λ·R once per step for logging, as in training.

    python benchmarks/penalty_overhead.py [--repeats 7] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch
from torch import nn

from lightreg.callbacks import RegularizationCallback
from lightreg.penalties import L1, penalty_value

WIDTHS = [784] + [256] * 41 + [10]  # 42 Linear layers


def deep_mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(WIDTHS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_step(variant: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    adam = variant.endswith("adam")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if adam else torch.optim.SGD(model.parameters(), lr=1e-3)
    strength = 1e-5
    callback = None
    if variant.startswith(("grad", "prox")):
        callback = RegularizationCallback(L1(), strength, mode=variant.split("-")[0])
        callback.setup(SimpleNamespace(strategy=object()), model, "fit")
        callback._step_strength = strength
        if callback.mode == "prox":
            optimizer.register_step_post_hook(callback._after_optimizer_step)
    trainer = SimpleNamespace(current_epoch=0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if variant == "loss-loop":
            reg = 0
            for p in model.parameters():
                if p.ndim >= 2:
                    reg = reg + p.abs().sum()
            loss = loss + strength * reg
        if callback is not None:
            penalty_value([callback.as_term()])
        loss.backward()
        if callback is not None:
            callback.on_before_optimizer_step(trainer, model, optimizer)
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    variants = ["none", "loss-loop", "grad", "prox", "none-adam", "prox-adam"]
    steps = {v: make_step(v, deep_mlp(), x, y) for v in variants}
    n_params = sum(p.numel() for p in deep_mlp().parameters())
    for step in steps.values():  # warm-up (Adam state, allocator)
        step()
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for v, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[v].append((time.perf_counter() - start) / args.steps * 1e3)
    median = {v: statistics.median(t) for v, t in times.items()}
    print(f"deep MLP: {len(WIDTHS) - 1} weight tensors, {n_params / 1e6:.2f} M parameters, batch 128, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} x {args.steps} steps")
    print(f"{'variant':<12} {'ms/step':>8} {'ratio':>7}")
    for v in variants:
        base = median["none-adam" if v.endswith("adam") else "none"]
        print(f"{v:<12} {median[v]:8.2f} {median[v] / base:7.2f}")


if __name__ == "__main__":
    main()
