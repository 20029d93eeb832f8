"""Group lasso over conv filters + compaction vs global magnitude pruning, at equal parameter count, on digits_images.

For each λ: train the CNN (conf/model/cnn.yaml: conv 16-32, fc 64) with group lasso over the conv filters
(``groups=filters``, SGD lr 0.1 momentum 0.9, batch 64, ``--epochs``; after every step the block soft-threshold
``GroupLasso("filters").prox_(w, lr·λ)`` of each conv weight: the update ``+penalty=group_lasso
penalty.groups=filters`` makes with SGD, in a plain loop because Lightning's per-step overhead dominates a model
this small on a shared 2-core machine), compact it (``lightreg.compact``), fine-tune the compact model
``--finetune`` epochs without penalty (SGD at ``--finetune-lr``). Beside it: the same CNN trained without penalty
for ``--epochs``, pruned with ``torch.nn.utils.prune.global_unstructured`` (L1 magnitude over every weight) down to the
same number of non-zero parameters as the compact model (weights + biases), then fine-tuned ``--finetune`` epochs
with its mask. Validation accuracy (360 held-out digits) and the CPU forward time of a batch of 64 (one thread;
a pruned model keeps its dense shapes, so its time is the dense one).

    python -m benchmarks.references.compact_vs_prune [--lambdas 0.003 0.01 0.03] [--epochs 10] [--finetune 5]
        [--finetune-lr 0.01] [--seeds 1]
"""

from __future__ import annotations

import argparse
import statistics
from functools import partial

import torch
from torch.nn.utils import prune

import lightreg
from benchmarks._common import time_calls
from benchmarks.references.structured_sparsity import accuracy, nonzero
from lightreg.data import ImageDataModule
from lightreg.models import CNN
from lightreg.penalties import GroupLasso
from lightreg.solvers.threads import intra_op_threads


def make_cnn(seed: int) -> CNN:
    torch.manual_seed(seed)
    return CNN(input_shape=(1, 8, 8), num_classes=10, print_epochs=False,
               optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9))  # fmt: skip


def fit(model: CNN, dm: ImageDataModule, epochs: int, lam: float = 0.0, seed: int = 0, lr: float | None = None) -> None:
    """SGD (the model's optimizer, or the same at ``lr``) over shuffled batches; with ``lam > 0`` the group-lasso
    prox on the conv weights after every step."""
    optimizer = model.optimizer_factory(model.parameters())
    if lr is not None:
        optimizer.param_groups[0]["lr"] = lr
    penalty = GroupLasso("filters")
    convs = [m.weight for m in model.net if isinstance(m, torch.nn.Conv2d)]
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(dm.y_train), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for start in range(0, len(order), dm.batch_size):
            idx = order[start : start + dm.batch_size]
            loss = torch.nn.functional.cross_entropy(model(dm.x_train[idx]), dm.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if lam > 0:
                with torch.no_grad():
                    for w in convs:
                        penalty.prox_(w, optimizer.param_groups[0]["lr"] * lam)


def latency_ms(net: torch.nn.Module, repeats: int = 50) -> float:
    x = torch.randn(64, 1, 8, 8)
    with intra_op_threads(1), torch.no_grad():
        net.eval()
        samples = time_calls({"forward": lambda: net(x)}, repeats, warmup=1)["forward"]
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--finetune", type=int, default=5)
    parser.add_argument("--finetune-lr", type=float, default=0.01, help="SGD lr of the fine-tuning (both arms)")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    dm = ImageDataModule("digits_images", batch_size=64)
    dm.setup("fit")
    rows = []
    for seed in range(args.seeds):
        dense = make_cnn(seed)
        fit(dense, dm, args.epochs, seed=seed)
        dense_acc, dense_params, dense_ms = accuracy(dense, dm), nonzero(dense), latency_ms(dense.net)
        for lam in args.lambdas:
            model = make_cnn(seed)
            fit(model, dm, args.epochs, lam=lam, seed=seed)
            gl_acc = accuracy(model, dm)
            small, report = lightreg.compact(model)
            compact_acc = accuracy(small, dm)
            fit(small, dm, args.finetune, seed=seed + 1, lr=args.finetune_lr)
            budget = report.params_after
            pruned = make_cnn(seed)
            pruned.load_state_dict(dense.state_dict())
            layers = [(m, "weight") for m in pruned.net if hasattr(m, "weight")]
            prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=dense_params - budget)
            pruned_acc = accuracy(pruned, dm)
            fit(pruned, dm, args.finetune, seed=seed + 1, lr=args.finetune_lr)
            rows.append({
                "seed": seed, "lambda": lam, "dense_params": dense_params, "params": budget,
                "pruned_nonzero": nonzero(pruned), "dense_acc": dense_acc, "gl_acc": gl_acc,
                "compact_acc": compact_acc, "compact_ft_acc": accuracy(small, dm),
                "pruned_acc": pruned_acc, "pruned_ft_acc": accuracy(pruned, dm),
                "dense_ms": dense_ms, "compact_ms": latency_ms(small.net),
                "filters": f"{small.net.conv1.out_channels}+{small.net.conv2.out_channels}",
            })  # fmt: skip
            print(rows[-1], flush=True)
    print(
        "\n| λ | filters kept (conv1+conv2 of 16+32) | params (of dense) | group lasso | compact | compact + fine-tune "
        "| pruned | pruned + fine-tune | dense | ms/batch dense → compact |\n" + "| ---" * 10 + " |"
    )
    for lam in args.lambdas:
        sel = [r for r in rows if r["lambda"] == lam]

        def mean(key: str, sel: list = sel) -> float:
            return statistics.mean(r[key] for r in sel)

        print(
            f"| {lam:g} | {sel[0]['filters']} | {mean('params'):.0f} ({mean('dense_params'):.0f}) "
            f"| {mean('gl_acc'):.3f} | {mean('compact_acc'):.3f} | {mean('compact_ft_acc'):.3f} "
            f"| {mean('pruned_acc'):.3f} | {mean('pruned_ft_acc'):.3f} | {mean('dense_acc'):.3f} "
            f"| {mean('dense_ms'):.3f} → {mean('compact_ms'):.3f} |"
        )
    print(f"\nmeans over {args.seeds} seed(s); filters kept: seed 0; accuracy on the 360 validation digits")


if __name__ == "__main__":
    main()
