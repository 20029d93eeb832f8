"""Seed 001: how many of the 8 uninformative input columns end exactly zero with plain L1 prox?

Setup: `data=synthetic model=mlp model.hidden_sizes=[6]`, L1 (prox, elementwise) on net.fc1.weight only,
batch 64, constant step. A column is dropped when all 6 of its weights are exactly 0.

    python -m benchmarks.studies.seed001_columns [--epochs 50] [--seeds 0]
"""

from __future__ import annotations

import argparse
import functools

import lightning as L
import torch
from rich.console import Console
from rich.table import Table

from benchmarks._common import fit, input_support
from lightreg.callbacks import RegularizationCallback
from lightreg.data import SyntheticDataModule
from lightreg.models import MLP
from lightreg.penalties import L1

OPTIMIZERS = {
    "sgd": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    "adam": functools.partial(torch.optim.Adam, lr=0.01),
    "adagrad": functools.partial(torch.optim.Adagrad, lr=0.1),
}


def run(optimizer: str, strength: float, epochs: int, seed: int) -> tuple[int, bool, float]:
    """(uninformative columns exactly zero, both informative kept, val accuracy)."""
    L.seed_everything(seed, verbose=False)
    dm = SyntheticDataModule(batch_size=64, seed=seed)
    dm.setup("fit")
    model = MLP(
        hidden_sizes=[6],
        input_shape=dm.input_shape,
        num_classes=2,
        task="binary",
        optimizer=OPTIMIZERS[optimizer],
        print_epochs=False,
    )
    callbacks = [RegularizationCallback(L1(), strength, include="net.fc1.weight")] if strength > 0 else []
    figures = fit(model, dm, callbacks, epochs)
    noise_zero, kept = input_support(model)
    return noise_zero, kept == 2, figures["val/acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.003, 0.01, 0.02])
    args = parser.parse_args()
    table = Table(title=f"Seed-001 setup, L1 prox on net.fc1.weight, batch 64, {args.epochs} epochs")
    for column in ("optimizer", "lambda", "seed", "noise columns zero (of 8)", "x0, x1 kept", "val/acc"):
        table.add_column(column, justify="right")
    for optimizer in OPTIMIZERS:
        for strength in args.lambdas:
            for seed in args.seeds:
                zeros, kept, acc = run(optimizer, strength, args.epochs, seed)
                table.add_row(optimizer, f"{strength:g}", str(seed), str(zeros), "yes" if kept else "no", f"{acc:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
