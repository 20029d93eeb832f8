"""Seed-004 setup: fraction of exact zeros per layer, prox vs exact, at the same λ, beside the dense accuracy.

Data: SyntheticDataModule (the seed-001 data), MLP [50, 30, 10], L1 on every weight matrix, batch 64. The
(optimizer, lr, λ) triples are those of tests/callbacks/test_seed004_contrast.py. Figures are means over ``--seeds``.

    python -m benchmarks.studies.exact_support_seed004 --seeds 3 --epochs 30
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from functools import partial

import torch

from benchmarks._common import fit, run_jobs, table
from lightreg.callbacks import regularizer
from lightreg.data import SyntheticDataModule
from lightreg.models import MLP

SETUPS = {
    "adam": (partial(torch.optim.Adam, lr=1e-3), 3e-3),
    "sgd": (partial(torch.optim.SGD, lr=0.05, momentum=0.9), 3e-2),
    "adagrad": (partial(torch.optim.Adagrad, lr=0.05), 3e-3),
}
LAYERS = ("fc1", "fc2", "fc3", "out")


def run(job: tuple[int, str, str, int]) -> dict:
    seed, opt, mode, epochs = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    dm = SyntheticDataModule(batch_size=64, seed=seed)
    dm.setup("fit")
    factory, lam = SETUPS[opt]
    model = MLP(
        hidden_sizes=[50, 30, 10],
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=factory,
        print_epochs=False,
    )
    callbacks = [] if mode == "dense" else [regularizer("l1", lam, mode=mode)]
    figures = fit(model, dm, callbacks, epochs)
    zeros = {name: float((getattr(model.net, name).weight == 0).float().mean()) for name in LAYERS}
    return dict(seed=seed, opt=opt, mode=mode, lam=lam, acc=figures["val/acc"], seconds=figures["seconds"], **zeros)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = list(itertools.product(range(args.seeds), SETUPS, ("dense", "prox", "exact"), [args.epochs]))
    results = run_jobs(run, jobs, args.workers)
    rows = []
    for opt, mode in itertools.product(SETUPS, ("dense", "prox", "exact")):
        rs = [r for r in results if (r["opt"], r["mode"]) == (opt, mode)]
        zeros = [f"{100 * statistics.mean(r[name] for r in rs):.1f}" for name in LAYERS]
        rows.append(
            [
                opt,
                mode,
                "-" if mode == "dense" else rs[0]["lam"],
                *zeros,
                f"{100 * statistics.mean(r['acc'] for r in rs):.1f}",
                f"{statistics.mean(r['seconds'] for r in rs):.1f}",
            ]
        )
    print(f"MLP [50, 30, 10], L1 on every weight matrix, batch 64, {args.epochs} epochs, mean of {args.seeds} seeds")
    print(table(["optimizer", "mode", "λ", *(f"% zeros {n}" for n in LAYERS), "val acc %", "s/run"], rows))


if __name__ == "__main__":
    main()
