"""Nonconvex penalties: lightreg's mode=exact against skglm, and the support recovery of L1 vs MCP vs SCAD.

Part ``reference``: a well-conditioned linear regression (n=200, p=20, Toeplitz ρ=0.5, standardized X and y).
lightreg minimizes ``mean (y − Xw − b)² + MCP_{λ,γ}(w)`` (float64 linear model, full batch, one epoch: the
full-batch finish does the work); skglm's ``MCPRegression(alpha=λ/2, gamma=2γ)`` minimizes
``½ mean (y − Xw − b)² + MCP_{λ/2,2γ}(w)``, which is half of lightreg's objective (``½ MCP_{λ,γ} = MCP_{λ/2,2γ}``):
same solution. Printed: both objectives in lightreg's units, max |Δw|, same support, seconds (skglm's second fit,
after numba's compilation).

Part ``f1``: Toeplitz-correlated designs with n < p (n=100 train + 100 validation, p=200, 10 true nonzeros with
alternating signs), ρ in ``--rhos``; for each seed and penalty a warm-started 10-point λ path from λ_max down to
0.02·λ_max (lightreg mode=exact at each λ), λ chosen by validation MSE; support F1 against the true support,
mean ± std over ``--seeds``.

    python -m benchmarks.references.nonconvex_vs_skglm            # both parts, 10 seeds
    python -m benchmarks.references.nonconvex_vs_skglm --quick    # 1 seed, 3 λ, ρ = 0.5
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch

from benchmarks._common import fit, table
from lightreg.callbacks import regularizer
from lightreg.data.arrays import ArrayDataModule
from lightreg.models import LogisticRegression
from lightreg.penalties import MCP

FINISH = {"max_iter": 5000, "tol": 1e-12}
GAMMAS = {"l1": None, "mcp": 3.0, "scad": 3.7}


def toeplitz_data(n: int, p: int, rho: float, seed: int, nonzeros: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X (n, p) standardized, y standardized, true coefficients): corr(x_i, x_j) = ρ^|i−j|, noise σ = 0.5·‖Xw*‖/√n."""
    rng = np.random.default_rng(seed)
    cov = rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    x = rng.multivariate_normal(np.zeros(p), cov, size=n)
    coef = np.zeros(p)
    support = rng.choice(p, size=nonzeros, replace=False)
    coef[support] = rng.choice([-1.0, 1.0], size=nonzeros) * rng.uniform(0.5, 1.5, size=nonzeros)
    signal = x @ coef
    y = signal + 0.5 * signal.std() * rng.normal(size=n)
    return x, y, coef


def standardize(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std()


def new_model(p: int) -> LogisticRegression:
    torch.manual_seed(0)
    return LogisticRegression(
        input_shape=(p,), num_classes=None, task="regression", optimizer=partial(torch.optim.SGD, lr=0.01),
        print_epochs=False,
    ).double()  # fmt: skip


def fit_exact(model: LogisticRegression, x: np.ndarray, y: np.ndarray, penalty: str, lam: float) -> float:
    """mode=exact at λ from the model's current weights (a warm start); returns seconds."""
    gamma = GAMMAS[penalty]
    options = {"gamma": gamma} if gamma else {}
    callback = regularizer(penalty, lam, mode="exact", finish=FINISH, **options)
    dm = ArrayDataModule(torch.from_numpy(x), torch.from_numpy(y), batch_size=None)
    return fit(model, dm, [callback], epochs=1)["seconds"]


def objective(x: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float, lam: float, gamma: float) -> float:
    """lightreg's units: mean (y − Xw − b)² + MCP_{λ,γ}(w)."""
    data = float(np.mean((y - x @ coef - intercept) ** 2))
    return data + lam * MCP(gamma=gamma, lam=lam).value(torch.from_numpy(coef)).item()


def reference_part(lam: float, gamma: float) -> str:
    import skglm

    x, y = standardize(*toeplitz_data(200, 20, 0.5, seed=0, nonzeros=5)[:2])
    model = new_model(20)
    seconds = fit_exact(model, x, y, "mcp", lam)
    ours = model.net.linear.weight.detach().numpy()[0]
    our_b = float(model.net.linear.bias.detach()[0])
    est = skglm.MCPRegression(alpha=lam / 2, gamma=2 * gamma, tol=1e-12, max_iter=1000)
    est.fit(x, y)  # numba compilation
    started = time.perf_counter()
    est.fit(x, y)
    sk_seconds = time.perf_counter() - started
    rows = [
        ["lightreg mode=exact", f"{objective(x, y, ours, our_b, lam, gamma):.10f}", np.count_nonzero(ours), f"{seconds:.2f}"],
        [f"skglm MCPRegression(alpha={lam / 2:g}, gamma={2 * gamma:g})",
         f"{objective(x, y, est.coef_, est.intercept_, lam, gamma):.10f}", np.count_nonzero(est.coef_), f"{sk_seconds:.3f}"],
    ]  # fmt: skip
    coefs = "\n".join(
        f"  w[{j:2d}]  lightreg {ours[j]: .8f}  skglm {est.coef_[j]: .8f}" for j in range(20) if ours[j] or est.coef_[j]
    )
    verdict = (
        f"max |Δw| = {np.abs(ours - est.coef_).max():.2e}; same support: {np.array_equal(ours != 0, est.coef_ != 0)}"
    )
    header = f"MCP λ={lam:g} γ={gamma:g}, n=200 p=20 Toeplitz ρ=0.5 (objective in lightreg's units)"
    return "\n".join([header, table(["solver", "objective", "nnz", "seconds"], rows), coefs, verdict])


def f1(found: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(found & truth)
    return 2 * tp / (np.count_nonzero(found) + np.count_nonzero(truth)) if tp else 0.0


def skglm_mcp_support(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """skglm's MCPRegression(alpha=λ/2, gamma=2γ) warm-started down the same λ grid; support at the best validation MSE."""
    import skglm

    est = skglm.MCPRegression(alpha=1.0, gamma=2 * GAMMAS["mcp"], tol=1e-10, max_iter=1000, warm_start=True)
    best = (np.inf, None)
    for lam in grid:
        est.set_params(alpha=float(lam) / 2).fit(x, y)
        mse = float(np.mean((yv - xv @ est.coef_ - est.intercept_) ** 2))
        if mse < best[0]:
            best = (mse, est.coef_.copy())
    return best[1] != 0


def f1_part(rhos: list[float], seeds: int, num: int, p: int, n: int) -> str:
    rows = []
    for rho in rhos:
        scores: dict[str, list[float]] = {name: [] for name in [*GAMMAS, "skglm mcp"]}
        sizes: dict[str, list[int]] = {name: [] for name in scores}
        for seed in range(seeds):
            x_all, y_all, coef = toeplitz_data(2 * n, p, rho, seed=seed, nonzeros=10)
            x_all, y_all = standardize(x_all, y_all)
            x, y, xv, yv = x_all[:n], y_all[:n], x_all[n:], y_all[n:]
            lam_max = float(np.abs(2 * x.T @ (y - y.mean()) / n).max())
            grid = lam_max * 0.02 ** (np.arange(num) / (num - 1))
            for name in GAMMAS:
                model = new_model(p)
                best = (np.inf, None)
                for lam in grid:
                    fit_exact(model, x, y, name, float(lam))
                    w = model.net.linear.weight.detach().numpy()[0].copy()
                    b = float(model.net.linear.bias.detach()[0])
                    mse = float(np.mean((yv - xv @ w - b) ** 2))
                    if mse < best[0]:
                        best = (mse, w)
                found = best[1] != 0
                scores[name].append(f1(found, coef != 0))
                sizes[name].append(int(found.sum()))
            found = skglm_mcp_support(x, y, xv, yv, grid)
            scores["skglm mcp"].append(f1(found, coef != 0))
            sizes["skglm mcp"].append(int(found.sum()))
        rows.append(
            [f"{rho:g}"]
            + [f"{np.mean(scores[k]):.3f} ± {np.std(scores[k]):.3f} (nnz {np.mean(sizes[k]):.1f})" for k in scores]
        )
    header = (
        f"support F1 (10 true of p={p}, n={n} train + {n} validation, λ by validation MSE over {num} warm-started "
        f"λ, {seeds} seeds; MCP γ=3, SCAD γ=3.7)"
    )
    return header + "\n" + table(["ρ", "L1", "MCP", "SCAD", "skglm MCP"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["reference", "f1", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 λ, ρ = 0.5, p = 60")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.8])
    parser.add_argument("--lam", type=float, default=0.1, help="λ of the reference part")
    parser.add_argument("--gamma", type=float, default=3.0, help="MCP γ of the reference part")
    args = parser.parse_args()
    seeds, rhos, num, p = (1, [0.5], 3, 60) if args.quick else (args.seeds, args.rhos, 10, 200)
    if args.part in ("reference", "both"):
        print(reference_part(args.lam, args.gamma), flush=True)
    if args.part in ("f1", "both"):
        started = time.perf_counter()
        print(f1_part(rhos, seeds, num, p, n=100))
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
