"""LassoNet (Lemhadri et al., JMLR 2021) on the seed-001 data, the anchor beside ``studies.exact_support_seed001``.

Same splits (SyntheticDataModule, standardized, 800 train / 200 val), LassoNetClassifier(hidden_dims=(6,)),
default settings (full batch, its warm-started λ path, hierarchical prox with M = 10). Per seed: whether the
two features that survive longest on the path are x0 and x1; the selected set and validation accuracy of the
path's best-validation-loss model and of its first model with at most 2 features; seconds per path. Needs
``pip install lassonet``.

    python -m benchmarks.references.lassonet_seed001 --seeds 10
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

from benchmarks._common import run_jobs, table
from lightreg.data import SyntheticDataModule


def run(job: tuple[int, str]) -> dict:
    from lassonet import LassoNetClassifier

    seed, rule = job
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    dm = SyntheticDataModule(batch_size=None, seed=seed, rule=rule)
    dm.setup("fit")
    x, y = dm.x_train.numpy(), dm.y_train.long().numpy()
    xv, yv = dm.x_val.numpy(), dm.y_val.long().numpy()
    model = LassoNetClassifier(hidden_dims=(6,), verbose=0, random_state=seed, torch_seed=seed)
    started = time.perf_counter()
    path = model.path(x, y, X_val=xv, y_val=yv, return_state_dicts=True)
    seconds = time.perf_counter() - started
    top2 = set(np.argsort(-model.feature_importances_.numpy())[:2].tolist())
    two = next(item for item in path if int(item.selected.sum()) <= 2)
    model.load(two.state_dict)
    two_acc = float((model.predict(xv) == yv).mean())
    best = min(path, key=lambda item: item.val_loss)
    model.load(best.state_dict)
    acc = float((model.predict(xv) == yv).mean())
    selected = set(np.flatnonzero(best.selected.numpy()).tolist())
    return dict(
        seed=seed,
        top2=top2 == {0, 1},
        exact=selected == {0, 1},
        n_selected=len(selected),
        kept=len(selected & {0, 1}),
        acc=acc,
        seconds=seconds,
        two_exact=set(np.flatnonzero(two.selected.numpy()).tolist()) == {0, 1},
        two_acc=two_acc,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rule", default="linear", choices=["linear", "clusters", "ring"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rs = run_jobs(run, [(s, args.rule) for s in range(args.seeds)], args.workers)
    print(f"LassoNet, rule={args.rule}, {args.seeds} seeds")
    print(
        table(
            [
                "top-2 of path = {x0, x1}",
                "best-val model selects exactly {x0, x1}",
                "mean features selected (best val)",
                "val acc % (best val)",
                "s/path",
            ],
            [
                [
                    f"{sum(r['top2'] for r in rs)}/{len(rs)}",
                    f"{sum(r['exact'] for r in rs)}/{len(rs)}",
                    f"{statistics.mean(r['n_selected'] for r in rs):.1f}",
                    f"{100 * statistics.mean(r['acc'] for r in rs):.1f}",
                    f"{statistics.mean(r['seconds'] for r in rs):.1f}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
