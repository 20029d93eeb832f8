"""The coupled group lasso's maths: disjoint groups give the plain block soft-threshold, the adaptive metric with
equal steps gives the same, λ_max and the KKT pieces agree with the prox."""

from __future__ import annotations

import pytest
import torch

from lightreg.errors import UserError
from lightreg.penalties import GroupLasso
from lightreg.penalties.coupled import CoupledGroupLasso, slices_from_groups


def _rows_as_groups(w: torch.Tensor, b: torch.Tensor) -> CoupledGroupLasso:
    """One group per row of ``w`` together with the matching bias entry (disjoint groups)."""
    shapes = {"w": w.shape, "b": b.shape}
    groups = [[("w", 0, [i]), ("b", 0, [i])] for i in range(w.shape[0])]
    return CoupledGroupLasso().bind(slices_from_groups(groups, shapes))


def test_disjoint_groups_match_the_block_soft_threshold() -> None:
    torch.manual_seed(0)
    w, b = torch.randn(6, 4), torch.randn(6)
    penalty = _rows_as_groups(w, b)
    joined = torch.cat([w, b[:, None]], dim=1)  # the same groups as rows of one 6x5 tensor
    params = {"w": w.clone(), "b": b.clone()}
    penalty.prox_(params, {"w": 0.9, "b": 0.9})
    expected = GroupLasso(groups="rows").prox_(joined.clone(), 0.9)
    assert torch.allclose(torch.cat([params["w"], params["b"][:, None]], dim=1), expected, atol=1e-6)
    assert penalty.value({"w": w, "b": b}).item() == pytest.approx(
        GroupLasso(groups="rows").value(joined).item(), rel=1e-6
    )
    zero = penalty.unit_norms(params) == 0
    assert 0 < int(zero.sum()) < 6
    assert bool((params["b"][zero] == 0).all())  # bias entries leave with their rows


def test_metric_prox_with_equal_steps_is_the_scalar_prox() -> None:
    torch.manual_seed(1)
    w, b = torch.randn(5, 3), torch.randn(5)
    penalty = _rows_as_groups(w, b)
    scalar = {"w": w.clone(), "b": b.clone()}
    metric = {"w": w.clone(), "b": b.clone()}
    penalty.prox_(scalar, {"w": 0.4, "b": 0.4})
    penalty.prox_(metric, {"w": torch.full_like(w, 0.4), "b": torch.full_like(b, 0.4)})
    assert torch.allclose(scalar["w"], metric["w"], atol=1e-6) and torch.allclose(scalar["b"], metric["b"], atol=1e-6)


def test_lambda_max_zeroes_every_group_and_kkt_holds_at_zero() -> None:
    torch.manual_seed(2)
    g = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    penalty = _rows_as_groups(g["w"], g["b"])
    lam = penalty.lambda_max(g)
    # one proximal-gradient step from 0 with step 1: prox_{λR}(−g) is zero exactly at λ >= λ_max
    at = {n: -t.clone() for n, t in g.items()}
    penalty.prox_(at, {"w": lam * 1.0001, "b": lam * 1.0001})
    assert all(bool((t == 0).all()) for t in at.values())
    zeros = {n: torch.zeros_like(t) for n, t in g.items()}
    assert bool(penalty.zero_is_optimal(g, lam * 1.0001).all())
    assert not bool(penalty.zero_is_optimal(g, lam * 0.99).all())
    assert float(penalty.subdiff_distance(zeros, g, lam * 1.0001).max()) == 0.0


def test_sparse_group_lasso_lambda_max_by_bisection() -> None:
    torch.manual_seed(3)
    g = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    groups = _rows_as_groups(g["w"], g["b"]).groups
    penalty = CoupledGroupLasso(l1_ratio=0.5).bind(groups)
    lam = penalty.lambda_max(g)
    assert bool(penalty.zero_is_optimal(g, lam * 1.001).all())
    assert not bool(penalty.zero_is_optimal(g, lam * 0.999).all())


def test_l1_ratio_one_is_refused() -> None:
    with pytest.raises(UserError, match="plain L1"):
        CoupledGroupLasso(l1_ratio=1.0)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3])
def test_grad_is_the_gradient_of_value_with_overlapping_groups(l1_ratio: float) -> None:
    torch.manual_seed(4)
    w1, w2 = torch.randn(3, 4), torch.randn(2, 3)  # w2's columns share the groups of w1's rows: overlap
    groups = [[("w1", 0, [i]), ("w2", 1, [i])] for i in range(3)] + [[("w2", 0, [j])] for j in range(2)]
    penalty = CoupledGroupLasso(l1_ratio).bind(slices_from_groups(groups, {"w1": w1.shape, "w2": w2.shape}))
    params = {"w1": w1.clone().requires_grad_(), "w2": w2.clone().requires_grad_()}
    penalty.value(params).backward()
    grads = penalty.grad({n: p.detach() for n, p in params.items()})
    assert all(torch.allclose(grads[n], params[n].grad, atol=1e-5) for n in params)


def test_metric_prox_matches_the_single_tensor_metric_prox() -> None:
    torch.manual_seed(5)
    w = torch.randn(6, 5)
    step = torch.rand(6, 5) + 0.5
    groups = [[("w", 0, [i])] for i in range(6)]
    penalty = CoupledGroupLasso().bind(slices_from_groups(groups, {"w": w.shape}))
    params = {"w": w.clone()}
    penalty.prox_(params, {"w": step})
    expected = GroupLasso(groups="rows").prox_(w.clone(), step)
    assert torch.allclose(params["w"], expected, atol=1e-5)
    assert 0 < int((expected == 0).all(dim=1).sum()) < 6


class _TinyConvNet(torch.nn.Module):
    """conv (1→4, 8×8 map) → BN → conv (4→6, stride 2: 4×4 map) → mean → Linear: groups on two map sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.c2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.c2(torch.relu(self.bn(self.c1(x))))).mean(dim=(2, 3)))


def _macs_groups() -> tuple[torch.nn.Module, object]:
    from lightreg.compact.coupling import coupled_layout, macs_per_entry

    torch.manual_seed(6)
    net, x = _TinyConvNet(), torch.randn(2, 1, 8, 8)
    layout, _ = coupled_layout(net, x)
    return net, layout.weighted(layout.macs_weights(macs_per_entry(net, x, layout.names)))


def test_macs_weights_are_each_groups_macs_over_root_size() -> None:
    """c_g = MACs_g / (m̄ √size_g), MACs counted by hand: c1's channels (filter 9 + bias 1 + BN 2 entries on the
    8×8 map, c2's input slice 6·9 on the 4×4 map), c2's channels (filter 4·9 + bias 1 on 4×4, fc column 3 once)."""
    _, groups = _macs_groups()
    sizes = sorted({float(s) for s in groups.sizes})
    assert sizes == [40.0, 66.0]
    macs = {66.0: 12 * 64 + 54 * 16, 40.0: 37 * 16 + 3 * 1}
    expected_macs = torch.tensor([macs[float(s)] for s in groups.sizes], dtype=torch.float64)
    mean = expected_macs.sum() / groups.sizes.sum()
    assert torch.allclose(groups.weights, expected_macs / (mean * groups.sizes.sqrt()))
    # proportional to MACs_g / √size_g, and √size_g on the parameter-weighted average (λ keeps its units)
    ratio = groups.weights * groups.root / expected_macs
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    assert float((groups.sizes * groups.weights / groups.root).sum() / groups.sizes.sum()) == pytest.approx(1.0)
    assert float(groups.weights[groups.sizes == 66].mean()) > float(groups.root[groups.sizes == 66].mean())


@pytest.mark.parametrize("l1_ratio", [0.0, 0.4])
def test_lambda_max_with_macs_weights_zeroes_every_group_in_one_prox_step(l1_ratio: float) -> None:
    """From the point 0 with gradient g, one proximal-gradient step (step 1) lands on 0 at λ >= λ_max, not below."""
    net, groups = _macs_groups()
    penalty = CoupledGroupLasso(l1_ratio, group_weight="macs").bind(groups)
    torch.manual_seed(7)
    g = {n: torch.randn_like(p) for n, p in net.named_parameters() if n in groups.names}
    lam = penalty.lambda_max(g)

    def step(strength: float) -> dict[str, torch.Tensor]:
        at = {n: -t.clone() for n, t in g.items()}
        penalty.prox_(at, dict.fromkeys(at, strength))
        return at

    assert all(bool((t == 0).all()) for t in step(lam * 1.0001).values())
    if l1_ratio == 0:  # every group owns a bias entry no other group shares: the top group stays non-zero below λ_max
        assert not all(bool((t == 0).all()) for t in step(lam * 0.99).values())
    assert bool(penalty.zero_is_optimal(g, lam * 1.0001).all())
    assert not bool(penalty.zero_is_optimal(g, lam * 0.99).all())
    assert torch.allclose(penalty.zero_threshold(1.0), (1 - l1_ratio) * groups.weights.float().double())


def test_group_weight_is_checked_at_construction() -> None:
    with pytest.raises(UserError, match="'flops'"):
        CoupledGroupLasso(group_weight="flops")
    assert "macs" in repr(CoupledGroupLasso(group_weight="macs"))
    assert repr(CoupledGroupLasso()) == "CoupledGroupLasso(groups='coupled')"  # checkpoints name it as before
