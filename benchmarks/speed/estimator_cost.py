"""What a scikit-learn style fit costs: ``LightregClassifier(penalty="l1")`` beside liblinear at the same objective.

Synthetic binary rows (``make_classification``, 20 informative features, standardized), λ = 0.01, objective
``mean log-loss + λ Σ|w|`` (intercept unpenalized). lightreg: ``LightregClassifier(penalty="l1", lambda_=0.01)``, the
default ``mode="exact"``, which for a linear model is one full-batch proximal solve (no Trainer). scikit-learn:
``LogisticRegression(l1_ratio=1, C=1/(n·λ), solver="liblinear", intercept_scaling=100)`` (liblinear penalizes the
intercept as a feature; a scaling of 100 makes that penalty negligible) at ``tol=1e-4`` (its default) and ``1e-6``.
The smallest size says what a fit costs apart from the solve (set-up, validation, the estimator's plumbing).
Interleaved over ``--repeats`` rounds; medians; ``objective`` is each fit's own, ``vs liblinear`` the time over that
of liblinear at ``tol=1e-6``.

    python -m benchmarks.speed.estimator_cost [--repeats 5] [--sizes 200x5 2000x200 10000x1000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from benchmarks._common import table, time_calls
from lightreg.sklearn import LightregClassifier

LAMBDA = 0.01
TOLS = (1e-4, 1e-6)


def problem(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=n, n_features=d, n_informative=min(20, d), n_redundant=0, random_state=0)
    return (x - x.mean(0)) / x.std(0), y


def objective(x: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> float:
    z = x @ coef.ravel() + intercept[0]
    return float(np.mean(np.logaddexp(0, z) - y * z) + LAMBDA * np.abs(coef).sum())


def compare(n: int, d: int, repeats: int) -> list[list[object]]:
    """Table rows of lightreg and liblinear (each tol) on one ``n x d`` problem."""
    x, y = problem(n, d)
    fitted: dict[str, object] = {}

    def ours() -> float:
        started = time.perf_counter()
        fitted["lightreg"] = LightregClassifier(penalty="l1", lambda_=LAMBDA).fit(x, y)
        return time.perf_counter() - started

    def liblinear(tol: float) -> float:
        model = LogisticRegression(
            l1_ratio=1.0, C=1 / (n * LAMBDA), solver="liblinear", tol=tol, max_iter=100_000, intercept_scaling=100
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            fitted[f"liblinear tol={tol:g}"] = model.fit(x, y)
            return time.perf_counter() - started

    fits = {"lightreg": ours, **{f"liblinear tol={t:g}": (lambda t=t: liblinear(t)) for t in TOLS}}
    median = {k: statistics.median(v) for k, v in time_calls(fits, repeats, warmup=1, returns_seconds=True).items()}
    base = median[f"liblinear tol={TOLS[-1]:g}"]
    rows: list[list[object]] = []
    for name, seconds in median.items():
        model: Any = fitted[name]
        value = objective(x, y, model.coef_, model.intercept_)
        rows.append(
            [
                f"{n}x{d}",
                name,
                f"{seconds:.3f}",
                f"{seconds / base:.2f}x",
                f"{value:.8f}",
                np.count_nonzero(model.coef_),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=["200x5", "2000x200", "10000x1000"])
    parser.add_argument("--quick", action="store_true", help="sizes 200x5 and 2000x200, 1 repeat (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.sizes = 1, ["200x5", "2000x200"]
    rows = [row for size in args.sizes for row in compare(*(int(v) for v in size.split("x")), args.repeats)]
    print(
        f"L1 logistic regression, lambda {LAMBDA}, median of {args.repeats}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(table(["n x d", "fit", "seconds", "vs liblinear 1e-6", "objective", "nonzero"], rows))


if __name__ == "__main__":
    main()
