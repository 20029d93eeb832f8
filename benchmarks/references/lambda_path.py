"""λ paths, measured: agreement with scikit-learn, informative features on the seed-001 data, warm vs cold.

    python -m benchmarks.references.lambda_path --part sklearn     # breast_cancer L1 logistic path vs LogisticRegression per λ
    python -m benchmarks.references.lambda_path --part synthetic [--monitor val/acc]   # data=synthetic, rules linear / clusters / ring
    python -m benchmarks.references.lambda_path --part timing      # 20-point warm path vs 20 cold runs to the same val/loss

Every path is the CLI's (``lightreg.lambda_path.train_path`` on a composed config, as ``python -m train`` runs it).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module
from lightning.pytorch.callbacks import Callback
from sklearn.linear_model import LogisticRegression as SkLogistic

from benchmarks._common import SEED_NETWORK, table
from lightreg.data import SklearnDataModule
from lightreg.lambda_path.runner import PathRun, train_path


def config(overrides: list[str], out: Path):
    with initialize_config_module("lightreg.conf", version_base="1.3"):
        return compose("train", overrides=[*overrides, f"paths.output_dir={out}", "logger=none", "callbacks=none"])


def read_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "path.csv").open()))


def objective(x: np.ndarray, y: np.ndarray, coef: np.ndarray, b: float, lam: float) -> float:
    z = x @ coef + b
    return float(np.mean(np.logaddexp(0, z) - y * z) + lam * np.abs(coef).sum())


def part_sklearn(num: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="path_bc_"))
    overrides = [
        "data=breast_cancer",
        "+penalty=l1",
        "penalty.mode=exact",
        "+path=geometric",
        f"path.num={num}",
        "path.min_ratio=1e-3",
        "path.checkpoints=none",
    ]
    print("python -m train " + " ".join(overrides))
    metrics = train_path(config(overrides, out))
    data = SklearnDataModule(name="breast_cancer", seed=0)
    data.setup()
    x, y = data.x_train.double().numpy(), data.y_train.double().numpy()
    n = len(y)
    closed = float(np.abs(x.T @ (y.mean() - y) / n).max())
    print(
        f"lambda_max: path {metrics['lambda_max']:.8g} ({metrics['lambda_max_source']}), closed form max|Xᵀ(ȳ−y)|/n {closed:.8g}"
    )
    names = data.feature_names
    rows = []
    for r in read_rows(out):
        lam = float(r["lambda"])
        coef = np.array([float(r[f"coef:{f}"]) for f in names])
        ours = objective(x, y, coef, float(r["intercept"]), lam)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = SkLogistic(
                l1_ratio=1.0, C=1 / (n * lam), solver="liblinear", tol=1e-10, max_iter=100_000, intercept_scaling=1e4
            ).fit(x, y)
        ref = objective(x, y, sk.coef_.ravel(), float(sk.intercept_[0]), lam)
        diff = np.flatnonzero((coef != 0) != (sk.coef_.ravel() != 0))
        rows.append(
            [
                f"{lam:.4g}",
                int((coef != 0).sum()),
                int((sk.coef_ != 0).sum()),
                f"{(ours - ref) / ref:+.1e}",
                "yes"
                if diff.size == 0
                else "no: " + ", ".join(f"{names[j]} ({coef[j]:.1e} vs {sk.coef_.ravel()[j]:.1e})" for j in diff),
            ]
        )
    print(table(["λ", "nnz path", "nnz sklearn", "objective rel. diff", "same support"], rows))


RULES = {
    "linear": ["+penalty=l1", "penalty.mode=exact"],
    "clusters": ["+penalty=l1", "penalty.mode=exact"],
    # an MLP: group lasso on the input columns (exact mode) + fixed L2 on the other weights (experiment=seed001_exact)
    "ring": [
        "experiment=seed001_exact",
        *SEED_NETWORK,
        "lambda=0",
        "penalty.warmup_epochs=0",
        "penalty.refit_epochs=0",
    ],
}


def part_synthetic(num: int, monitor: str) -> None:
    rows = []
    for rule, extra in RULES.items():
        out = Path(tempfile.mkdtemp(prefix=f"path_{rule}_"))
        overrides = [
            *extra,
            "data=synthetic",
            f"data.rule={rule}",
            "+path=geometric",
            f"path.num={num}",
            "path.min_ratio=1e-3",
            "path.checkpoints=none",
            f"path.monitor={monitor}",
        ]
        print("python -m train " + " ".join(overrides))
        started = time.perf_counter()
        m = train_path(config(overrides, out))
        entry = m["path/entry_lambda"]
        noise = max(entry[f"x{j}"] or 0.0 for j in range(2, 10))
        last_two = min(entry["x0"] or 0, entry["x1"] or 0) > noise
        rows.append(
            [
                rule,
                f"{m['lambda_max']:.3g} ({m['lambda_max_source']})",
                f"{entry['x0'] or 0:.3g} / {entry['x1'] or 0:.3g}",
                f"{noise:.3g}",
                "yes" if last_two else "no",
                f"{m['best/lambda']:.3g}: {' '.join(m['best/features'])} ({m['best/val/acc']:.3f})",
                f"{m['one_se/lambda']:.3g}: {' '.join(m['one_se/features'])} ({m['one_se/val/acc']:.3f})",
                f"{time.perf_counter() - started:.0f}",
            ]
        )
    print(
        table(
            [
                "rule",
                "λ_max",
                "entry λ x0 / x1",
                "largest noise entry λ",
                "x0, x1 last to leave",
                "best λ: kept (val acc)",
                "one-SE λ: kept (val acc)",
                "s",
            ],
            rows,
        )
    )


class StopAtTarget(Callback):
    """A cold run stops once its val/loss is within ``rtol`` of the warm path's at the same λ."""

    def __init__(self, target: float, rtol: float) -> None:
        self.target, self.rtol, self.reached = target, rtol, False

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        if float(trainer.callback_metrics["val/loss"]) <= self.target * (1 + self.rtol):
            self.reached = trainer.should_stop = True


def part_timing(num: int, rtol: float, max_epochs: int, mode: str) -> None:
    out = Path(tempfile.mkdtemp(prefix="path_timing_"))
    overrides = [
        "data=breast_cancer",
        "+penalty=l1",
        f"penalty.mode={mode}",
        "+path=geometric",
        f"path.num={num}",
        "path.min_ratio=1e-3",
        "path.checkpoints=none",
    ]
    print("python -m train " + " ".join(overrides))
    cfg = config(overrides, out)
    started = time.perf_counter()
    train_path(cfg)
    warm = time.perf_counter() - started
    rows = read_rows(out)
    cold, reached, epochs = 0.0, 0, 0
    for r in rows:
        t0 = time.perf_counter()
        run = PathRun(cfg)  # a fresh model at its random initialization: what `python -m train lambda=λ` trains
        stop = StopAtTarget(float(r["val/loss"]), rtol)
        trainer, _ = run.fit(float(r["lambda"]), max_epochs, early_stopping=False, extra=[stop])
        cold += time.perf_counter() - t0
        reached += stop.reached
        epochs += trainer.current_epoch
    warm_epochs = sum(int(r["epochs"]) for r in rows)
    print(
        table(
            ["", "seconds", "epochs", "points reaching the warm val/loss"],
            [
                ["warm-started path", f"{warm:.1f}", warm_epochs, f"{len(rows)}/{len(rows)}"],
                [f"{len(rows)} cold runs (≤ {max_epochs} epochs)", f"{cold:.1f}", epochs, f"{reached}/{len(rows)}"],
                ["ratio cold / warm", f"{cold / warm:.2f}", f"{epochs / max(1, warm_epochs):.2f}", ""],
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["sklearn", "synthetic", "timing"], default="sklearn")
    parser.add_argument("--num", type=int, default=20, help="grid points")
    parser.add_argument(
        "--rtol", type=float, default=0.01, help="timing: a cold run stops within this of the warm val/loss"
    )
    parser.add_argument("--max-epochs", type=int, default=100, help="timing: most epochs of a cold run")
    parser.add_argument("--mode", default="prox", help="timing: penalty.mode of both")
    parser.add_argument("--monitor", default="val/loss", help="synthetic: path.monitor (the selection metric)")
    args = parser.parse_args()
    if args.part == "sklearn":
        part_sklearn(args.num)
    elif args.part == "synthetic":
        part_synthetic(args.num, args.monitor)
    else:
        part_timing(args.num, args.rtol, args.max_epochs, args.mode)


if __name__ == "__main__":
    main()
