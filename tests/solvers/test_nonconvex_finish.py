"""mode=exact with nonconvex penalties: the full-batch finish is monotone accelerated proximal gradient (a momentum
step only where it lowers F), its objective never increases, with or without momentum, and on a well-conditioned
regression it reaches skglm's MCP/SCAD solution (converter below)."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import pytest
import torch

from lightreg.callbacks import regularizer
from lightreg.data.arrays import ArrayDataModule
from lightreg.models import LogisticRegression
from lightreg.penalties import L0, MCP, SCAD, LogSum, PenaltyTerm, penalty_value
from lightreg.penalties.nonconvex import NonconvexPenalty
from lightreg.solvers.proximal_gradient import fista

from helpers import quiet_trainer


def _toeplitz_design(n: int, p: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardized X (n, p) with corr ρ^|i−j|, y = X w* + noise standardized; w* has 5 nonzeros."""
    rng = np.random.default_rng(seed)
    cov = rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    x = rng.multivariate_normal(np.zeros(p), cov, size=n)
    x = (x - x.mean(0)) / x.std(0)
    coef = np.zeros(p)
    coef[[0, 3, 7, 12, 15]] = [1.5, -1.0, 0.8, -0.6, 0.5]
    y = x @ coef + 0.5 * rng.normal(size=n)
    return x, (y - y.mean()) / y.std()


@pytest.mark.parametrize(
    "penalty",
    [MCP(gamma=1.5, lam=0.1), SCAD(gamma=2.5, lam=0.1), LogSum(eps=0.05), L0()],
    ids=["mcp", "scad", "log_sum", "l0"],
)
@pytest.mark.parametrize("accelerate", [True, False], ids=["momentum", "plain"])
def test_finish_objective_never_increases(penalty: NonconvexPenalty, accelerate: bool) -> None:
    """From a point far from the solution on a correlated design: F at every iterate is at most the previous one
    (the accepted iterates; without momentum also at every gradient evaluation), and the end is stationary
    (limiting subdifferential)."""
    x_np, y_np = _toeplitz_design(60, 30, 0.8, seed=1)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    w = torch.full((1, 30), 0.5, dtype=torch.float64)
    term = PenaltyTerm(penalty, 0.1, {"w": w})
    history: list[float] = []

    def loss() -> float:
        return float(((x @ w[0] - y) ** 2).mean())

    def loss_and_grad() -> tuple[float, list[torch.Tensor]]:
        history.append(loss() + float(penalty_value([term])))  # F where the gradient is taken (y = x without momentum)
        return loss(), [(2 * (x @ w[0] - y) @ x / len(y))[None]]

    result = fista([w], [term], loss_and_grad, loss, max_iter=3000, tol=1e-6, patience=50, accelerate=accelerate)
    assert result.converged and len(result.objectives) > 20
    assert all(b <= a for a, b in itertools.pairwise(result.objectives))
    if not accelerate:
        assert all(b <= a for a, b in itertools.pairwise(history))
    assert result.objectives[-1] < 0.5 * result.objectives[0]
    assert result.objective == pytest.approx(loss() + float(penalty_value([term])))
    g = (2 * (x @ w[0] - y) @ x / len(y))[None]
    assert penalty.subdiff_distance(w, g, 0.1).max().item() < 1e-5


def _fit_exact(x: np.ndarray, y: np.ndarray, penalty: str, lam: float, gamma: float) -> np.ndarray:
    """lightreg's mode=exact (float64) on mean (y − Xw − b)² + pen_{λ,γ}(w): a few SGD epochs, then the full-batch finish."""
    torch.manual_seed(0)
    dm = ArrayDataModule(torch.from_numpy(x), torch.from_numpy(y), batch_size=50)
    model = LogisticRegression(
        input_shape=(x.shape[1],),
        num_classes=None,
        task="regression",
        optimizer=partial(torch.optim.SGD, lr=0.05),
        print_epochs=False,
    ).double()
    callback = regularizer(penalty, lam, gamma=gamma, mode="exact", finish={"max_iter": 5000, "tol": 1e-12})
    quiet_trainer([callback], max_epochs=3).fit(model, datamodule=dm)
    return model.net.linear.weight.detach().double().numpy()[0]


@pytest.mark.slow  # skglm's numba compilation (~15 s cold); lightreg's fit takes 0.3 s
def test_exact_mcp_matches_skglm_mcp_regression() -> None:
    """n=200, p=20, standardized: lightreg's mean (y − Xw − b)² + MCP_{λ,γ}(w) is twice skglm's
    ½ mean (y − Xw − b)² + MCP_{λ/2, 2γ}(w), so MCPRegression(alpha=λ/2, gamma=2γ) has the same solution."""
    import skglm

    x, y = _toeplitz_design(200, 20, 0.5, seed=0)
    lam, gamma = 0.1, 3.0
    ours = _fit_exact(x, y, "mcp", lam, gamma)
    est = skglm.MCPRegression(alpha=lam / 2, gamma=2 * gamma, tol=1e-12, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(ours, est.coef_, atol=1e-4)
    assert np.array_equal(ours != 0, est.coef_ != 0)
    assert 0 < np.count_nonzero(ours) < 20
