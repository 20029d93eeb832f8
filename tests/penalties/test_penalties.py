"""Penalties: values, gradients, prox operators (closed form, in place, optimality), lambda_max and the KKT pieces.

Parametrized over every registered penalty (as skglm's tests are): a new penalty class added to the registry
without cases here fails ``test_every_registered_penalty_is_tested``.
"""

from __future__ import annotations

import math

import pytest
import torch

from lightreg.penalties import (
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    GroupPenalty,
    Penalty,
    SparseGroupLasso,
    soft_threshold_,
)
from lightreg.penalties import (
    PENALTIES as REGISTRY,
)
from lightreg.penalties.group_nonconvex import GroupMCP, GroupSCAD
from lightreg.penalties.nonconvex import L0, MCP, SCAD, LogSum

PENALTIES: list[Penalty] = [
    L1(),
    L2(),
    ElasticNet(0.5),
    ElasticNet(0.0),
    ElasticNet(1.0),
    GroupLasso("rows"),
    GroupLasso("columns"),
    GroupLasso("filters"),
    SparseGroupLasso("rows", 0.5),
    SparseGroupLasso("columns", 0.2),
    SparseGroupLasso("channels", 0.0),
    SparseGroupLasso("rows", 1.0),
    MCP(gamma=3.0),
    MCP(gamma=1.5, lam=0.5),
    SCAD(gamma=3.7),
    LogSum(eps=0.5),
    L0(),
    GroupMCP(gamma=3.0, groups="columns"),
    GroupSCAD(gamma=3.7, groups="rows"),
]
ELEMENTWISE = [p for p in PENALTIES if p.elementwise]
GROUPED = [p for p in PENALTIES if isinstance(p, GroupPenalty)]
SPARSE = [p for p in PENALTIES if p.sparse]


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _objective(p: Penalty, u: torch.Tensor, w: torch.Tensor, step: float | torch.Tensor) -> float:
    """½ Σ (u - w)² / step + R(u): what prox_(w, step) minimizes."""
    return (0.5 * ((u - w).square() / step).sum() + p.value(u)).item()


# ---------------------------------------------------------------- value and grad

W = [[1.0, -2.0], [0.0, 3.0]]


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        (L1(), 6.0),
        (L2(), 7.0),
        (ElasticNet(0.5), 0.5 * 6.0 + 0.25 * 14.0),
        (ElasticNet(0.0), 7.0),
        (ElasticNet(1.0), 6.0),
        (GroupLasso("rows"), math.sqrt(2) * (math.sqrt(5) + 3)),
        (GroupLasso("columns"), math.sqrt(2) * (1 + math.sqrt(13))),
        (SparseGroupLasso("rows", 0.25), 0.25 * 6.0 + 0.75 * math.sqrt(2) * (math.sqrt(5) + 3)),
    ],
    ids=repr,
)
def test_value_matches_formula(penalty: Penalty, expected: float) -> None:
    value = penalty.value(_t(W))
    assert value.ndim == 0
    assert value.item() == pytest.approx(expected)


@pytest.mark.parametrize("penalty", [p for p in PENALTIES if not isinstance(p, L0)], ids=repr)  # L0: no gradient
def test_grad_matches_autograd_away_from_kinks(penalty: Penalty) -> None:
    w = _randn(3, 4, 2).requires_grad_()
    (expected,) = torch.autograd.grad(penalty.value(w), w)
    got = penalty.grad(w)
    assert got.shape == w.shape
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("penalty", [L1(), ElasticNet(0.5), ElasticNet(1.0)], ids=repr)
def test_l1_grad_is_zero_at_zero(penalty: Penalty) -> None:
    w = _t([[0.0, 2.0], [-1.0, 0.0]])
    grad = penalty.grad(w)
    assert grad[0, 0] == 0 and grad[1, 1] == 0


@pytest.mark.parametrize("penalty", GROUPED, ids=repr)
def test_group_grad_is_zero_on_zero_groups(penalty: GroupPenalty) -> None:
    w = torch.zeros(3, 3, dtype=torch.float64)
    w[1, 1] = 2.0
    grad = penalty.grad(w)
    rho = penalty.l1_weight
    assert torch.count_nonzero(grad) == 1 and grad[1, 1].item() == pytest.approx(rho + (1 - rho) * math.sqrt(3))


# ---------------------------------------------------------------- prox closed forms

PROX_CASES = [
    (L1(), W, 1.5, [[0.0, -0.5], [0.0, 1.5]]),
    (L2(), W, 1.0, [[0.5, -1.0], [0.0, 1.5]]),
    (ElasticNet(0.5), W, 2.0, [[0.0, -0.5], [0.0, 1.0]]),
    (ElasticNet(1.0), W, 1.5, [[0.0, -0.5], [0.0, 1.5]]),
    (ElasticNet(0.0), W, 1.0, [[0.5, -1.0], [0.0, 1.5]]),
    (GroupLasso("rows"), [[3.0, 4.0], [0.3, 0.4]], 2.5 / math.sqrt(2), [[1.5, 2.0], [0.0, 0.0]]),
    (GroupLasso("columns"), [[3.0, 0.3], [4.0, 0.4]], 2.5 / math.sqrt(2), [[1.5, 0.0], [2.0, 0.0]]),
    (GroupLasso("channels"), [[3.0, 0.3], [4.0, 0.4]], 2.5 / math.sqrt(2), [[1.5, 0.0], [2.0, 0.0]]),
    # ρ = 0.5, step 2: soft-threshold at 1 -> [[2, 3], [0, 0]]; then shrink ‖(2, 3)‖ = √13 by 2·0.5·√2 = √2
    (
        SparseGroupLasso("rows", 0.5),
        [[3.0, 4.0], [0.3, 0.4]],
        2.0,
        [[2.0 * (1 - math.sqrt(2 / 13)), 3.0 * (1 - math.sqrt(2 / 13))], [0.0, 0.0]],
    ),
]


@pytest.mark.parametrize(("penalty", "w", "step", "expected"), PROX_CASES, ids=[repr(c[0]) for c in PROX_CASES])
def test_prox_closed_form_in_place(penalty: Penalty, w: list[list[float]], step: float, expected: list) -> None:
    tensor = _t(w)
    ptr = tensor.data_ptr()
    out = penalty.prox_(tensor, step)
    assert out is tensor and out.data_ptr() == ptr
    torch.testing.assert_close(out, _t(expected))


def test_soft_threshold_function() -> None:
    w = _t([[-3.0, -1.0, 0.5, 2.0]])
    torch.testing.assert_close(soft_threshold_(w, 1.0), _t([[-2.0, 0.0, 0.0, 1.0]]))


@pytest.mark.parametrize("penalty", SPARSE, ids=repr)
def test_prox_gives_exact_zeros_below_threshold(penalty: Penalty) -> None:
    dim = getattr(penalty, "dim", 0)
    w = _randn(4, 5) * 1e-3
    w.select(dim, 0).fill_(10.0)
    penalty.prox_(w, 1.0)
    assert torch.all(w.select(dim, 0) != 0)
    assert torch.all(w.narrow(dim, 1, w.shape[dim] - 1) == 0)


@pytest.mark.parametrize("penalty", PENALTIES, ids=repr)
def test_prox_under_autograd_parameter(penalty: Penalty) -> None:
    w = torch.nn.Parameter(_randn(3, 4))
    penalty.prox_(w, 0.1)
    assert w.grad_fn is None


@pytest.mark.parametrize("penalty", PENALTIES, ids=repr)
def test_prox_tensor_step_equal_entries_matches_scalar(penalty: Penalty) -> None:
    w = _randn(3, 4, 2)
    expected = penalty.prox_(w.clone(), 0.7)
    torch.testing.assert_close(penalty.prox_(w.clone(), torch.full_like(w, 0.7)), expected)
    torch.testing.assert_close(penalty.prox_(w.clone(), torch.tensor(0.7, dtype=torch.float64)), expected)


@pytest.mark.parametrize("penalty", ELEMENTWISE, ids=repr)
def test_elementwise_prox_tensor_step_is_per_entry(penalty: Penalty) -> None:
    w, step = _randn(3, 4), _randn(3, 4, seed=1).abs()
    got = penalty.prox_(w.clone(), step)
    for i in range(3):
        for j in range(4):
            expected = penalty.prox_(w[i : i + 1, j : j + 1].clone(), step[i, j].item())
            torch.testing.assert_close(got[i : i + 1, j : j + 1], expected)


@pytest.mark.parametrize("penalty", GROUPED, ids=repr)
def test_group_prox_tensor_step_decreases_diagonal_objective(penalty: Penalty) -> None:
    """The group step in the diag(1/step) metric never does worse than staying put."""
    w, step = _randn(3, 4), _randn(3, 4, seed=1).abs() + 0.1
    u = penalty.prox_(w.clone(), step)
    assert _objective(penalty, u, w, step) <= _objective(penalty, w, w, step)


# ---------------------------------------------------------------- prox optimality


@pytest.mark.parametrize(
    ("penalty", "tensor_step"),
    # with a per-entry step, group lasso's prox is the exact prox in the diag(1/step) metric too
    [(p, False) for p in PENALTIES] + [(p, True) for p in PENALTIES],
    ids=lambda v: repr(v) if isinstance(v, Penalty) else ("tensor_step" if v else "scalar_step"),
)
def test_prox_beats_random_perturbations(penalty: Penalty, tensor_step: bool) -> None:
    w = _randn(3, 4) * 2
    step: float | torch.Tensor = _randn(3, 4, seed=1).abs() + 0.2 if tensor_step else 0.8
    u = penalty.prox_(w.clone(), step)
    best = _objective(penalty, u, w, step)
    gen = torch.Generator().manual_seed(2)
    for k in range(50):
        scale = 10.0 ** (-(k % 5))
        delta = torch.randn(3, 4, dtype=torch.float64, generator=gen) * scale
        assert best <= _objective(penalty, u + delta, w, step) + 1e-12


@pytest.mark.parametrize("penalty", [L1(), ElasticNet(0.5), ElasticNet(0.2), ElasticNet(1.0)], ids=repr)
def test_l1_prox_subgradient_optimality(penalty: L1 | ElasticNet) -> None:
    """(w - u) / step ∈ ∂R(u) = ρ ∂|u| + (1 - ρ) u, entrywise."""
    rho = penalty.l1_ratio if isinstance(penalty, ElasticNet) else 1.0
    w, step = _randn(5, 6) * 2, 0.9
    u = penalty.prox_(w.clone(), step)
    residual = (w - u) / step
    zero = u == 0
    assert zero.any() and (~zero).any()
    torch.testing.assert_close(residual[~zero], rho * u[~zero].sign() + (1 - rho) * u[~zero])
    assert torch.all(residual[zero].abs() <= rho + 1e-12)


# ---------------------------------------------------------------- lambda_max


def _least_squares(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """X (20, 6) and Y (20, k) for f(W) = ½ ‖X Wᵀ - Y‖² with W of shape (k, 6)."""
    return _randn(20, 6, seed=3), _randn(20, k, seed=4)


def _prox_gradient(penalty: Penalty, strength: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    step = 1.0 / torch.linalg.matrix_norm(x, ord=2).item() ** 2
    w = torch.ones(y.shape[1], x.shape[1], dtype=torch.float64)
    for _ in range(500):
        grad = (x @ w.T - y).T @ x
        penalty.prox_(w.sub_(grad, alpha=step), step * strength)
    return w


@pytest.mark.parametrize(
    ("penalty", "k"),
    [(L1(), 1), (ElasticNet(0.5), 1), (GroupLasso("rows"), 2), (SparseGroupLasso("rows", 0.3), 2)],
    ids=["l1", "elastic_net", "group", "sparse_group"],
)
def test_lambda_max_is_the_zero_threshold(penalty: Penalty, k: int) -> None:
    x, y = _least_squares(k)
    lam = penalty.lambda_max(-(y.T @ x))
    assert 0 < lam < math.inf
    assert torch.count_nonzero(_prox_gradient(penalty, 1.01 * lam, x, y)) == 0
    assert torch.count_nonzero(_prox_gradient(penalty, 0.9 * lam, x, y)) > 0


def test_lambda_max_closed_forms() -> None:
    g = _t([[1.0, -4.0], [2.0, 2.0]])
    assert L1().lambda_max(g) == 4.0
    assert ElasticNet(0.25).lambda_max(g) == 16.0
    assert GroupLasso("rows").lambda_max(g) == pytest.approx(math.sqrt(17) / math.sqrt(2))
    assert GroupLasso("columns").lambda_max(g) == pytest.approx(math.sqrt(20) / math.sqrt(2))
    assert SparseGroupLasso("rows", 1.0).lambda_max(g) == 4.0
    assert SparseGroupLasso("rows", 0.0).lambda_max(g) == pytest.approx(math.sqrt(17) / math.sqrt(2))
    # ρ = 0.5: row (1, -4) leaves S = (0, -(4 - λ/2)) for λ >= 2, zero iff 4 - λ/2 <= λ(1 - ρ)√2; row (2, 2) gives λ = 2
    lam = 4 / (0.5 + math.sqrt(2) / 2)
    assert SparseGroupLasso("rows", 0.5).lambda_max(g) == pytest.approx(lam)


@pytest.mark.parametrize("penalty", [L2(), ElasticNet(0.0)], ids=repr)
def test_lambda_max_without_l1_part(penalty: Penalty) -> None:
    assert penalty.lambda_max(_t([[1.0, 0.0]])) == math.inf
    assert penalty.lambda_max(torch.zeros(1, 2)) == 0.0


# ---------------------------------------------------------------- metadata and validation


def test_every_registered_penalty_is_tested() -> None:
    assert {type(p) for p in PENALTIES} == set(REGISTRY.values())
    assert all(REGISTRY[p.name] is type(p) for p in PENALTIES)


# ---------------------------------------------------------------- KKT pieces, for every penalty


@pytest.mark.parametrize("penalty", PENALTIES, ids=repr)
@pytest.mark.parametrize("tensor_step", [False, True], ids=["scalar_step", "tensor_step"])
def test_prox_output_is_stationary(penalty: Penalty, tensor_step: bool) -> None:
    """u = prox_{sλR}(v) iff (v − u)/s ∈ λ∂R(u): with g = (u − v)/s the distance of −g to λ∂R(u) is 0, and every
    unit at zero passes the zero test (a per-entry step s is a diagonal metric: g = (u − v)/s entrywise is then the
    gradient in that metric, which the elementwise pieces accept as is)."""
    strength = 0.7
    v = _randn(4, 5, 3) * 2
    v[0] *= 0.01  # a small row and a small column: zero groups for every layout
    v[:, 0] *= 0.01
    step: float | torch.Tensor = 0.9
    if tensor_step and penalty.elementwise:
        step = _randn(4, 5, 3, seed=1).abs() + 0.2
    u = penalty.prox_(v.clone(), step * strength)
    g = (u - v) / step
    assert (u == 0).any() or not penalty.sparse, "the case should exercise zeros"
    assert penalty.subdiff_distance(u, g, strength).max().item() < 1e-9
    zero_units = penalty.unit_norms(u) == 0
    assert penalty.zero_is_optimal(u, g, strength)[zero_units].all()


@pytest.mark.parametrize("penalty", [p for p in SPARSE if not isinstance(p, L0)], ids=repr)  # L0: every 0 is stationary
def test_zero_test_fails_above_the_threshold(penalty: Penalty) -> None:
    w = torch.zeros(3, 4, dtype=torch.float64)
    small, large = _randn(3, 4) * 1e-3, _randn(3, 4) * 1e3
    assert penalty.zero_is_optimal(w, small, 1.0).all()
    assert not penalty.zero_is_optimal(w, large, 1.0).any()
    assert penalty.subdiff_distance(w, large, 1.0).min().item() > 0


def test_sparse_group_lasso_zeros_groups_and_entries() -> None:
    w = _t([[3.0, 0.05, -4.0], [0.1, -0.2, 0.1]])
    SparseGroupLasso("rows", 0.5).prox_(w, 0.5)
    assert (w[1] == 0).all()  # a whole group
    assert w[0, 1] == 0 and (w[0, [0, 2]] != 0).all()  # an entry inside a kept group


def test_metadata_and_repr() -> None:
    assert [p.name for p in (L1(), L2(), ElasticNet(), GroupLasso())] == ["l1", "l2", "elastic_net", "group_lasso"]
    assert [p.elementwise for p in (L1(), L2(), ElasticNet(), GroupLasso())] == [True, True, True, False]
    assert [p.sparse for p in (L1(), L2(), ElasticNet(0.5), ElasticNet(0), GroupLasso())] == [
        True,
        False,
        True,
        False,
        True,
    ]
    assert repr(ElasticNet(l1_ratio=0.5)) == "ElasticNet(l1_ratio=0.5)"
    assert repr(GroupLasso("columns")) == "GroupLasso(groups='columns')"
    assert repr(SparseGroupLasso("rows", 0.3)) == "SparseGroupLasso(groups='rows', l1_ratio=0.3)"
    assert SparseGroupLasso().name == "sparse_group_lasso" and not SparseGroupLasso().elementwise
    assert repr(L1()) == "L1()"
    assert GroupLasso("filters").dim == 0 and GroupLasso("channels").dim == 1


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5", None])
def test_elastic_net_rejects_bad_ratio(bad: object) -> None:
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\], got " + repr(bad).replace("(", r"\(")):
        ElasticNet(bad)  # type: ignore[arg-type]


def test_group_lasso_rejects_bad_groups() -> None:
    with pytest.raises(ValueError, match="groups must be one of 'rows', 'columns', 'filters', 'channels', got 'diag'"):
        GroupLasso("diag")


@pytest.mark.parametrize("method", ["value", "grad", "prox_", "lambda_max"])
def test_group_lasso_rejects_1d_tensor(method: str) -> None:
    args = (0.1,) if method == "prox_" else ()
    with pytest.raises(ValueError, match=r"ndim >= 2 .*got shape \(5,\)"):
        getattr(GroupLasso(), method)(torch.ones(5), *args)
