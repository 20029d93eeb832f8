"""Seed 001 with every optimizer: how often exactly x0 and x1 are kept, and at what accuracy, beside LassoNet.

For the three ``data=synthetic`` rules (linear, clusters, ring) × SGD, Adam, AdamW, Adagrad, RMSprop × N held-out
data seeds (``seed=<first-seed + k>``: the data set and the initialization change together), one run of
``python -m train experiment=seed001_exact optimizer=<opt> data.rule=<rule> seed=<s>`` (the CLI's composed
config, built as the pipeline builds it; only ``optimizer=`` changed) with the preset's ``exact`` (λ ramp over 10
epochs, finish after epoch 40, 20 refit epochs) and with ``penalty.mode=prox`` (the same ramp, no finish, no refit),
plus the dense model (no penalty) for reference. Where one λ cannot do it (``clusters``),
``--grid`` adds ``exact`` runs at smaller λ and picks per seed the λ of lowest ``val/loss`` (the penalty is not
in val/loss). LassoNet (``benchmarks/references/lassonet_seed001.py``, ``pip install lassonet``) on the same data: its
best-validation model and the first model on its path with at most 2 features.

    python -m benchmarks.studies.seed001_selection                 # 10 seeds: 550 runs (8 min on 2 cores) + 30 LassoNet paths (9 min)
    python -m benchmarks.studies.seed001_selection --quick         # 2 seeds, linear and ring, no LassoNet

Every finished run is appended to ``--out`` (JSON lines); a second call skips the runs already there, so an
interrupted benchmark resumes, and ``--report`` prints the tables of what is there. Runs go in the order
exact, dense, grid rule by rule (ring first), then prox, then LassoNet, so a partial file answers the main
question first; a run with more ``--seeds`` adds only the new seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from benchmarks._common import build_run, cli_config, fit, run_jobs, support_figures, table

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
RULES = ("ring", "linear", "clusters")
PRESET_LAMBDA = float(cli_config("experiment=seed001_exact")["lambda"])


def run(job: tuple[str, str, int, str, float]) -> dict:
    rule, optimizer, seed, mode, lam = job
    if mode == "lassonet":
        return lassonet((seed, rule))
    torch.set_num_threads(1)
    overrides = ["experiment=seed001_exact", f"optimizer={optimizer}", f"data.rule={rule}", f"seed={seed}"]
    if mode != "dense":
        overrides += [f"penalty.mode={mode}", f"lambda={lam}"]
        overrides += ["penalty.refit_epochs=0"] if mode == "prox" else []  # the refit refits the finish's support
    cfg = cli_config(*overrides, dense=mode == "dense")
    model, dm, penalties = build_run(cfg)
    figures = fit(model, dm, penalties, int(cfg.trainer.max_epochs))
    return dict(rule=rule, opt=optimizer, seed=seed, mode=mode, lam=lam, **support_figures(model, figures))


def lassonet(job: tuple[int, str]) -> dict:
    from benchmarks.references.lassonet_seed001 import run as lassonet_run

    return {**lassonet_run(job), "rule": job[1], "mode": "lassonet"}


def summary(rs: list[dict], best_dense: float) -> list[str]:
    acc = statistics.mean(r["acc"] for r in rs)
    return [
        f"{sum(r['exact'] for r in rs)}/{len(rs)}",
        f"{statistics.mean(r['n_kept'] for r in rs):.1f}",
        f"{100 * acc:.1f}",
        f"{100 * (acc - best_dense):+.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100, help="held out from the seeds 0-2 used to develop")
    parser.add_argument("--quick", action="store_true", help="2 seeds, rules linear and ring, no grid, no LassoNet")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument(
        "--grid", default="clusters:0.0125,0.00625", help="rule:λ,λ;... extra exact λ chosen by val/loss"
    )
    parser.add_argument("--no-lassonet", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/seed001_selection.jsonl"), help="results, one run a line"
    )
    parser.add_argument("--report", action="store_true", help="print the tables of --out without running")
    args = parser.parse_args()
    rules, opts = args.rules.split(","), args.optimizers.split(",")
    if args.quick:
        args.seeds, rules, args.grid, args.no_lassonet = 2, [r for r in rules if r != "clusters"], "", True
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    grid = {
        rule: [float(x) for x in lams.split(",")]
        for rule, lams in (item.split(":") for item in args.grid.split(";") if item)
    }
    jobs = []
    for rule in rules:
        jobs += [(rule, o, s, "exact", PRESET_LAMBDA) for o in opts for s in seeds]
        jobs += [(rule, o, s, "dense", PRESET_LAMBDA) for o in opts for s in seeds]
        jobs += [(rule, o, s, "exact", lam) for lam in grid.get(rule, []) for o in opts for s in seeds]
    jobs += [(rule, o, s, "prox", PRESET_LAMBDA) for rule in rules for o in opts for s in seeds]
    jobs += [] if args.no_lassonet else [(rule, "-", s, "lassonet", 0.0) for rule in rules for s in seeds]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    key = lambda r: (r["rule"], r.get("opt", "-"), r["seed"], r["mode"], r.get("lam", 0.0))  # noqa: E731
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.is_file() else []
    todo = [] if args.report else [job for job in jobs if job not in {key(r) for r in done}]
    with args.out.open("a") as out:

        def append(result: dict) -> None:  # as each run ends, so that an interrupted benchmark resumes
            out.write(json.dumps(result) + "\n")
            out.flush()

        run_jobs(run, todo, args.workers, on_result=append)
    wanted = set(jobs)
    results = [r for r in (json.loads(line) for line in args.out.read_text().splitlines()) if key(r) in wanted]
    ln = [r for r in results if r["mode"] == "lassonet"]
    results = [r for r in results if r["mode"] != "lassonet"]
    seeds = sorted({r["seed"] for r in results})

    print(
        f"experiment=seed001_exact (λ = {PRESET_LAMBDA} ramped over 10 epochs, finish after 40, 20 refit epochs; "
        "batch 64), optimizers at conf/optimizer defaults; "
        f"seeds {seeds[0]}-{seeds[-1]}. 'x0,x1 exactly' = both informative input columns kept and all 8 "
        "noise columns exactly zero; 'inputs kept' = mean nonzero input columns; accuracy is val/acc."
    )
    header = ["rule", "model", "x0,x1 exactly", "inputs kept", "val acc %", "vs best dense"]
    for rule in rules:
        dense = {
            o: statistics.mean(r["acc"] for r in results if (r["rule"], r["opt"], r["mode"]) == (rule, o, "dense"))
            for o in opts
            if any((r["rule"], r["opt"], r["mode"]) == (rule, o, "dense") for r in results)
        }
        if not dense:
            continue
        best = max(dense.values())
        rows = []
        for o in dense:
            rows.append([rule, f"{o} dense", "-", "10.0", f"{100 * dense[o]:.1f}", f"{100 * (dense[o] - best):+.1f}"])
            for mode in ("prox", "exact"):
                rs = [
                    r for r in results if (r["rule"], r["opt"], r["mode"], r["lam"]) == (rule, o, mode, PRESET_LAMBDA)
                ]
                if rs:
                    rows.append([rule, f"{o} {mode}", *summary(rs, best)])
            if grid.get(rule):
                chosen = []
                for s in seeds:
                    candidates = [
                        r for r in results if (r["rule"], r["opt"], r["mode"], r["seed"]) == (rule, o, "exact", s)
                    ]
                    if len(candidates) == 1 + len(grid[rule]):
                        chosen.append(min(candidates, key=lambda r: r["val_loss"]))
                if not chosen:
                    continue
                lams = "/".join(
                    f"{lam:g}:{sum(r['lam'] == lam for r in chosen)}" for lam in sorted({r["lam"] for r in chosen})
                )
                rows.append([rule, f"{o} exact, λ by val/loss ({lams})", *summary(chosen, best)])
        lrs = [r for r in ln if r["rule"] == rule]
        if lrs:
            acc = statistics.mean(r["acc"] for r in lrs)
            rows.append(
                [
                    rule,
                    "LassoNet best-val model",
                    f"{sum(r['exact'] for r in lrs)}/{len(lrs)}",
                    f"{statistics.mean(r['n_selected'] for r in lrs):.1f}",
                    f"{100 * acc:.1f}",
                    f"{100 * (acc - best):+.1f}",
                ]
            )
            acc = statistics.mean(r["two_acc"] for r in lrs)
            rows.append(
                [
                    rule,
                    "LassoNet first ≤2-feature model",
                    f"{sum(r['two_exact'] for r in lrs)}/{len(lrs)}",
                    "≤2",
                    f"{100 * acc:.1f}",
                    f"{100 * (acc - best):+.1f}",
                ]
            )
        print(f"\nrule={rule}: best dense model {100 * best:.1f} %")
        print(table(header, rows))


if __name__ == "__main__":
    main()
