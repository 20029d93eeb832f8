"""Group lasso under Adam: which per-group prox step? Measured on the seed-001 setup, prox mode (no finish).

Variants of the step after each Adam step (per-entry metric ``s = lr/max(√v̂+ε, λ)``; ProxGen, Yun et al. 2021):
``metric`` (lightreg): the exact prox of ``λ√size‖u_g‖`` in the metric ``diag(1/s)`` (one secular equation per
group); ``group-min``: block soft-threshold with the smallest ``s`` of the group (the previous rule);
``plain-lr``: block soft-threshold with ``lr`` (ignores the preconditioner, ``adaptive=False``).

    python -m benchmarks.studies.group_step_adam --seeds 10 --epochs 60
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from functools import partial

import torch

from benchmarks._common import fit, input_support, run_jobs, table
from lightreg.callbacks import regularizer
from lightreg.data import SyntheticDataModule
from lightreg.models import MLP
from lightreg.penalties import GroupLasso
from lightreg.penalties.functional import block_soft_threshold_, group_min

METRIC_PROX = GroupLasso.prox_


def _group_min_prox(self: GroupLasso, w: torch.Tensor, step) -> torch.Tensor:
    """The previous rule: one scalar step per group, the smallest of its entries' steps."""
    size = w.numel() // w.shape[self.dim]
    if isinstance(step, torch.Tensor):
        step = group_min(step, w, self.dim)
    return block_soft_threshold_(w, step * math.sqrt(size), self.dim)


def run(job: tuple[int, str, float, int]) -> dict:
    seed, variant, lam, epochs = job
    torch.set_num_threads(1)
    GroupLasso.prox_ = torch.no_grad()(_group_min_prox) if variant == "group-min" else METRIC_PROX
    torch.manual_seed(seed)
    dm = SyntheticDataModule(batch_size=64, seed=seed)
    dm.setup("fit")
    model = MLP(
        hidden_sizes=[6],
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=partial(torch.optim.Adam, lr=0.01),
        print_epochs=False,
    )
    callbacks = [
        regularizer(
            "group_lasso",
            lam,
            groups="columns",
            include=["net.fc1.weight"],
            mode="prox",
            adaptive=variant != "plain-lr",
        ),
        regularizer("l2", 0.01, exclude=["net.fc1.weight"], name="l2"),
    ]
    figures = fit(model, dm, callbacks, epochs)
    noise_zero, kept = input_support(model)
    return dict(variant=variant, lam=lam, acc=figures["val/acc"], noise_zero=noise_zero, kept=kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lambdas", default="0.02,0.04")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    variants, lams = ("metric", "group-min", "plain-lr"), [float(x) for x in args.lambdas.split(",")]
    jobs = [(s, v, lam, args.epochs) for s, v, lam in itertools.product(range(args.seeds), variants, lams)]
    results = run_jobs(run, jobs, args.workers)
    rows = []
    for v, lam in itertools.product(variants, lams):
        rs = [r for r in results if (r["variant"], r["lam"]) == (v, lam)]
        rows.append(
            [
                v,
                lam,
                f"{sum(r['noise_zero'] == 8 and r['kept'] == 2 for r in rs)}/{len(rs)}",
                f"{statistics.mean(r['noise_zero'] for r in rs):.1f}",
                f"{statistics.mean(r['kept'] for r in rs):.1f}",
                f"{100 * statistics.mean(r['acc'] for r in rs):.1f}",
            ]
        )
    print(
        f"Adam lr 0.01, batch 64, {args.epochs} epochs, prox mode, group lasso fc1 columns + L2 0.01 rest, {args.seeds} seeds"
    )
    print(
        table(
            ["group step", "λ", "8 noise zero & 2 kept", "mean noise cols zero", "mean informative kept", "val acc %"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
