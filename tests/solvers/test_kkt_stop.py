"""The finish's stop rule: the KKT residual, not a settled objective, decides; the iteration cap is reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from lightreg.data import SklearnDataModule
from lightreg.errors import UserError
from lightreg.models import LogisticRegression
from lightreg.penalties import L1, PenaltyTerm
from lightreg.solvers import ProximalFinish, full_batch
from lightreg.solvers.kkt import kkt_report
from lightreg.solvers.proximal_gradient import fista


def _diabetes() -> tuple[LogisticRegression, list[tuple[torch.Tensor, ...]], np.ndarray, np.ndarray]:
    """The linear model of ``python -m train data=diabetes`` (float32, standardized target) and its training split."""
    dm = SklearnDataModule(name="diabetes", seed=0, batch_size=None)
    dm.setup("fit")
    model = LogisticRegression(input_shape=dm.input_shape, num_classes=None, task="regression", print_epochs=False)
    model.use_units_of(dm)
    with torch.no_grad():
        model.net.linear.weight.zero_()
        model.net.linear.bias.zero_()
    batches = full_batch.materialize(dm.train_dataloader(), model.net.linear.weight)
    x, y = batches[0]
    return model, batches, x.double().numpy(), model.net_target(y).double().numpy().ravel()


def test_diabetes_lasso_point_has_the_lassos_zeros() -> None:
    """λ = 0.0669, the diabetes path point where an input enters: the correlated serum columns leave a nearly flat
    direction along which an objective-settled stop left s1 at 0.0089 (scikit-learn: exactly 0). The KKT stop ends
    at the lasso (``Lasso(alpha=λ/2)`` on the same standardized target): same zeros, coefficients within 1e-4."""
    model, batches, x, t = _diabetes()
    lam = 0.0669
    term = PenaltyTerm(L1(), lam, {"weight": model.net.linear.weight})
    report = ProximalFinish().run(model, batches, [term])
    reference = Lasso(alpha=lam / 2, tol=1e-14, max_iter=1_000_000).fit(x, t).coef_
    ours = model.net.linear.weight.detach().double().numpy()[0]
    np.testing.assert_array_equal(ours != 0, reference != 0)
    assert 0 < np.count_nonzero(reference) < reference.size
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert report["converged"] == 1.0 and report["stalled"] == 0.0
    assert model.net.linear.weight.dtype == torch.float32  # solved in float64, handed back in the model's dtype
    assert report["kkt"] <= 1e-4 * lam
    assert kkt_report(model, batches, [term])["kkt_violation"] < 1e-5  # float32 evaluation of the rounded weights


def test_the_iteration_cap_is_reported_not_silent() -> None:
    """A solve cut short by ``max_iter`` says so (``converged`` 0) and reports how far from optimal it ended."""
    model, batches, _, _ = _diabetes()
    term = PenaltyTerm(L1(), 0.0669, {"weight": model.net.linear.weight})
    report = ProximalFinish(max_iter=3, threshold_rel=0.0).run(model, batches, [term])
    assert report["converged"] == 0.0 and report["iterations"] == 3
    assert report["kkt"] > 1e-4 * 0.0669


def test_fista_stops_on_the_kkt_residual() -> None:
    """f = ½‖w − c‖²: the stop comes once the residual is below tol·λ, and the residual it reports is the true one;
    asked for less than F's rounding can show (≈ √(eps·F)), it stops as stalled, converged, with its residual."""
    c = torch.tensor([3.0, 0.5, -2.0, 0.0], dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64)

    def loss() -> float:
        return float(0.5 * (w - c).square().sum())

    def loss_and_grad() -> tuple[float, list[torch.Tensor]]:
        return loss(), [w - c]

    term = PenaltyTerm(L1(), 1.0, {"w": w})
    result = fista([w], [term], loss_and_grad, loss, tol=1e-6, patience=3)
    assert result.stop == "kkt" and result.converged
    torch.testing.assert_close(w, torch.tensor([2.0, 0.0, -1.0, 0.0], dtype=torch.float64), rtol=0, atol=1e-6)
    assert 0 < result.kkt <= 1e-6
    assert L1().subdiff_distance(w, w - c, 1.0).max().item() == pytest.approx(result.kkt, abs=1e-15)
    w.zero_()
    tight = fista([w], [term], loss_and_grad, loss, tol=1e-14, patience=3)
    assert tight.stop == "stalled" and tight.converged and tight.iterations < 100
    assert tight.kkt < 1e-6


def test_finish_rejects_a_bad_precision() -> None:
    with pytest.raises(UserError, match=r"finish\.precision must be 'auto' or 'model', got 'half'"):
        ProximalFinish(precision="half")
