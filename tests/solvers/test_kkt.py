"""KKT residual: subdifferential distances on known tensors, kkt_violation of a model, and the metrics.json figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import lightreg
from lightreg.data import SklearnDataModule
from lightreg.models import LogisticRegression
from lightreg.penalties import L1, L2, ElasticNet, GroupLasso, PenaltyTerm

from conftest import describe


def _t(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_l1_distance_by_hand() -> None:
    w, g = _t([2.0, 0.0, 0.0, -1.0]), _t([-1.0, 0.5, 3.0, 2.0])
    # w≠0: |g + λ sign w| = |−1 + 1|, |2 − 1|; w=0: max(|g| − λ, 0) = max(0.5 − 1, 0), max(3 − 1, 0)
    torch.testing.assert_close(L1().subdiff_distance(w, g, 1.0), _t([0.0, 0.0, 2.0, 1.0]))


def test_elastic_net_distance_by_hand() -> None:
    w, g = _t([1.0, 0.0]), _t([-2.0, 1.5])
    # λ=2, ρ=0.5: w≠0: |g + λ(1−ρ)w + λρ sign w| = |−2 + 1 + 1| = 0; w=0: max(1.5 − λρ, 0) = 0.5
    torch.testing.assert_close(ElasticNet(0.5).subdiff_distance(w, g, 2.0), _t([0.0, 0.5]))


def test_l2_distance_by_hand() -> None:
    torch.testing.assert_close(L2().subdiff_distance(_t([1.0, 0.0]), _t([-0.5, 0.25]), 0.5), _t([0.0, 0.25]))


def test_group_distance_by_hand() -> None:
    w = _t([[3.0, 4.0], [0.0, 0.0]])
    tau = math.sqrt(2)  # λ√size with λ = 1, size 2
    g = _t([[-tau * 0.6, -tau * 0.8 + 0.1], [3.0, 4.0]])
    # row 0: ‖g + τ w/‖w‖‖ = ‖(0, 0.1)‖; row 1 (zero): ‖g‖ − τ = 5 − √2
    got = GroupLasso("rows").subdiff_distance(w, g, 1.0)
    torch.testing.assert_close(got, _t([[0.1], [5.0 - tau]]))
    torch.testing.assert_close(GroupLasso("rows").zero_threshold(w, 1.0), _t([[tau], [tau]]))


@pytest.fixture(scope="module")
def breast_cancer() -> SklearnDataModule:
    dm = SklearnDataModule("breast_cancer", batch_size=128)
    dm.setup("fit")
    return dm


def _model(dm: SklearnDataModule) -> LogisticRegression:
    torch.manual_seed(0)
    return LogisticRegression(input_shape=dm.input_shape, num_classes=dm.num_classes, task=dm.task, print_epochs=False)


def test_kkt_violation_without_penalty_is_the_gradient_max(breast_cancer: SklearnDataModule) -> None:
    model = _model(breast_cancer)
    x, y = breast_cancer.x_train, breast_cancer.y_train
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = max(float(g.abs().max()) for g in grads)
    assert lightreg.kkt_violation(model, breast_cancer) == pytest.approx(expected, rel=1e-5)


def test_kkt_violation_at_all_zero_weights_is_the_excess_over_lambda(breast_cancer: SklearnDataModule) -> None:
    """At W = 0 with an optimal bias, the residual is max(|∇_W f| − λ, 0): zero iff λ ≥ λ_max."""
    model = _model(breast_cancer)
    with torch.no_grad():
        model.net.linear.weight.zero_()
        p = breast_cancer.y_train.mean()
        model.net.linear.bias.fill_(float(torch.log(p / (1 - p))))  # ∂f/∂b = mean(σ(b) − y) = 0
    x, y = breast_cancer.x_train, breast_cancer.y_train
    grad_w = ((torch.sigmoid(model.net.linear.bias.detach()) - y)[:, None] * x).mean(0)
    lam_max = float(grad_w.abs().max())
    assert lightreg.kkt_violation(model, breast_cancer, (L1(), lam_max * 1.01)) < 1e-6
    got = lightreg.kkt_violation(model, breast_cancer, (L1(), lam_max / 2))
    assert got == pytest.approx(lam_max / 2, rel=1e-4)
    term = PenaltyTerm(L1(), lam_max / 2, {"net.linear.weight": model.net.linear.weight})
    assert lightreg.kkt_violation(model, breast_cancer, term) == pytest.approx(got)


def test_kkt_violation_rejects_unknown_items(breast_cancer: SklearnDataModule) -> None:
    with pytest.raises(ValueError, match=r"kkt_violation takes .* got 'l1'"):
        lightreg.kkt_violation(_model(breast_cancer), breast_cancer, "l1")


@pytest.mark.slow
def test_metrics_json_reports_kkt_for_logistic_regression(cli, tmp_path: Path) -> None:
    """Plain prox-SGD stops far from optimal; mode=exact ends at a KKT point; both figures land in metrics.json."""
    figures = {}
    for mode in ("prox", "exact"):
        proc = cli(
            "data=breast_cancer",
            "+penalty=l1",
            "lambda=0.01",
            f"penalty.mode={mode}",
            "trainer.max_epochs=2",
            "logger=none",
            "callbacks=none",
            f"hydra.run.dir={tmp_path / mode}",
        )
        assert proc.returncode == 0, describe(proc)
        figures[mode] = json.loads((tmp_path / mode / "metrics.json").read_text())
    assert figures["prox"]["kkt_violation"] > 1e-3
    assert figures["exact"]["kkt_violation"] < 1e-4
    assert figures["exact"]["full_objective"] < figures["prox"]["full_objective"]
    assert figures["exact"]["exact/converged"] == 1.0
