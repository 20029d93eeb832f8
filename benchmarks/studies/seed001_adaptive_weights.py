"""Seed 001: would an adaptive group lasso keep x0 and x1 more often? A probe for the clusters rule, not a feature.

The adaptive group lasso (Wang & Leng 2008) weighs each group by ``(‖ŵ_g‖ / mean ‖ŵ‖)^(−γ)`` from a first
estimate ŵ, so strong inputs are penalized less and weak ones more. For the input columns of the first layer that
equals the plain group lasso on rescaled inputs, ``x_j · (‖ŵ_j‖ / mean ‖ŵ‖)^γ``, which this probe uses: ŵ = the
fc1 columns after ``--dense-epochs`` unpenalized epochs of the original 10-6-2 network of the seed-001 problem, then one ``experiment=seed001_exact``
run (λ ramp, finish, refit) on the rescaled data per λ. Printed per λ: in how many seeds exactly x0 and x1 are kept,
the noise columns kept, and val/acc, beside the same run on the original inputs.

    python -m benchmarks.studies.seed001_adaptive_weights --rule clusters --lambdas 0.04,0.02,0.01   # 60 runs, ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks._common import (
    build_run,
    cli_config,
    dense_column_norms,
    fit,
    input_support,
    run_jobs,
    seed_network_run,
    table,
)


def run(job: tuple[str, str, int, float, float, int]) -> dict:
    rule, optimizer, seed, lam, gamma, dense_epochs = job
    torch.set_num_threads(1)
    overrides = seed_network_run(optimizer, rule, seed)
    scale = None
    if gamma > 0:
        norms = dense_column_norms(overrides, dense_epochs)
        scale = (norms / norms.mean()) ** gamma
    cfg = cli_config(*overrides, f"lambda={lam}")
    model, dm, callbacks = build_run(cfg)
    if scale is not None:  # setup() keeps tensors that are already there
        dm.x_train, dm.x_val = dm.x_train * scale, dm.x_val * scale
    figures = fit(model, dm, callbacks, int(cfg.trainer.max_epochs))
    noise_zero, kept = input_support(model)
    return dict(seed=seed, lam=lam, gamma=gamma, exact=noise_zero == 8 and kept == 2, noise=8 - noise_zero,
                informative=kept, acc=figures["val/acc"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="clusters", choices=("linear", "clusters", "ring"))
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--lambdas", default="0.04,0.02,0.01")
    parser.add_argument("--gamma", type=float, default=1.0, help="the adaptive weights' exponent γ > 0")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--dense-epochs", type=int, default=10, help="epochs of the first estimate ŵ")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    lambdas = [float(x) for x in args.lambdas.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [
        (args.rule, args.optimizer, s, lam, gamma, args.dense_epochs)
        for lam in lambdas
        for gamma in (0.0, args.gamma)
        for s in seeds
    ]
    results = run_jobs(run, jobs, args.workers)
    print(
        f"rule={args.rule}, optimizer={args.optimizer}, seeds {seeds[0]}-{seeds[-1]}: experiment=seed001_exact at each "
        f"λ on the original inputs (plain) and on inputs rescaled by the fc1 column norms after {args.dense_epochs} "
        f"dense epochs, γ = {args.gamma:g} (adaptive)"
    )
    rows = []
    for lam in lambdas:
        for gamma, label in ((0.0, "plain"), (args.gamma, "adaptive")):
            rs = [r for r in results if r["lam"] == lam and r["gamma"] == gamma]
            rows.append(
                [
                    f"{lam:g}",
                    label,
                    f"{sum(r['exact'] for r in rs)}/{len(rs)}",
                    f"{statistics.mean(r['noise'] for r in rs):.1f}",
                    f"{statistics.mean(r['informative'] for r in rs):.1f}",
                    f"{100 * statistics.mean(r['acc'] for r in rs):.1f}",
                ]
            )
    print(table(["λ", "group lasso", "x0,x1 exactly", "noise inputs kept", "informative kept", "val acc %"], rows))


if __name__ == "__main__":
    main()
