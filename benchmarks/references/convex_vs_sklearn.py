"""Convex check: L1 / elastic-net logistic regression, lightreg vs scikit-learn's optimum at the same λ.

Same standardized train split (lightreg's SklearnDataModule), objective ``mean log-loss + λ R(W)`` with
``R = Σ|w|`` (L1) or ``ρΣ|w| + (1−ρ)/2 Σw²`` (elastic net, ρ = 0.5), intercepts unpenalized. scikit-learn:
``LogisticRegression(C=1/(n·λ), solver="saga", tol=1e-8)`` (float64). lightreg: ``mode=exact`` with full
batch and one epoch (the finish does the work; float32 and ``trainer.precision=64-true``), and plain
``mode=prox`` (the default ``optimizer=sgd``: lr 0.1, momentum 0.9; and lr 0.01 without momentum; batch 64)
for contrast.
"Passes" counts full passes over the training set (gradients + backtracking losses; for saga its epochs).

    python -m benchmarks.references.convex_vs_sklearn
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression as SkLogistic

from benchmarks._common import fit, table
from lightreg.callbacks import regularizer
from lightreg.data import SklearnDataModule
from lightreg.models import LogisticRegression
from lightreg.solvers import full_batch
from lightreg.solvers.kkt import kkt_report

PASSES = {"n": 0}


def _counting(fn):
    def wrapped(*args, **kwargs):
        PASSES["n"] += 1
        return fn(*args, **kwargs)

    return wrapped


full_batch.data_loss = _counting(full_batch.data_loss)
full_batch.data_loss_and_grad = _counting(full_batch.data_loss_and_grad)


def sklearn_solution(x: np.ndarray, y: np.ndarray, lam: float, ratio: float) -> tuple[np.ndarray, float, int, float]:
    """(coef (k, d), objective, epochs, seconds) of scikit-learn's saga at C = 1/(n·λ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SkLogistic(C=1.0 / (len(y) * lam), l1_ratio=ratio, solver="saga", tol=1e-8, max_iter=100_000)
        started = time.perf_counter()
        model.fit(x, y)
        seconds = time.perf_counter() - started
    coef, intercept = model.coef_, model.intercept_
    z = x @ coef.T + intercept
    if coef.shape[0] == 1:
        loss = np.mean(np.logaddexp(0, z[:, 0]) - y * z[:, 0])
    else:
        zmax = z.max(axis=1, keepdims=True)
        logsumexp = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        loss = np.mean(logsumexp - z[np.arange(len(y)), y])
    penalty = lam * (ratio * np.abs(coef).sum() + (1 - ratio) / 2 * np.square(coef).sum())
    return coef, loss + penalty, int(np.max(model.n_iter_)), seconds


def lightreg_solution(
    data: str,
    penalty: str,
    lam: float,
    mode: str,
    epochs: int,
    batch: int | None,
    precision: str = "32-true",
    lr: float = 0.1,
    momentum: float = 0.9,
) -> dict:
    torch.manual_seed(0)
    dm = SklearnDataModule(data, batch_size=batch)
    dm.setup("fit")
    model = LogisticRegression(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=partial(torch.optim.SGD, lr=lr, momentum=momentum),
        print_epochs=False,
    )
    options = {"l1_ratio": 0.5} if penalty == "elastic_net" else {}
    finish = {"finish": {"max_iter": 20_000, "tol": 1e-10, "patience": 50}} if mode == "exact" else {}
    callback = regularizer(penalty, lam, mode=mode, **options, **finish)
    PASSES["n"] = 0
    figures = fit(model, dm, [callback], epochs, precision)
    finish_passes = PASSES["n"]
    batches = full_batch.materialize(dm.train_dataloader(), model.net.linear.weight)
    report = kkt_report(model, batches, [callback])
    return dict(
        coef=model.net.linear.weight.detach().double().numpy(),
        objective=report["full_objective"],
        kkt=report["kkt_violation"],
        passes=epochs + finish_passes,
        seconds=figures["seconds"],
        dm=dm,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prox-epochs", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [
        ("breast_cancer", "l1", 0.01),
        ("breast_cancer", "elastic_net", 0.01),
        ("digits", "l1", 0.005),
        ("digits", "elastic_net", 0.005),
    ]
    rows = []
    for data, penalty, lam in cases:
        ratio = 1.0 if penalty == "l1" else 0.5
        exact = lightreg_solution(data, penalty, lam, "exact", 1, None)
        exact64 = lightreg_solution(data, penalty, lam, "exact", 1, None, "64-true")
        x, y = exact["dm"].x_train.double().numpy(), exact["dm"].y_train.long().numpy()
        coef, sk_obj, sk_epochs, sk_seconds = sklearn_solution(x, y, lam, ratio)
        sk_support = coef != 0
        rows.append(
            [
                data,
                penalty,
                lam,
                "scikit-learn saga",
                f"{sk_obj:.6f}",
                "0",
                f"{int(sk_support.sum())}",
                "-",
                sk_epochs,
                f"{sk_seconds:.2f}",
                "-",
            ]
        )
        prox = lightreg_solution(data, penalty, lam, "prox", args.prox_epochs, 64)
        prox_small = lightreg_solution(data, penalty, lam, "prox", args.prox_epochs, 64, lr=0.01, momentum=0.0)
        for name, r in (
            ("lightreg exact, float32", exact),
            ("lightreg exact, float64", exact64),
            (f"lightreg prox, SGD lr 0.1 mom 0.9, b64, {args.prox_epochs} ep", prox),
            (f"lightreg prox, SGD lr 0.01, b64, {args.prox_epochs} ep", prox_small),
        ):
            support = r["coef"] != 0
            gap = (r["objective"] - sk_obj) / abs(sk_obj)
            rows.append(
                [
                    data,
                    penalty,
                    lam,
                    name,
                    f"{r['objective']:.6f}",
                    f"{gap:.1e}",
                    int(support.sum()),
                    "yes"
                    if np.array_equal(support, sk_support)
                    else f"no ({int((support != sk_support).sum())} differ)",
                    r["passes"],
                    f"{r['seconds']:.2f}",
                    f"{r['kkt']:.1e}",
                ]
            )
    print(
        table(
            [
                "data",
                "penalty",
                "λ",
                "solver",
                "objective",
                "rel. gap",
                "nnz",
                "same support",
                "passes",
                "seconds",
                "kkt_violation",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
