"""Nonconvex penalties (MCP, SCAD, log-sum, L0, group MCP/SCAD): prox against a grid argmin, values against skglm,
limiting-subdifferential stationarity at skglm's solution, validation. The generic contract tests of every
registered penalty (including these) are in test_penalties.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightreg.errors import UserError
from lightreg.penalties import make_penalty
from lightreg.penalties.group_nonconvex import GroupMCP, GroupSCAD
from lightreg.penalties.nonconvex import L0, MCP, SCAD, LogSum, NonconvexPenalty, at_strength

skglm_penalties = pytest.importorskip("skglm.penalties")

ELEMENTWISE = [MCP(gamma=3.0, lam=0.8), MCP(gamma=1.2, lam=1.0), SCAD(gamma=3.7, lam=0.8), LogSum(eps=0.3), L0()]
GRID = torch.arange(-60_000, 60_001, dtype=torch.float64) * 1e-4  # exact 0 on the grid


def _grid_argmin(penalty: NonconvexPenalty, z: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Per entry: argmin over a fine grid of ½(x − z)²/step + R(x), R applied to the grid as one entry per point."""
    objective = 0.5 * (GRID - z[:, None]).square() / step[:, None] + penalty.phi(GRID.abs(), 1.0)
    return GRID[objective.argmin(dim=1)]


@pytest.mark.parametrize("penalty", ELEMENTWISE, ids=repr)
@pytest.mark.parametrize("step", [0.3, 1.0, 2.5])
def test_prox_is_the_grid_argmin(penalty: NonconvexPenalty, step: float) -> None:
    """Scalar and per-entry steps (step 2.5 ≥ γ = 1.2 takes MCP's hard-threshold regime, ≥ γ − 1 SCAD's)."""
    z = torch.tensor([-4.0, -2.2, -0.9, -0.1, 0.0, 0.35, 0.8, 1.3, 2.0, 3.1, 5.0], dtype=torch.float64)
    scalar = torch.full_like(z, step)
    torch.testing.assert_close(penalty.prox_(z.clone(), step), _grid_argmin(penalty, z, scalar), atol=2e-4, rtol=0)
    steps = scalar.clone()
    steps[::2] = 0.5  # a per-entry step: each entry against the grid argmin at its own step
    torch.testing.assert_close(penalty.prox_(z.clone(), steps), _grid_argmin(penalty, z, steps), atol=2e-4, rtol=0)


def test_mcp_prox_closed_forms() -> None:
    """Firm threshold for η < γ: 0 below ηλ, (t − ηλ)/(1 − η/γ) up to γλ, identity beyond; hard threshold at
    λ√(γη) for η ≥ γ."""
    lam, gamma = 1.0, 3.0
    mcp = MCP(gamma=gamma, lam=lam)
    z = torch.tensor([0.4, 1.6, 2.5, 3.5], dtype=torch.float64)
    eta = 0.5
    expected = torch.tensor([0.0, (1.6 - 0.5) / (1 - eta / gamma), (2.5 - 0.5) / (1 - eta / gamma), 3.5])
    torch.testing.assert_close(mcp.prox_(z.clone(), eta * lam), expected.double())
    eta = 4.0  # hard threshold at √(3·4) ≈ 3.46
    torch.testing.assert_close(mcp.prox_(z.clone(), eta * lam), torch.tensor([0, 0, 0, 3.5], dtype=torch.float64))


@pytest.mark.parametrize("penalty_cls", [GroupMCP, GroupSCAD])
def test_group_prox_acts_on_the_group_norm(penalty_cls: type) -> None:
    """Scalar step: each column keeps its direction and its norm is the 1-D prox of φ with weight √size."""
    penalty = penalty_cls(gamma=3.0, lam=0.5, groups="columns")
    w = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w *= torch.tensor([0.1, 0.3, 0.6, 1.0, 2.0, 4.0], dtype=torch.float64)
    u = penalty.prox_(w.clone(), 0.6)
    norms_w, norms_u = w.norm(dim=0), u.norm(dim=0)
    grid = torch.linspace(0, 20, 200_001, dtype=torch.float64)
    for j in range(6):
        objective = 0.5 * (grid - norms_w[j]).square() + 0.6 * penalty.phi(grid, 2.0)
        assert norms_u[j].item() == pytest.approx(grid[objective.argmin()].item(), abs=2e-4)
        if norms_u[j] > 0:
            torch.testing.assert_close(u[:, j] / norms_u[j], w[:, j] / norms_w[j])
    assert (norms_u == 0).any() and (norms_u > 0).any()


@pytest.mark.parametrize("penalty", [GroupMCP(gamma=3.0, lam=0.5), GroupSCAD(gamma=3.7, lam=0.5)], ids=repr)
def test_group_prox_per_entry_step_is_stationary_in_the_metric(penalty: NonconvexPenalty) -> None:
    """Per-entry step s: the kept groups satisfy (v − u)/s = λφ'(‖u‖) u/‖u‖ and beat the input and zero."""
    v = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    s = torch.rand(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.2
    u = penalty.prox_(v.clone(), s)
    norms = u.norm(dim=1, keepdim=True)
    kept = norms.squeeze(1) > 0
    assert kept.any()
    residual = (v - u) / s - penalty.slope(norms, 2.0) * u / norms.clamp(min=1e-300)
    assert residual[kept].abs().max().item() < 1e-8

    def objective(x: torch.Tensor) -> float:
        return (0.5 * ((x - v).square() / s).sum() + penalty.value(x)).item()

    assert objective(u) <= min(objective(v), objective(torch.zeros_like(v))) + 1e-12


@pytest.mark.slow  # skglm's numba compilation: 3-5 s
@pytest.mark.parametrize(
    ("penalty", "reference"),
    [
        (MCP(gamma=3.0, lam=0.7), lambda: skglm_penalties.MCPenalty(alpha=0.7, gamma=3.0)),
        (SCAD(gamma=3.7, lam=0.7), lambda: skglm_penalties.SCAD(alpha=0.7, gamma=3.7)),
        (LogSum(eps=0.4), lambda: skglm_penalties.LogSumPenalty(alpha=0.7, eps=0.4)),
    ],
    ids=["mcp", "scad", "log_sum"],
)
def test_value_equals_skglm(penalty: NonconvexPenalty, reference) -> None:
    """λ·R(w) = skglm's value with alpha = λ (0.7), on entries spread over every piece."""
    w = np.array([0.0, 0.3, -0.69, 1.0, -1.5, 2.3, -2.6, 4.0])
    got = 0.7 * penalty.value(torch.from_numpy(w)).item()
    assert got == pytest.approx(reference().value(w), rel=1e-12)


@pytest.mark.slow  # skglm's numba compilation: 3-5 s
def test_group_mcp_value_equals_skglm_block_mcp() -> None:
    """Columns of a (3, 5) weight = rows of skglm's W (5, 3); lightreg's unit weight √3 sits in skglm's alpha."""
    w = np.random.default_rng(0).normal(size=(3, 5)) * [0.1, 1.0, 2.0, 4.0, 0.0]
    lam = 0.6
    got = lam * GroupMCP(gamma=2.5, lam=lam, groups="columns").value(torch.from_numpy(w)).item()
    expected = skglm_penalties.BlockMCPenalty(alpha=lam * math.sqrt(3), gamma=2.5).value(w.T)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "penalty", [*ELEMENTWISE[:-1], GroupMCP(lam=0.5), GroupSCAD(lam=0.5, groups="columns")], ids=repr
)
def test_grad_is_the_derivative(penalty: NonconvexPenalty) -> None:
    """grad = d value / dw (central differences) away from zero and the knots."""
    w = torch.tensor([[0.37, -1.21, 2.9], [-0.55, 4.3, 0.91]], dtype=torch.float64)
    grad = penalty.grad(w)
    h = 1e-6
    for idx in np.ndindex(*w.shape):
        e = torch.zeros_like(w)
        e[idx] = h
        numeric = (penalty.value(w + e) - penalty.value(w - e)).item() / (2 * h)
        assert grad[idx].item() == pytest.approx(numeric, abs=1e-6)


def test_l0_has_no_gradient_form() -> None:
    with pytest.raises(UserError, match="mode=prox"):
        L0().grad(torch.ones(3))


def _regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 8))
    y = x @ np.array([3.0, -2.0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.2]) + 0.3 * rng.normal(size=60)
    return x, y


@pytest.mark.slow  # skglm's numba compilation: 3-5 s
@pytest.mark.parametrize(
    ("make_reference", "penalty"),
    [
        (lambda: skglm_penalties.MCPenalty(alpha=0.3, gamma=3.0), MCP(gamma=3.0, lam=0.3)),
        (lambda: skglm_penalties.SCAD(alpha=0.3, gamma=3.7), SCAD(gamma=3.7, lam=0.3)),
        (lambda: skglm_penalties.LogSumPenalty(alpha=0.05, eps=0.5), LogSum(eps=0.5)),
    ],
    ids=["mcp", "scad", "log_sum"],
)
def test_skglm_solution_is_stationary(make_reference, penalty: NonconvexPenalty) -> None:
    """At skglm's solution of ½ mean (y − Xw)² + pen(w), lightreg's limiting-subdifferential distance is ~0."""
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Quadratic
    from skglm.solvers import AndersonCD

    reference = make_reference()
    x, y = _regression()
    est = GeneralizedLinearEstimator(Quadratic(), reference, AndersonCD(tol=1e-12, fit_intercept=False))
    w = est.fit(x, y).coef_
    assert (w == 0).any() and (w != 0).any()
    g = torch.from_numpy(-x.T @ (y - x @ w) / len(y))
    dist = penalty.subdiff_distance(torch.from_numpy(w), g, reference.alpha)
    assert dist.max().item() < 1e-8
    doubled = at_strength(penalty, 2 * reference.alpha)  # a λ twice as large (and its knee): w is not stationary
    assert doubled.subdiff_distance(torch.from_numpy(w), g, 2 * reference.alpha).max().item() > 1e-3


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("mcp", {"gamma": 1.0}, "mcp gamma must be a finite number > 1, got 1.0"),
        ("scad", {"gamma": 2}, "scad gamma must be a finite number > 2, got 2"),
        ("group_mcp", {"gamma": 0.5}, "group_mcp gamma must be a finite number > 1, got 0.5"),
        ("group_scad", {"gamma": float("nan")}, "group_scad gamma must be a finite number > 2, got nan"),
        ("log_sum", {"eps": 0}, "log_sum eps must be a finite number > 0, got 0"),
        ("mcp", {"lam": -1.0}, r"lam \(the strength λ\) must be a finite number > 0, got -1.0"),
        ("group_mcp", {"groups": "diagonal"}, "groups must be one of"),
    ],
)
def test_bad_parameters_are_refused_with_the_value(name: str, options: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        make_penalty(name, **options)


def test_at_strength_moves_the_knee_only_for_mcp_and_scad() -> None:
    assert at_strength(MCP(gamma=3.0), 0.2) == MCP(gamma=3.0, lam=0.2)
    assert at_strength(GroupSCAD(gamma=4.0, groups="columns"), 0.5).lam == 0.5
    assert at_strength(MCP(gamma=3.0), 0.0) == MCP(gamma=3.0)  # λ = 0: inactive term, knee left alone
    assert at_strength(LogSum(eps=0.1), 0.2) == LogSum(eps=0.1)
    l1 = make_penalty("l1")
    assert at_strength(l1, 0.2) is l1


def test_zero_thresholds_and_lambda_max() -> None:
    """Zero threshold λφ'(0⁺): λ for MCP/SCAD, λ√size for groups, λ/ε for log-sum, ∞ for L0."""
    g = torch.tensor([[1.0, -4.0], [2.0, 2.0]], dtype=torch.float64)
    w = torch.zeros_like(g)
    assert MCP().lambda_max(g) == SCAD().lambda_max(g) == 4.0
    assert LogSum(eps=0.5).lambda_max(g) == 2.0
    assert L0().lambda_max(g) == 8.0
    assert GroupMCP(groups="rows").lambda_max(g) == pytest.approx(math.sqrt(17 / 2))
    assert (MCP().zero_threshold(w, 0.3) == 0.3).all()
    assert torch.allclose(GroupSCAD().zero_threshold(w, 0.3), torch.full((2, 1), 0.3 * math.sqrt(2), dtype=g.dtype))
    assert (LogSum(eps=0.5).zero_threshold(w, 0.3) == 0.6).all()
    assert L0().zero_is_optimal(w, g * 1e6, 0.3).all()
