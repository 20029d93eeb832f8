"""Proximal step sizes in each optimizer's metric (lightreg.solvers.prox_steps)."""

from __future__ import annotations

import pytest
import torch

from lightreg.solvers import prox_step, warmup_steps
from lightreg.solvers.prox_steps import UNBOUNDED_RUN_WARMUP


def _stepped(optimizer_cls, steps: int = 3, **kwargs) -> tuple[torch.optim.Optimizer, torch.nn.Parameter]:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = optimizer_cls([p], **kwargs)
    for k in range(steps):
        p.grad = torch.randn(4, 3) * (k + 1)
        p.grad[0, 0] = 0.0  # an entry whose gradient vanishes: √v̂ = 0
        opt.step()
    return opt, p


def test_sgd_step_is_the_learning_rate() -> None:
    opt, p = _stepped(torch.optim.SGD, lr=0.3, momentum=0.9)
    assert prox_step(opt, opt.param_groups[0], p) == 0.3


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_step_is_lr_over_bias_corrected_root_v(cls, amsgrad: bool) -> None:
    opt, p = _stepped(cls, lr=0.01, betas=(0.9, 0.99), eps=1e-8, amsgrad=amsgrad)
    state = opt.state[p]
    v = state["max_exp_avg_sq"] if amsgrad else state["exp_avg_sq"]
    expected = 0.01 / ((v / (1 - 0.99**3)).sqrt() + 1e-8)
    torch.testing.assert_close(prox_step(opt, opt.param_groups[0], p), expected)


def test_adagrad_step_uses_the_sum_of_squares_and_lr_decay() -> None:
    opt, p = _stepped(torch.optim.Adagrad, lr=0.1, lr_decay=0.5, eps=1e-10)
    expected = 0.1 / (1 + 2 * 0.5) / (opt.state[p]["sum"].sqrt() + 1e-10)
    torch.testing.assert_close(prox_step(opt, opt.param_groups[0], p), expected)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_step(centered: bool) -> None:
    opt, p = _stepped(torch.optim.RMSprop, lr=0.01, centered=centered, eps=1e-8)
    state = opt.state[p]
    v = state["square_avg"] - (state["grad_avg"] ** 2 if centered else 0)
    torch.testing.assert_close(prox_step(opt, opt.param_groups[0], p), 0.01 / (v.sqrt() + 1e-8))


def test_floor_bounds_the_threshold_where_gradients_vanish() -> None:
    """Unfloored, the entry with zero gradients gets η = lr/ε; floored at λ the threshold λ·η is at most lr."""
    opt, p = _stepped(torch.optim.Adam, lr=0.01)
    raw = prox_step(opt, opt.param_groups[0], p)
    assert raw[0, 0] == pytest.approx(0.01 / 1e-8)
    lam = 1e-3
    floored = prox_step(opt, opt.param_groups[0], p, floor=lam)
    assert float((lam * floored).max()) <= 0.01 + 1e-12
    assert floored[0, 0] == pytest.approx(0.01 / lam)
    big = raw * lam < 0.01  # entries whose own threshold is already below lr keep their exact metric step
    torch.testing.assert_close(floored[big], raw[big])


def test_plain_step_when_not_adaptive_or_before_the_first_step() -> None:
    opt, p = _stepped(torch.optim.Adam, lr=0.01)
    assert prox_step(opt, opt.param_groups[0], p, adaptive=False) == 0.01
    fresh = torch.optim.Adam([torch.nn.Parameter(torch.ones(2, 2))], lr=0.02)
    assert prox_step(fresh, fresh.param_groups[0], fresh.param_groups[0]["params"][0]) == 0.02


ADAPTIVE_CASES = [
    (torch.optim.Adam, {"lr": 0.01}),
    (torch.optim.AdamW, {"lr": 0.01, "amsgrad": True}),
    (torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.5}),
    (torch.optim.RMSprop, {"lr": 0.001, "centered": True}),
]


@pytest.mark.parametrize(("cls", "kwargs"), ADAPTIVE_CASES)
def test_threshold_never_exceeds_the_plain_step_during_warmup(cls, kwargs) -> None:
    """Small gradients (≪ λ, a fresh network near a stationary point): the metric threshold would be lr per step;
    during the warm-up it stays at or below SGD's plain lr·λ on every entry, at every step."""
    lam, lr = 0.04, kwargs["lr"]
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(6, 10))
    opt = cls([p], **kwargs)
    for step in range(1, 21):
        p.grad = 0.01 * torch.randn(6, 10)
        p.grad[:, 0] = 0.0
        opt.step()
        bounded = prox_step(opt, opt.param_groups[0], p, floor=lam, scale=lam, warmup=20)
        assert float(bounded.max()) <= lr * lam * (1 + 1e-6), step
        unbounded = prox_step(opt, opt.param_groups[0], p, floor=lam, scale=lam, warmup=0)
        assert float(unbounded.max()) > 2 * lr * lam  # the bound is doing something here


@pytest.mark.parametrize(("cls", "kwargs"), ADAPTIVE_CASES)
def test_after_warmup_the_step_is_the_floored_proxgen_step(cls, kwargs) -> None:
    opt, p = _stepped(cls, steps=5, **kwargs)
    group, lam = opt.param_groups[0], 1e-3
    after = prox_step(opt, group, p, floor=lam, scale=lam, warmup=4)
    torch.testing.assert_close(after, prox_step(opt, group, p, floor=lam, scale=lam))
    during = prox_step(opt, group, p, floor=lam, scale=lam, warmup=5)
    assert not torch.equal(during, after)
    torch.testing.assert_close(during, torch.minimum(after, torch.full_like(after, lam * kwargs["lr"])))


def test_sgd_ignores_the_warmup() -> None:
    opt, p = _stepped(torch.optim.SGD, lr=0.3, momentum=0.9)
    assert prox_step(opt, opt.param_groups[0], p, floor=0.1, scale=0.1, warmup=100) == pytest.approx(0.03)


def test_warmup_is_half_the_run_or_the_moment_horizon() -> None:
    assert warmup_steps(780) == 390
    assert warmup_steps(1) == 0
    assert warmup_steps(float("inf")) == UNBOUNDED_RUN_WARMUP == 1000
