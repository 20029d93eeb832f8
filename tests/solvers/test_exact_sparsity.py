"""mode=exact: the group prox in a diagonal metric, the full-batch FISTA finish, the KKT thresholding, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from sklearn.linear_model import Lasso

from lightreg.callbacks import RegularizationCallback, regularizer
from lightreg.cli.build import build_callbacks
from lightreg.errors import UserError
from lightreg.penalties import L1, L2, GroupLasso, PenaltyTerm
from lightreg.penalties.metric_prox import metric_group_soft_threshold_
from lightreg.solvers import ProximalFinish
from lightreg.solvers.proximal_gradient import fista, kkt_threshold

from conftest import describe


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- group prox in the optimizer's metric


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_group_prox_in_diagonal_metric_is_stationary(groups: str) -> None:
    """u minimizes ½Σ(u−w)²/s + √size‖u_g‖: (w−u)/s = √size·u/‖u‖ on nonzero groups, ‖w/s‖ ≤ √size on zero ones."""
    penalty = GroupLasso(groups)
    w, s = _randn(5, 7) * 2, _randn(5, 7, seed=1).abs() * 2 + 0.05
    w.select(penalty.dim, 0).mul_(0.01)  # a group that must end at zero
    u = penalty.prox_(w.clone(), s)
    dim, size = penalty.dim, w.numel() // w.shape[penalty.dim]
    norms = torch.linalg.vector_norm(u, dim=1 - dim, keepdim=True)
    zero = (norms == 0).broadcast_to(w.shape)
    assert zero.any() and (~zero).any()
    residual = (w - u) / s - math.sqrt(size) * u / norms.clamp(min=1e-300)
    assert residual[~zero].abs().max() < 1e-12
    zero_groups = (norms == 0).flatten()
    assert torch.all(torch.linalg.vector_norm(w / s, dim=1 - dim)[zero_groups] <= math.sqrt(size))


def test_group_prox_known_values() -> None:
    """Steps (1, 4) on v = (3, 4), τ = 1: root r of Σ(d v/(d r + τ))² = 1 with d = (1, 1/4)."""
    v, s = torch.tensor([[3.0, 4.0]], dtype=torch.float64), torch.tensor([[1.0, 4.0]], dtype=torch.float64)
    u = metric_group_soft_threshold_(v.clone(), s, 1.0, (1,))
    r = float(torch.linalg.vector_norm(u))
    d = torch.tensor([1.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(u[0], d * v[0] * r / (d * r + 1.0))
    assert float(((d * v[0] / (d * r + 1.0)) ** 2).sum()) == pytest.approx(1.0, abs=1e-12)
    # ‖D v‖ = ‖(3, 1)‖ = √10: zero exactly when τ ≥ √10
    assert torch.count_nonzero(metric_group_soft_threshold_(v.clone(), s, math.sqrt(10.0), (1,))) == 0
    assert torch.count_nonzero(metric_group_soft_threshold_(v.clone(), s, math.sqrt(10.0) - 1e-6, (1,))) == 2


def test_group_prox_equal_steps_is_block_soft_threshold() -> None:
    w = _randn(4, 6)
    penalty = GroupLasso("rows")
    torch.testing.assert_close(penalty.prox_(w.clone(), torch.full_like(w, 0.3)), penalty.prox_(w.clone(), 0.3))


# ---------------------------------------------------------------- FISTA and the KKT thresholding


def _least_squares(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
    n = x.shape[0]

    def loss() -> float:
        return float(0.5 * (x @ w - y).square().sum() / n)

    def loss_and_grad() -> tuple[float, list[torch.Tensor]]:
        r = x @ w - y
        return float(0.5 * r.square().sum() / n), [x.T @ r / n]

    return loss, loss_and_grad


def test_fista_reaches_the_lasso_optimum_of_sklearn() -> None:
    x, beta = _randn(60, 12), torch.zeros(12, dtype=torch.float64)
    beta[:3] = torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64)
    y = x @ beta + 0.5 * _randn(60, seed=1)
    lam = 0.1
    reference = Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x.numpy(), y.numpy()).coef_
    w = torch.zeros(12, dtype=torch.float64)
    loss, loss_and_grad = _least_squares(x, y, w)
    result = fista([w], [PenaltyTerm(L1(), lam, {"w": w})], loss_and_grad, loss, max_iter=5000, tol=1e-14, patience=30)
    assert result.converged
    np.testing.assert_allclose(w.numpy(), reference, atol=1e-6)
    assert np.array_equal(w.numpy() != 0, reference != 0)
    assert 3 <= int((w != 0).sum()) < 12


def test_kkt_threshold_keeps_only_zeros_that_satisfy_kkt() -> None:
    """f = ½‖w − c‖², λ = 1: entry 0 creeps (c₀ = 0.9 ≤ λ, zero is optimal), entry 1 is small but right (c₁ = 1.001)."""
    c = torch.tensor([0.9, 1.001, 5.0], dtype=torch.float64)
    w = torch.tensor([1e-3, 1e-3, 4.0], dtype=torch.float64)

    def loss() -> float:
        return float(0.5 * (w - c).square().sum())

    def loss_and_grad() -> tuple[float, list[torch.Tensor]]:
        return loss(), [w - c]

    zeroed = kkt_threshold([w], [PenaltyTerm(L1(), 1.0, {"w": w})], loss_and_grad, loss, rel=1e-2)
    assert zeroed == 1
    torch.testing.assert_close(w, torch.tensor([0.0, 1e-3, 4.0], dtype=torch.float64))


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_iter": 0}, "finish.max_iter must be a positive integer, got 0"),
        ({"tol": -1.0}, r"finish.tol must be a number in \[0, 1\), got -1.0"),
        ({"threshold_rel": 1.5}, r"finish.threshold_rel must be a number in \[0, 1\), got 1.5"),
        ({"num_threads": 0}, r"finish.num_threads must be a positive integer, 'auto' or null .*got 0"),
        ({"num_threads": True}, r"finish.num_threads must be .*got True"),
    ],
)
def test_finish_rejects_bad_options(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        ProximalFinish(**options)


def test_finish_options_need_mode_exact() -> None:
    with pytest.raises(UserError, match="finish options apply to mode='exact' only, got mode='prox'"):
        regularizer("l1", 0.01, mode="prox", finish={"max_iter": 10})


def test_seed001_exact_experiment_composes() -> None:
    with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=seed001_exact", "callbacks=none"])
    regs = [cb for cb in build_callbacks(cfg) if isinstance(cb, RegularizationCallback)]
    assert [(type(cb.penalty), cb.mode, cb.strength) for cb in regs] == [
        (GroupLasso, "exact", 0.025),
        (L2, "grad", 0.01),
    ]
    assert list(cfg.model.hidden_sizes) == [16]
    assert regs[0].penalty.groups == "columns" and regs[0].include == ["net.fc1.weight"]
    assert isinstance(regs[0].finish, ProximalFinish) and regs[1].finish is None


# ---------------------------------------------------------------- the CLI on the seed-001 setup

SEED001 = (
    "data=synthetic",
    "model=mlp",
    "model.hidden_sizes=[6]",
    "+penalty=group_lasso",
    "lambda=0.04",
    "penalty.include=[net.fc1.weight]",
    "+penalty@extra_penalties.l2_rest=l2",
    "extra_penalties.l2_rest.strength=0.01",
    "extra_penalties.l2_rest.exclude=[net.fc1.weight]",
    "trainer.max_epochs=15",
    "logger=none",
)


def _zero_columns(run_dir: Path) -> torch.Tensor:
    # last.ckpt is written at the end of every epoch: the final model
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return (state["net.fc1.weight"] == 0).all(dim=0)


@pytest.mark.slow
def test_cli_exact_mode_zeroes_the_noise_columns(cli, tmp_path: Path) -> None:
    """seed-001 setup, seed 0, SGD batch 64: prox leaves noise columns in; mode=exact zeroes all 8, keeps x0 and x1."""
    zero = {}
    for mode in ("prox", "exact"):
        proc = cli(*SEED001, f"penalty.mode={mode}", f"hydra.run.dir={tmp_path / mode}")
        assert proc.returncode == 0, describe(proc)
        zero[mode] = _zero_columns(tmp_path / mode)
    metrics = json.loads((tmp_path / "exact" / "metrics.json").read_text())
    assert zero["exact"].tolist() == [False, False] + [True] * 8
    assert int(zero["prox"][2:].sum()) < 8
    assert metrics["exact/converged"] == 1.0 and metrics["kkt_violation"] < 1e-3
    assert metrics["val/acc"] >= 0.85


def test_finish_refuses_a_diverged_start() -> None:
    w = torch.full((3,), float("nan"), dtype=torch.float64)

    def loss() -> float:
        return float((w - 1).square().sum())

    def loss_and_grad() -> tuple[float, list[torch.Tensor]]:
        return loss(), [2 * (w - 1)]

    with pytest.raises(UserError, match=r"non-finite objective \(nan\): training diverged"):
        fista([w], [PenaltyTerm(L1(), 0.1, {"w": w})], loss_and_grad, loss)
