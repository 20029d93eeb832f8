"""Holding a support fixed through training (the refit of a relaxed lasso): ``lightreg.callbacks.support``."""

from __future__ import annotations

import functools

import pytest
import torch

from lightreg.callbacks.support import HoldSupport, SupportMask
from lightreg.data import SyntheticDataModule

from helpers import quiet_trainer, seeded_mlp


def test_support_mask_zeroes_gradients_and_weights_outside_the_support() -> None:
    w = torch.tensor([[1.0, 0.0], [0.0, -2.0]], requires_grad=True)
    mask = SupportMask({"w": w})
    w.grad = torch.ones_like(w)
    mask.mask_grads_({"w": w})
    assert w.grad.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with torch.no_grad():
        w.add_(5.0)
    mask.apply_({"w": w})
    assert w.tolist() == [[6.0, 0.0], [0.0, 3.0]]


@pytest.mark.parametrize(
    "optimizer",
    [
        functools.partial(torch.optim.AdamW, lr=0.05, weight_decay=0.1),  # state and decoupled decay move zeros
        functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.01),
    ],
    ids=["adamw", "sgd-momentum"],
)
def test_hold_support_keeps_zeros_through_a_fit_and_trains_the_rest(optimizer) -> None:
    dm = SyntheticDataModule(n_samples=200, batch_size=50, rule="linear", seed=0)
    model = seeded_mlp([4], optimizer)
    fc1 = model.net.fc1.weight
    with torch.no_grad():
        fc1[:, 2:] = 0.0  # inputs x2..x9 dropped
        fc1[0, 0] = 0.0  # and one entry of a kept column
    before = fc1.detach().clone()
    hold = HoldSupport({"net.fc1.weight": fc1})
    quiet_trainer([hold], max_epochs=3).fit(model, datamodule=dm)
    after = fc1.detach()
    assert torch.equal(after == 0, before == 0), "the held zeros moved (or a kept weight became exactly zero)"
    assert not torch.allclose(after[:, :2][before[:, :2] != 0], before[:, :2][before[:, :2] != 0])
    assert hold._handles == [], "the optimizer step hook outlived the fit"
