"""Seed-001 setup: do the 8 uninformative input columns end exactly zero, with both informative ones kept?

Data: SyntheticDataModule (10 standardized features, x0 and x1 informative, 800 train / 200 val), MLP 10-6-2
(one logit), batch 64. Penalty: group lasso over the input columns of ``net.fc1.weight`` (strength λ) plus L2
(strength ``--l2``) on the other weights, so the objective has a minimizer (with ``net.fc1`` alone penalized,
ReLU rescaling ``fc1/c, out·c`` lowers the penalty for ever; ``--l2 0`` shows it). For every seed, optimizer
(SGD momentum 0.9 lr 0.1 / Adam lr 0.01), mode (``prox`` / ``exact``) and λ: one training run.

    python -m benchmarks.studies.exact_support_seed001 --seeds 10 --epochs 100
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import torch

from benchmarks._common import OPTIMIZERS, fit, input_support, run_jobs, table
from lightreg.callbacks import regularizer
from lightreg.data import SyntheticDataModule
from lightreg.models import MLP


def run(job: tuple[int, str, str, float, float, int, str, bool]) -> dict:
    seed, opt, mode, lam, l2, epochs, rule, adaptive = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    dm = SyntheticDataModule(batch_size=64, seed=seed, rule=rule)
    dm.setup("fit")
    model = MLP(
        hidden_sizes=[6],
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=OPTIMIZERS[opt],
        print_epochs=False,
    )
    callbacks = []
    if lam > 0:
        callbacks.append(
            regularizer("group_lasso", lam, groups="columns", include=["net.fc1.weight"], mode=mode, adaptive=adaptive)
        )
        if l2 > 0:
            callbacks.append(regularizer("l2", l2, exclude=["net.fc1.weight"], name="l2"))
    figures = fit(model, dm, callbacks, epochs)
    noise_zero, kept = input_support(model)
    return dict(
        seed=seed,
        opt=opt,
        mode=mode,
        lam=lam,
        acc=figures["val/acc"],
        noise_zero=noise_zero,
        kept=kept,
        seconds=figures["seconds"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lambdas", default="0.01,0.02,0.04")
    parser.add_argument("--l2", type=float, default=0.01)
    parser.add_argument("--rule", default="linear", choices=["linear", "clusters", "ring"])
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--modes", default="prox,exact")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-adaptive", action="store_true", help="prox with plain lr·λ (penalty.adaptive=false)")
    args = parser.parse_args()
    lams = [float(x) for x in args.lambdas.split(",")]
    opts, modes = args.optimizers.split(","), args.modes.split(",")
    adaptive = not args.no_adaptive
    jobs = [(s, o, "prox", 0.0, 0.0, args.epochs, args.rule, adaptive) for s in range(args.seeds) for o in opts]
    jobs += [
        (s, o, m, lam, args.l2, args.epochs, args.rule, adaptive)
        for s, o, m, lam in itertools.product(range(args.seeds), opts, modes, lams)
    ]
    results = run_jobs(run, jobs, args.workers)
    dense = {o: statistics.mean(r["acc"] for r in results if r["lam"] == 0 and r["opt"] == o) for o in opts}
    best = max(dense.values())
    rows = [
        [
            o,
            "dense",
            "-",
            "-",
            "-",
            f"{100 * dense[o]:.1f}",
            "-",
            f"{statistics.mean(r['seconds'] for r in results if r['lam'] == 0 and r['opt'] == o):.1f}",
        ]
        for o in opts
    ]
    for o, m, lam in itertools.product(opts, modes, lams):
        rs = [r for r in results if (r["opt"], r["mode"], r["lam"]) == (o, m, lam)]
        success = sum(r["noise_zero"] == 8 and r["kept"] == 2 for r in rs)
        acc = statistics.mean(r["acc"] for r in rs)
        rows.append(
            [
                o,
                m,
                lam,
                f"{success}/{len(rs)}",
                f"{statistics.mean(r['noise_zero'] for r in rs):.1f}",
                f"{100 * acc:.1f}",
                f"{100 * (acc - best):+.1f}",
                f"{statistics.mean(r['seconds'] for r in rs):.1f}",
            ]
        )
    print(
        f"rule={args.rule} epochs={args.epochs} batch=64 group lasso on fc1 columns + L2 {args.l2:g} on the rest; "
        f"adaptive={adaptive}; "
        f"{args.seeds} seeds; best dense val acc {100 * best:.1f}"
    )
    print(
        table(
            [
                "optimizer",
                "mode",
                "λ",
                "8 noise zero & 2 kept",
                "mean noise cols zero",
                "val acc %",
                "vs best dense",
                "s/run",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
