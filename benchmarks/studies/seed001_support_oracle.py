"""Seed 001: how much does the network gain from each informative input? The check behind the clusters figures.

For each held-out data seed, the original 10-6-2 network of the seed-001 problem (``experiment=seed001_exact model.hidden_sizes=[6]``, no penalty, only ``optimizer=``
and ``data.rule=`` changed) trained for the preset's 60 epochs on fixed input supports (the other fc1 columns held
at exactly zero: zeroed once, their gradients masked): x1 alone, x0 alone, x0 and x1, x0 and x1 plus two noise
inputs, all ten. A selection method can only be asked to keep x0 where the network does better with it. Also,
after ``--dense-epochs`` epochs of the unpenalized network (the preset's λ ramp starts from such a network), x0's
fc1 column norm against the largest noise column's: a group lasso removes the smaller column first.

    python -m benchmarks.studies.seed001_support_oracle --rule clusters      # 10 seeds, 60 runs, about 1 min on 2 cores
"""

from __future__ import annotations

import argparse

import torch

from benchmarks._common import build_run, cli_config, dense_column_norms, fit, run_jobs, seed_network_run, table

SUPPORTS = {"x1": [1], "x0": [0], "x0,x1": [0, 1], "x0,x1 + 2 noise": [0, 1, 2, 3], "all 10": list(range(10))}


def run(job: tuple[str, str, int, int]) -> dict:
    rule, optimizer, seed, dense_epochs = job
    torch.set_num_threads(1)
    overrides = seed_network_run(optimizer, rule, seed)
    cfg = cli_config(*overrides, dense=True)
    result: dict = {"seed": seed}
    for name, columns in SUPPORTS.items():
        model, dm, callbacks = build_run(cfg)
        weight = model.net.fc1.weight
        mask = torch.zeros_like(weight)
        mask[:, columns] = 1
        with torch.no_grad():
            weight.mul_(mask)
        weight.register_hook(lambda grad, mask=mask: grad * mask)
        figures = fit(model, dm, callbacks, int(cfg.trainer.max_epochs))
        result[name] = (figures["val/loss"], figures["val/acc"])
    norms = dense_column_norms(overrides, dense_epochs)
    result["x0 / largest noise column"] = float(norms[0] / norms[2:].max())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="clusters", choices=("linear", "clusters", "ring"))
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--dense-epochs", type=int, default=10, help="the preset's λ ramp")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        (args.rule, args.optimizer, s, args.dense_epochs) for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    results = sorted(run_jobs(run, jobs, args.workers), key=lambda r: r["seed"])
    print(
        f"rule={args.rule}, optimizer={args.optimizer}: val/loss (val/acc) of the network trained on each input "
        f"support for 60 epochs; x0's fc1 column norm over the largest noise column's after {args.dense_epochs} "
        "dense epochs"
    )
    rows = []
    for r in results:
        cells = [f"{r[name][0]:.3f} ({100 * r[name][1]:.1f})" for name in SUPPORTS]
        gain = r["x1"][0] - r["x0,x1"][0]
        rows.append([r["seed"], *cells, f"{gain:+.3f}", f"{r['x0 / largest noise column']:.2f}"])
    print(table(["seed", *SUPPORTS, "val/loss gain of x0", "x0 / largest noise column"], rows))


if __name__ == "__main__":
    main()
