"""Seed 001 with group MCP / group SCAD (mode=exact): how often exactly x0 and x1 are kept, and at what accuracy.

``python -m train experiment=seed001_exact data.rule=<rule> optimizer=<opt> seed=<s>`` (``--rule``: ring, linear or
clusters) with the preset's group lasso replaced by ``penalty.penalty=<group_mcp|group_scad> +penalty.gamma=<γ>
lambda=<λ>`` (same λ ramp over 10 epochs, finish after epoch 40, 20 refit epochs, L2 on the other weights), over a
λ × γ grid, plus the dense model. Held-out data seeds 100.. (the data set and the initialization change together).
Per seed and optimizer, the (λ, γ) of lowest ``val/loss`` (the penalty is not in val/loss) is the validation choice
(how often each (λ, γ) was chosen is shown beside it); each grid point is also reported.

    python -m benchmarks.studies.seed001_nonconvex                        # 10 seeds × SGD, Adam, Adagrad
    python -m benchmarks.studies.seed001_nonconvex --seeds 2 --lambdas 0.025 --gammas 3   # a quick look
    python -m benchmarks.studies.seed001_nonconvex --rule clusters --out outputs/seed001_nonconvex_clusters.jsonl

Finished runs are appended to ``--out`` (JSON lines); a second call skips them, ``--report`` prints the tables.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import statistics
from pathlib import Path

import torch

from benchmarks._common import build_run, cli_config, fit, run_jobs, support_figures, table
from benchmarks.studies.seed001_selection import RULES, summary


def run(job: tuple[str, str, int, str, float, float]) -> dict:
    rule, optimizer, seed, penalty, lam, gamma = job
    torch.set_num_threads(1)
    overrides = ["experiment=seed001_exact", f"optimizer={optimizer}", f"data.rule={rule}", f"seed={seed}"]
    if penalty != "dense":
        overrides += [f"penalty.penalty={penalty}", f"+penalty.gamma={gamma}", f"penalty.name={penalty}"]
        overrides += [f"lambda={lam}"]
    cfg = cli_config(*overrides, dense=penalty == "dense")
    model, dm, penalties = build_run(cfg)
    figures = fit(model, dm, penalties, int(cfg.trainer.max_epochs))
    return dict(
        rule=rule, opt=optimizer, seed=seed, penalty=penalty, lam=lam, gamma=gamma, **support_figures(model, figures)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="ring", choices=RULES, help="the data.rule of every run")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--optimizers", default="sgd,adam,adagrad")
    parser.add_argument("--penalties", default="group_mcp")
    parser.add_argument("--lambdas", default="0.0125,0.025,0.05")
    parser.add_argument("--gammas", default="3,10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/seed001_nonconvex.jsonl"))
    parser.add_argument("--report", action="store_true", help="print the tables of --out without running")
    args = parser.parse_args()
    opts, pens = args.optimizers.split(","), args.penalties.split(",")
    lams = [float(x) for x in args.lambdas.split(",")]
    gammas = [float(x) for x in args.gammas.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    grid = list(itertools.product(pens, lams, gammas))
    jobs = [(args.rule, o, s, pen, lam, gamma) for pen, lam, gamma in grid for s in seeds for o in opts]
    # dense last: a partial file answers the question first
    jobs += [(args.rule, o, s, "dense", 0.0, 0.0) for s in seeds for o in opts]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    key = lambda r: (r.get("rule", "ring"), r["opt"], r["seed"], r["penalty"], r["lam"], r["gamma"])  # noqa: E731
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.is_file() else []
    todo = [] if args.report else [job for job in jobs if job not in {key(r) for r in done}]
    with args.out.open("a") as out:

        def append(result: dict) -> None:
            out.write(json.dumps(result) + "\n")
            out.flush()

        run_jobs(run, todo, args.workers, on_result=append)
    wanted = set(jobs)
    results = [r for r in (json.loads(line) for line in args.out.read_text().splitlines()) if key(r) in wanted]
    dense = {
        o: statistics.mean(r["acc"] for r in results if (r["opt"], r["penalty"]) == (o, "dense"))
        for o in opts
        if any((r["opt"], r["penalty"]) == (o, "dense") for r in results)
    }
    best = max(dense.values(), default=float("nan"))
    rows = []
    for o in opts:
        if o in dense:
            rows.append([f"{o} dense", "-", "10.0", f"{100 * dense[o]:.1f}", f"{100 * (dense[o] - best):+.1f}"])
        for pen, lam, gamma in grid:
            rs = [r for r in results if (r["opt"], r["penalty"], r["lam"], r["gamma"]) == (o, pen, lam, gamma)]
            if rs:
                rows.append([f"{o} {pen} λ={lam:g} γ={gamma:g}", *summary(rs, best)])
        for pen in pens:
            chosen = []
            for s in seeds:
                cands = [r for r in results if (r["opt"], r["seed"], r["penalty"]) == (o, s, pen)]
                if len(cands) == len(lams) * len(gammas):
                    chosen.append(min(cands, key=lambda r: r["val_loss"]))
            if chosen:
                picks = collections.Counter((r["lam"], r["gamma"]) for r in chosen)
                picked = ", ".join(f"{lam:g}/{gamma:g}: {n}" for (lam, gamma), n in sorted(picks.items()))
                rows.append([f"{o} {pen}, (λ, γ) by val/loss ({picked})", *summary(chosen, best)])
    print(
        f"{args.rule}, experiment=seed001_exact with the group penalty replaced (λ ramp 10 epochs, finish after 40, "
        f"20 refit epochs; batch 64); seeds {seeds[0]}-{seeds[-1]}; best dense val acc {100 * best:.1f} %"
    )
    print(table(["model", "x0,x1 exactly", "inputs kept", "val acc %", "vs best dense"], rows))


if __name__ == "__main__":
    main()
