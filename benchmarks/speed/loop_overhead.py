"""What the training loop costs: a hand-written PyTorch loop beside ``lightreg`` fits of the same problem, as ratios.

Problem: logistic regression on sklearn digits (1437 train / 360 val rows, 64 features, 10 classes), SGD lr 0.1
momentum 0.9, batch 64, a validation pass per epoch, ``--epochs`` epochs (20 as ``python -m train``). Variants:

  hand       index slicing over a seeded permutation, ``model(x)``, cross entropy, backward, SGD; a validation pass
  default    ``lightreg.cli.pipeline.train`` with the default callbacks (2 checkpoints, progress bar) and loggers
             (CSV + TensorBoard), as ``python -m train``
  l1         default + ``+penalty=l1 lambda=0.001`` (prox after every step, its sparsity monitor)
  bare       ``callbacks=none logger=none trainer.enable_progress_bar=false +trainer.enable_checkpointing=false
             +trainer.num_sanity_val_steps=0 model.print_epochs=false``: what ``lightning`` leaves out, left out
  lightning  the floor of Lightning's loop: a minimal LightningModule (forward, cross entropy, no metrics, no logs)
             fit by ``L.Trainer`` with loggers, checkpoints, progress bar, summary and sanity check off
  lightning+logs  the same module reporting what ``bare`` reports on its epoch line (train loss, val loss, val
             accuracy per epoch) as Lightning's docs show: ``self.log(..., on_epoch=True)`` in its steps
  the rest   one piece of ``default`` removed at a time (``--split``), to say where the time goes

Every lightreg variant runs in this process through Hydra's compose API (same code path as the CLI, no start-up
cost); the time is the ``fit_seconds`` of ``metrics.json`` (``trainer.fit`` only). Variants are interleaved over
``--repeats`` rounds; medians. Ratios are to the hand-written loop and to ``lightning`` of the same round-robin.
``--hooks`` then fits every Lightning variant ``--repeats`` times more under :class:`HookTimes` and prints the median
ms per epoch of each hook Lightning times (``[Callback]...``, ``[LightningModule]...``, ``[Strategy]...``, the loops'
own actions; nested: ``run_training_epoch`` holds the steps): where a variant's extra time goes.

    python -m benchmarks.speed.loop_overhead [--repeats 5] [--epochs 20] [--split] [--hooks] [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.profilers import Profiler
from torch import nn

from benchmarks._common import table, time_calls
from lightreg.solvers.threads import intra_op_threads

VARIANTS: dict[str, list[str]] = {
    "default": [],
    "l1": ["+penalty=l1", "lambda=0.001"],
    # as the ``lightning`` floor: no callbacks, loggers, checkpoints, sanity validation or epoch lines
    "bare": [
        "callbacks=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false",
        "+trainer.num_sanity_val_steps=0",
        "model.print_epochs=false",
    ],
}
SPLIT: dict[str, list[str]] = {
    "no progress bar": ["~callbacks.progress_bar", "trainer.enable_progress_bar=false"],
    "bar redrawn every batch": ["callbacks.progress_bar.refresh_rate=1"],
    "no checkpoints": ["~callbacks.model_checkpoint", "~callbacks.last_checkpoint"],
    "last.ckpt every epoch": ["callbacks.last_checkpoint.every_n_epochs=1"],
    "no loggers": ["logger=none"],
    "no epoch print": ["model.print_epochs=false"],
    "l1, no monitor file": [
        "+penalty=l1",
        "lambda=0.001",
        "+callbacks.sparsity._target_=lightreg.callbacks.SparsityMonitor",
        "+callbacks.sparsity.filename=null",
    ],
}


class HookTimes(Profiler):
    """A Lightning profiler that only sums the seconds of each action it is told of; the latest one built is
    :attr:`latest` (a lightreg fit builds it from its trainer config: ``+trainer.profiler._target_=...``)."""

    latest: HookTimes | None = None

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}
        type(self).latest = self

    def start(self, action_name: str) -> None:
        self._started[action_name] = time.perf_counter()

    def stop(self, action_name: str) -> None:
        started = self._started.pop(action_name, None)
        if started is not None:
            self.seconds[action_name] = self.seconds.get(action_name, 0.0) + time.perf_counter() - started


def _hook_times() -> type[HookTimes]:
    """The :class:`HookTimes` a Hydra ``_target_`` names (run as ``python -m``, this file is ``__main__``, and Hydra
    imports it again as ``benchmarks.speed.loop_overhead``)."""
    return importlib.import_module("benchmarks.speed.loop_overhead").HookTimes


def hand_loop(epochs: int, batch_size: int, data: tuple[torch.Tensor, ...]) -> float:
    """Seconds of the hand-written loop (the floor every framework pays on top of)."""
    x_tr, y_tr, x_va, y_va = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x_tr.shape[1], 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(epoch))
        model.train()
        for start in range(0, len(x_tr), batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            correct = 0
            for start in range(0, len(x_va), batch_size):
                out = model(x_va[start : start + batch_size])
                correct += int((out.argmax(1) == y_va[start : start + batch_size]).sum())
    return time.perf_counter() - started


class _Minimal:
    """Built lazily (Lightning imports slowly): the least a LightningModule can do for this problem."""

    @staticmethod
    def fit(
        epochs: int,
        batch_size: int,
        data: tuple[torch.Tensor, ...],
        profiler: Profiler | None = None,
        logged: bool = False,
    ) -> float:
        """``logged``: the module also reports what lightreg's epoch line does (the epoch's train loss, val loss and
        val accuracy) the way Lightning's docs show it: ``self.log(..., on_epoch=True)`` in the steps."""
        import lightning as L

        from lightreg.data.loader import TensorBatches

        class Module(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.net = nn.Sequential(nn.Flatten(), nn.Linear(data[0].shape[1], 10))

            def training_step(self, batch, batch_idx):
                loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
                if logged:
                    self.log("train/loss", loss, on_step=False, on_epoch=True)
                return loss

            def validation_step(self, batch, batch_idx):
                out = self.net(batch[0])
                loss = nn.functional.cross_entropy(out, batch[1])
                if logged:
                    self.log("val/loss", loss, on_epoch=True)
                    self.log("val/acc", (out.argmax(1) == batch[1]).float().mean(), on_epoch=True)
                return loss

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

        torch.manual_seed(0)
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            accelerator="cpu",
            profiler=profiler,
        )
        train = TensorBatches(data[0], data[1], batch_size=batch_size, shuffle=True)
        val = TensorBatches(data[2], data[3], batch_size=batch_size)
        started = time.perf_counter()
        trainer.fit(Module(), train, val)
        return time.perf_counter() - started


def lightreg_fit(overrides: list[str], epochs: int, out: Path) -> float:
    from hydra import compose, initialize_config_module

    from lightreg.cli.pipeline import train

    with initialize_config_module("lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"trainer.max_epochs={epochs}", f"paths.output_dir={out}", *overrides])
    return float(train(cfg)["fit_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--split", action="store_true", help="also time the default run minus one piece at a time")
    parser.add_argument("--hooks", action="store_true", help="then the ms per epoch of each hook Lightning times")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat, no split (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.split = 1, 2, False
    from lightreg.data import SklearnDataModule

    dm = SklearnDataModule(name="digits", batch_size=64, seed=0)
    dm.setup("fit")
    data = (dm.x_train, dm.y_train, dm.x_val, dm.y_val)
    variants = {**VARIANTS, **(SPLIT if args.split else {})}
    # one intra-op thread throughout, as `python -m train` uses for a model this small (num_threads=auto)
    with tempfile.TemporaryDirectory() as tmp, intra_op_threads(1):
        runs = itertools.count(1)  # one output dir per lightreg fit
        fits = {
            "hand": lambda: hand_loop(args.epochs, 64, data),
            "lightning": lambda: _Minimal.fit(args.epochs, 64, data),
            "lightning+logs": lambda: _Minimal.fit(args.epochs, 64, data, logged=True),
            **{
                name: lambda overrides=overrides: lightreg_fit(overrides, args.epochs, Path(tmp) / str(next(runs)))
                for name, overrides in variants.items()
            },
        }
        lightreg_fit(VARIANTS["bare"], 1, Path(tmp) / "warm")  # first-call costs (imports, compose) out of the figures
        # interleaved: load changes hit every variant alike; each fit returns its own seconds (the fit alone)
        times = time_calls(fits, args.repeats, returns_seconds=True)
        hooks = hook_times(variants, args.repeats, args.epochs, data, Path(tmp)) if args.hooks else None
        threads = torch.get_num_threads()
    median = {v: statistics.median(t) for v, t in times.items()}
    load = os.getloadavg()[0]
    print(
        f"digits, logistic regression, batch 64, {args.epochs} epochs, median of {args.repeats}; "
        f"{os.cpu_count()} CPUs, {threads} torch thread(s), load average {load:.2f} at the end"
    )
    rows = [
        [
            v,
            f"{median[v]:.3f}",
            f"{median[v] / args.epochs * 1e3:.1f}",
            f"{median[v] / median['hand']:.1f}x",
            f"{median[v] / median['lightning']:.2f}x",
            f"{median[v] / median['lightning+logs']:.2f}x",
        ]
        for v in times
    ]
    print(table(["variant", "fit s", "ms/epoch", "vs hand", "vs lightning", "vs lightning+logs"], rows))
    if hooks is not None:
        print(f"\nms per epoch of each hook (median of {args.repeats} more fits under HookTimes; >= 0.05 in a variant)")
        names = sorted(
            {a for per in hooks.values() for a in per}, key=lambda a: -max(p.get(a, 0) for p in hooks.values())
        )
        shown = [a for a in names if max(p.get(a, 0.0) for p in hooks.values()) >= 0.05]
        cells = [[a[:90], *(f"{hooks[v].get(a, 0.0):.2f}" for v in hooks)] for a in shown]
        print(table(["action", *hooks], cells))


def hook_times(
    variants: dict[str, list[str]], repeats: int, epochs: int, data: tuple[torch.Tensor, ...], out: Path
) -> dict[str, dict[str, float]]:
    """``{variant: {action: median ms per epoch}}`` of ``lightning`` and every lightreg variant, interleaved."""
    profiler = _hook_times()
    runs = itertools.count(1)
    target = f"+trainer.profiler._target_={profiler.__module__}.{profiler.__qualname__}"

    def one(name: str) -> dict[str, float]:
        if name == "lightning":
            _Minimal.fit(epochs, 64, data, profiler())
        else:
            lightreg_fit([*variants[name], target], epochs, out / f"hooks{next(runs)}")
        assert profiler.latest is not None
        return profiler.latest.seconds

    names = ["lightning", *variants]
    rounds = [[one(name) for name in names] for _ in range(repeats)]
    return {
        name: {
            action: statistics.median(r[i].get(action, 0.0) for r in rounds) / epochs * 1e3
            for action in {a for r in rounds for a in r[i]}
        }
        for i, name in enumerate(names)
    }


if __name__ == "__main__":
    main()
