"""The kernel forms of :mod:`lightreg.solvers.kernels` compute the penalties' own maths, within their memory budget."""

from __future__ import annotations

import pytest
import torch

from lightreg.penalties import L1, L2, ElasticNet, GroupLasso
from lightreg.solvers import kernels

PENALTIES = [L1(), L2(), ElasticNet(l1_ratio=0.3), GroupLasso()]


def _tensors(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # sizes beyond one chunk (MIN_CHUNK entries) so slices straddle tensors and batches
    return [torch.randn(shape, generator=g) for shape in [(300, 100), (7, 5), (200, 200)]]


@pytest.mark.parametrize("form", kernels.FORMS)
@pytest.mark.parametrize("penalty", PENALTIES, ids=lambda p: p.name)
def test_grad_and_prox_match_the_penalty(penalty, form):
    params, grads = _tensors(0), _tensors(1)
    expected_g = [g + 0.01 * penalty.grad(p) for p, g in zip(params, grads)]
    kernels.add_grad_(penalty, params, grads, 0.01, form)
    for got, want in zip(grads, expected_g):
        torch.testing.assert_close(got, want)
    expected_p = [penalty.prox_(p.clone(), 0.05) for p in params]
    kernels.prox_(penalty, params, 0.05, form)
    for got, want in zip(params, expected_p):
        torch.testing.assert_close(got, want)
    if penalty.sparse and penalty.elementwise:  # the soft-threshold reached exact zeros
        assert any((p == 0).any() for p in params)


@pytest.mark.parametrize("penalty", PENALTIES, ids=lambda p: p.name)
def test_value_matches_the_penalty(penalty):
    params = _tensors(2)
    torch.testing.assert_close(kernels.value(penalty, params), sum(penalty.value(p) for p in params))


def test_chunks_cover_every_entry_once_within_the_budget():
    tensors = _tensors()
    batches = kernels._chunks(tensors, 5000)
    assert all(sum(b - a for _, a, b in batch) <= 5000 for batch in batches)
    covered = [torch.zeros(t.numel()) for t in tensors]
    for batch in batches:
        for i, a, b in batch:
            covered[i][a:b] += 1
    assert all(bool((c == 1).all()) for c in covered)


def test_budget_is_one_percent_of_the_penalized_entries():
    assert kernels.budget([torch.zeros(10_000_000)]) == 100_000
