"""Proximal step sizes in each optimizer's metric (lightreg.optim.prox_steps)."""

from __future__ import annotations

import pytest
import torch

from lightreg.optim import prox_step


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
