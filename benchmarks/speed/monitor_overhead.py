"""Cost of the SparsityMonitor on a deep MLP (42 weight tensors, ~2.65 M weights), as a ratio to the training time of one epoch.

Model: ``MLP(hidden_sizes=[256] * 41)`` on 100 inputs and 10 classes: 42 weight tensors, 2 649 600 weights
(2.66 M parameters with the biases), batch 128, plain SGD. Two measurements, each the median of ``--repeats``:

(a) in isolation: ``SparsityMonitor.measure()`` (every figure the monitor logs at an epoch end: zeros, |w| <= atol,
    dead units, dropped inputs, churn, selected inputs; one device sync) against one SGD step (forward, backward,
    step); the epoch-end ratio is ``measure / (steps_per_epoch · step)``;
(b) with ``--lightning``: wall time of training epochs (``--steps`` batches, no validation, no logger) in one fit
    where the monitor runs on every other epoch (``pl_module.log`` calls included); ratio = with / without - 1.

``summary()`` (the end-of-run extras: |w| histograms and the feature list for sparsity.json) runs once per fit and
is shown apart. The monitor does nothing per step unless ``every_n_steps`` is set.

    python -m benchmarks.speed.monitor_overhead [--steps 50] [--repeats 7] [--device cpu|cuda] [--lightning]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
import warnings
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import time_calls
from lightreg.callbacks import SparsityMonitor
from lightreg.models import MLP

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

INPUTS, CLASSES, WIDTH, HIDDEN_LAYERS, BATCH = 100, 10, 256, 41, 128


def deep_mlp() -> MLP:
    return MLP(
        hidden_sizes=[WIDTH] * HIDDEN_LAYERS,
        input_shape=(INPUTS,),
        num_classes=CLASSES,
        print_epochs=False,
        optimizer=partial(torch.optim.SGD, lr=1e-3),
    )


class EpochTimer(L.Callback):
    """Wall time of each training epoch (last in the callback list, so it includes the other callbacks' epoch ends)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._started)


def isolated(device: str, steps: int, repeats: int) -> dict[str, float]:
    model = deep_mlp().to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, INPUTS, device=device), torch.randint(0, CLASSES, (BATCH,), device=device)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    monitor = SparsityMonitor()
    trainer = L.Trainer(callbacks=[monitor], logger=False, accelerator=device, enable_progress_bar=False)
    monitor.on_fit_start(trainer, model)
    # one warm-up call of each, then interleaved rounds, so that all see the same load on a shared machine
    seconds = time_calls(
        {"step": step, "measure": monitor.measure, "summary": lambda: monitor.summary(trainer)},
        repeats,
        calls={"step": 5, "measure": 1, "summary": 1},
        warmup=1,
        sync=sync,
    )
    step_ms, measure_ms, summary_ms = (1e3 * statistics.median(column) for column in seconds.values())
    in_steps = statistics.median(m / s for s, m in zip(seconds["step"], seconds["measure"]))
    return {
        "step_ms": step_ms,
        "measure_ms": measure_ms,
        "summary_ms": summary_ms,
        "in_steps": in_steps,
        "epoch_ratio": in_steps / steps,
        "weights": sum(p.numel() for p in monitor.params.values()),
        "tensors": len(monitor.params),
    }


class EveryOtherEpoch(SparsityMonitor):
    """The monitor on odd epochs only: epochs with and without it alternate in one fit, under the same machine load."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch % 2:
            super().on_train_epoch_end(trainer, pl_module)


def in_lightning(device: str, steps: int, repeats: int) -> dict[str, float]:
    data = TensorDataset(torch.randn(steps * BATCH, INPUTS), torch.randint(0, CLASSES, (steps * BATCH,)))
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=2 * repeats + 2,
        callbacks=[EveryOtherEpoch(filename=None), timer],
        logger=False,
        accelerator=device,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(deep_mlp(), train_dataloaders=DataLoader(data, batch_size=BATCH, shuffle=True))
    seconds = timer.seconds[2:]  # the first pair = warm-up
    without, with_monitor = (1e3 * statistics.median(seconds[parity::2]) for parity in (0, 1))
    return {"epoch_ms_without": without, "epoch_ms_with": with_monitor, "ratio": with_monitor / without - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--lightning", action="store_true", help="also time whole Lightning epochs with and without")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}; epoch = {args.steps} steps of batch {BATCH}; median of {args.repeats}"
    )
    a = isolated(args.device, args.steps, args.repeats)
    print(f"deep MLP: {a['tensors']} weight tensors, {a['weights']:,} weights")
    print(
        f"(a) one SGD step {a['step_ms']:.2f} ms; monitor epoch-end figures {a['measure_ms']:.2f} ms "
        f"= {a['in_steps']:.3f} steps = {100 * a['epoch_ratio']:.3f}% of a {args.steps}-step epoch; "
        f"end-of-run summary (histograms) {a['summary_ms']:.1f} ms once per fit"
    )
    if not args.lightning:
        return
    b = in_lightning(args.device, args.steps, args.repeats)
    print(
        f"(b) Lightning epoch without monitor {b['epoch_ms_without']:.1f} ms, with {b['epoch_ms_with']:.1f} ms: "
        f"overhead {100 * b['ratio']:+.2f}% (noise included)"
    )


if __name__ == "__main__":
    main()
