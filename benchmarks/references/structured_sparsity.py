"""Structured sparsity at equal MACs: coupled group lasso + compaction against Torch-Pruning magnitude pruning and
Lightning's ModelPruning, on digits_images, per model (``cnn``, ``resnet`` = ResNet-18 with the 3×3 stem).

Every arm trains ``--epochs`` epochs from the same seed, then fine-tunes ``--finetune`` epochs (a new Adam at
``--finetune-lr``, no penalty): the same total epochs and the same two-phase schedule for all. Phase one runs the
real config composition (``python -m train model=<model> data=digits_images optimizer=prox_adam seed=<seed>``,
built by :func:`benchmarks._common.build_run`):

- ``dense``: no penalty, no pruning.
- ``penalty``: ``+penalty=group_lasso penalty.groups=coupled lambda=<λ>`` and the ``--penalty-overrides``
  (Torch-Pruning's coupled channel groups, exact block prox in Adam's metric unless ``penalty.adaptive=false``;
  ``penalty.group_weight=macs`` weighs each group by its MACs), then :func:`lightreg.compact.pruning.remove_zero_groups` removes the all-zero
  groups (outputs unchanged), then the fine-tune. Its MACs are the target of the next arm.
- ``magnitude``: the dense phase one, then Torch-Pruning's pruner with ``magnitude`` importance (ℓ1 norm of each
  group's root filter, the same layer ratio everywhere, output layers kept; :func:`prune_to_macs`) in steps of
  1/200 of the channels until the MACs are at most the penalty arm's, then the fine-tune.
- ``masks``: the dense phase one, then ``lightning.pytorch.callbacks.ModelPruning("l1_unstructured")`` (global ℓ1
  over every conv and linear weight) zeroes as many weights as the penalty arm removed parameters, the fine-tune
  keeps the masks, and they are made permanent. Masks leave every tensor dense: its MACs and latency are the dense
  model's; the table gives its non-zero parameters and its sparsity.

Columns: validation accuracy (the data module's held-out 20 %, 360 digits) after the fine-tune (and, for the
pruned arms, just before it), parameters (non-zero for ``masks``), MACs per sample (Torch-Pruning's counter) and
the CPU latency of a forward pass on a batch of 64, one thread, median of ``--repeats`` interleaved rounds.

    python -m benchmarks.references.structured_sparsity --model resnet --lambdas 0.0003 0.001 --seeds 3 --epochs 3
        --finetune 2 --workers 2 --repeats 10 [--arms dense penalty magnitude masks] [--out DIR] [train overrides]
        [--penalty-overrides penalty.group_weight=macs penalty.adaptive=false]
    python -m benchmarks.references.structured_sparsity --model cnn --lambdas 0.001 0.003 0.01 --epochs 6
        --finetune 4 --repeats 30

(the figures in docs/smaller-networks.md). λ = 0.01 empties the CNN and λ = 0.001 ResNet-18's stages 2-4.

Results: one JSON line per (seed, λ, arm) appended to ``DIR/<model>.jsonl`` as each seed ends (a rerun skips the
seeds already there), then ``DIR/<model>.csv`` (every row), ``DIR/<model>.json`` (means per λ and arm) and the
markdown table on stdout.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from lightning.pytorch.callbacks import ModelPruning
from torch import Tensor, nn

from benchmarks._common import build_run, cli_config, fit, run_jobs, table, time_calls
from lightreg.compact.coupling import eval_mode, output_layers
from lightreg.compact.pruning import count, remove_zero_groups

ARMS = ("dense", "penalty", "magnitude", "masks")
MODELS = {"cnn": "model=cnn", "resnet": "model=resnet"}
PRUNER_STEPS = 200
"""Steps of the magnitude pruner: each removes at most 1/200 of every prunable layer's channels."""
MAX_RATIO = 0.95
"""No layer loses more than this fraction of its channels to the magnitude pruner."""


def prune_to_macs(module: nn.Module, example: Tensor, target_macs: float, steps: int = PRUNER_STEPS) -> int:
    """Prune ``module`` in place with Torch-Pruning's magnitude pruner (ℓ1 of each group's root filter, the same
    ratio in every layer, the output layers kept) in steps of ``MAX_RATIO/steps`` of the channels until its MACs per
    sample are at most ``target_macs``. Returns the MACs reached (above the target only when every layer is at
    ``MAX_RATIO``)."""
    with eval_mode(module):
        pruner = tp.pruner.BasePruner(
            module,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first"),
            pruning_ratio=MAX_RATIO,
            iterative_steps=steps,
            ignored_layers=output_layers(module, example),
            global_pruning=False,
        )
        macs = count(module, example)[1]
        while macs > target_macs and pruner.current_step < steps:
            pruner.step()
            macs = count(module, example)[1]
    return macs


def prunable_weights(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(layer, "weight")`` of every conv and linear layer: what the ``masks`` arm prunes."""
    return [(m, "weight") for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def nonzero(module: nn.Module) -> int:
    """Non-zero parameters (a masked weight counts through its mask: ``weight = weight_orig · mask``)."""
    total = 0
    for layer in module.modules():
        for name, p in layer.named_parameters(recurse=False):
            value = getattr(layer, name.removesuffix("_orig")) if name.endswith("_orig") else p
            total += int((value != 0).sum())
    return total


@torch.no_grad()
def accuracy(model: nn.Module, dm: Any) -> float:
    """Accuracy on the data module's validation batches (normalized images, as in training)."""
    model.eval()
    hits = [(model(x).argmax(dim=1) == y).float() for x, y in dm.val_dataloader()]
    return float(torch.cat(hits).mean())


def finetune(model: Any, dm: Any, epochs: int, lr: float) -> float:
    """Train ``model`` ``epochs`` more epochs with a new optimizer of its kind at ``lr``, no callbacks. Returns the
    validation accuracy."""
    model.optimizer_factory = partial(model.optimizer_factory, lr=lr)
    if epochs > 0:
        fit(model, dm, [], epochs)
    return accuracy(model, dm)


def detached(model: Any) -> Any:
    """A copy of a fitted model without its trainer (copying would copy the trainer too)."""
    trainer, model._trainer = model._trainer, None
    try:
        return copy.deepcopy(model)
    finally:
        model._trainer = trainer


def latencies_ms(models: dict[str, nn.Module], shape: tuple[int, ...], repeats: int) -> dict[str, float]:
    """Median ms of one forward pass on a batch of 64, one thread, the models interleaved round by round."""
    x = torch.randn(64, *shape)
    for m in models.values():
        m.eval()
    with torch.no_grad():
        times = time_calls({k: partial(m, x) for k, m in models.items()}, repeats, warmup=1)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def run_seed(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every arm of ``job`` (model, seed, lambdas, epochs, finetune, lr, arms, repeats) on one seed: its rows."""
    torch.set_num_threads(1)
    base = [MODELS[job["model"]], "data=digits_images", "optimizer=prox_adam", f"seed={job['seed']}"]
    base += [f"trainer.max_epochs={job['epochs']}", *job["overrides"]]
    rows, timed = [], {}
    example: Tensor | None = None

    def row(lam: float | None, arm: str, model: nn.Module, acc: float, before: float | None, **extra: Any) -> None:
        params, macs = count(model, example)
        rows.append({"model": job["model"], "seed": job["seed"], "lambda": lam, "arm": arm, "acc": acc,
                     "acc_before_finetune": before, "params": params, "nonzero": nonzero(model), "macs": macs,
                     **extra})  # fmt: skip
        timed[(lam, arm)] = model

    dense = None
    if {"dense", "magnitude", "masks"} & set(job["arms"]) or not job["lambdas"]:
        dense, dm, callbacks = build_run(cli_config(*base, dense=True))
        fit(dense, dm, callbacks, job["epochs"])
        example = next(iter(dm.val_dataloader()))[0]
        dense_params = count(dense, example)[0]
        if "dense" in job["arms"]:
            model = detached(dense)
            row(None, "dense", model, finetune(model, dm, job["finetune"], job["lr"]), accuracy(dense, dm))
    for lam in job["lambdas"]:
        model, dm, callbacks = build_run(cli_config(*base, "+penalty=group_lasso", "penalty.groups=coupled",
                                                    f"lambda={lam}", *job["penalty_overrides"]))  # fmt: skip
        fit(model, dm, callbacks, job["epochs"])
        example = next(iter(dm.val_dataloader()))[0]
        model._trainer = None
        small, report = remove_zero_groups(model, example)
        before = accuracy(small, dm)
        extra = {"channels": {k: v[1] for k, v in report.channels.items()}, "removed_groups": report.removed_groups}
        row(lam, "penalty", small, finetune(small, dm, job["finetune"], job["lr"]), before, **extra)
        if dense is None:
            continue
        if "magnitude" in job["arms"]:
            pruned = detached(dense)
            prune_to_macs(pruned, example, report.macs_after)
            before = accuracy(pruned, dm)
            row(lam, "magnitude", pruned, finetune(pruned, dm, job["finetune"], job["lr"]), before)
        if "masks" in job["arms"]:
            masked = detached(dense)
            weights = prunable_weights(masked)
            amount = min(dense_params - report.params_after, sum(m.weight.numel() for m, _ in weights))
            pruning = ModelPruning("l1_unstructured", parameters_to_prune=weights, amount=amount, verbose=0)
            pruning.setup(None, masked, "fit")  # type: ignore[arg-type]
            pruning.apply_pruning(amount)
            before = accuracy(masked, dm)
            acc = finetune(masked, dm, job["finetune"], job["lr"])  # the masks' forward hooks hold the zeros
            pruning.make_pruning_permanent(masked)
            total = sum(m.weight.numel() for m, _ in weights)
            zeros = sum(int((m.weight == 0).sum()) for m, _ in weights)
            row(lam, "masks", masked, acc, before, sparsity=zeros / total)
    shape = tuple(example.shape[1:])
    ms = latencies_ms({f"{k[0]}|{k[1]}": m for k, m in timed.items()}, shape, job["repeats"])
    for r in rows:
        r["ms"] = ms[f"{r['lambda']}|{r['arm']}"]
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Means (and the standard deviation of the accuracy) over seeds, per (λ, arm); the dense row under every λ."""
    lambdas = sorted({r["lambda"] for r in rows if r["lambda"] is not None})
    out = []
    for lam in lambdas or [None]:
        for arm in ARMS:
            sel = [r for r in rows if r["arm"] == arm and r["lambda"] == (None if arm == "dense" else lam)]
            if not sel:
                continue
            accs = [r["acc"] for r in sel]
            before = [r["acc_before_finetune"] for r in sel if r["acc_before_finetune"] is not None]
            out.append({
                "model": sel[0]["model"], "lambda": lam, "arm": arm, "seeds": len(sel), "acc": statistics.mean(accs),
                "acc_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "acc_before_finetune": statistics.mean(before) if before and arm != "dense" else None,
                "params": statistics.mean(r["params"] for r in sel), "nonzero": statistics.mean(r["nonzero"] for r in sel),
                "macs": statistics.mean(r["macs"] for r in sel), "ms": statistics.median(r["ms"] for r in sel),
                "sparsity": statistics.mean(r["sparsity"] for r in sel) if arm == "masks" else None,
            })  # fmt: skip
    return out


NOTES = {
    "dense": "no penalty",
    "penalty": "coupled group lasso, zero groups removed",
    "magnitude": "Torch-Pruning ℓ1 filters, MACs ≤ penalty's",
    "masks": "ModelPruning ℓ1 unstructured: masks, dense MACs",
}


def markdown(summary: list[dict[str, Any]]) -> str:
    """The table, and one line per λ comparing the penalty arm with the magnitude arm."""
    header = ["λ", "arm", "val/acc (± sd)", "before fine-tune", "parameters", "MACs", "ms / batch 64", "note"]
    body, verdicts = [], []
    for s in summary:
        params = f"{s['nonzero']:,.0f} non-zero ({s['sparsity']:.1%} of weights zero)" if s["arm"] == "masks" else (
            f"{s['params']:,.0f}")  # fmt: skip
        before = "" if s["acc_before_finetune"] is None else f"{s['acc_before_finetune']:.3f}"
        lam = "" if s["lambda"] is None else f"{s['lambda']:g}"
        body.append([lam, s["arm"], f"{s['acc']:.3f} ± {s['acc_sd']:.3f}", before, params, f"{s['macs']:,.0f}",
                     f"{s['ms']:.2f}", NOTES[s["arm"]]])  # fmt: skip
    for lam in sorted({s["lambda"] for s in summary if s["lambda"] is not None}):
        by_arm = {s["arm"]: s for s in summary if s["lambda"] == lam}
        if "penalty" in by_arm and "magnitude" in by_arm:
            pen, mag = by_arm["penalty"], by_arm["magnitude"]
            gap = pen["acc"] - mag["acc"]
            word = "at least as accurate as" if gap >= 0 else "LESS accurate than"
            verdicts.append(
                f"λ={lam:g}: penalty route {word} magnitude pruning + fine-tune ({pen['acc']:.3f} vs {mag['acc']:.3f}, "
                f"{gap:+.3f}; MACs {pen['macs']:,.0f} vs {mag['macs']:,.0f}; mean of {pen['seeds']} seeds)"
            )
    return table(header, body) + ("\n\n" + "\n".join(verdicts) if verdicts else "")


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    parser.add_argument("--lambdas", type=float, nargs="*", default=[0.003], help="coupled group-lasso strengths")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--epochs", type=int, default=6, help="epochs before pruning/compaction (every arm)")
    parser.add_argument("--finetune", type=int, default=4, help="fine-tuning epochs after it (every arm)")
    parser.add_argument("--finetune-lr", type=float, default=0.001, help="Adam lr of the fine-tune (every arm)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--repeats", type=int, default=20, help="latency rounds (median)")
    parser.add_argument("--workers", type=int, default=1, help="seeds run at a time (processes, one thread each)")
    parser.add_argument("overrides", nargs="*", help="more `python -m train` overrides for every arm (data.limit=200)")
    parser.add_argument(
        "--penalty-overrides", nargs="*", default=[], help="`python -m train` overrides for the penalty arm only"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/structured_sparsity"))
    args = parser.parse_args()
    if args.epochs < 1 or args.finetune < 0 or args.seeds < 1:
        parser.error("--epochs and --seeds must be >= 1, --finetune >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / f"{args.model}.jsonl"
    settings = {"epochs": args.epochs, "finetune": args.finetune, "lr": args.finetune_lr, "lambdas": args.lambdas,
                "arms": args.arms, "overrides": args.overrides, "penalty_overrides": args.penalty_overrides}  # fmt: skip
    old = [r for r in read_rows(jsonl) if all(r.get(k) == v for k, v in settings.items())]
    done = {r["seed"] for r in old}
    jobs = [
        {"model": args.model, "seed": s, "repeats": args.repeats, **settings}
        for s in range(args.seeds)
        if s not in done
    ]
    started = time.perf_counter()

    def save(rows: list[dict[str, Any]]) -> None:
        with jsonl.open("a") as f:
            for r in rows:
                f.write(json.dumps({**r, **settings}) + "\n")
        print(f"seed {rows[0]['seed']} done ({time.perf_counter() - started:.0f} s)", flush=True)

    new = [r for rows in run_jobs(run_seed, jobs, args.workers, save) for r in rows]
    rows = [r for r in old + new if r["seed"] < args.seeds]
    with (args.out / f"{args.model}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows)
    (args.out / f"{args.model}.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{args.model} on digits_images: {args.epochs} + {args.finetune} fine-tuning epochs (lr "
          f"{args.finetune_lr:g}), seeds 0-{args.seeds - 1}; ms: median, one thread\n")  # fmt: skip
    print(markdown(summary))


if __name__ == "__main__":
    main()
