"""L1 on every layer of an MLP [50, 30, 10] gives exact zeros only through proximal steps (a common question:
"the weights shrink but none is exactly zero")."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch

from lightreg.callbacks import RegularizationCallback
from lightreg.data import SyntheticDataModule
from lightreg.models import MLP
from lightreg.penalties import L1

# (optimizer, lr, λ): one λ per optimizer, picked once by hand on this data (not tuned per assertion)
SETUPS = [(torch.optim.Adam, 1e-3, 3e-3), (torch.optim.SGD, 0.05, 3e-2), (torch.optim.Adagrad, 0.05, 3e-3)]
LAYERS = ("fc1", "fc2", "fc3", "out")
HIDDEN = ("fc1", "fc2", "fc3")


def _fit(optimizer, lr: float, callbacks: list) -> tuple[MLP, float]:
    L.seed_everything(0, verbose=False)
    dm = SyntheticDataModule(batch_size=64, seed=0)
    dm.setup("fit")
    kwargs = {"momentum": 0.9} if optimizer is torch.optim.SGD else {}
    model = MLP(
        hidden_sizes=[50, 30, 10],
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=functools.partial(optimizer, lr=lr, **kwargs),
        print_epochs=False,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=15,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=dm)
    return model, float(trainer.callback_metrics["val/acc"])


def _zero_fractions(model: MLP) -> dict[str, float]:
    return {name: float((getattr(model.net, name).weight == 0).float().mean()) for name in LAYERS}


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "lr", "strength"), SETUPS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_prox_gives_exact_zeros_in_every_layer_at_dense_accuracy(optimizer, lr: float, strength: float) -> None:
    _, dense_acc = _fit(optimizer, lr, [])
    prox_model, prox_acc = _fit(optimizer, lr, [RegularizationCallback(L1(), strength, mode="prox")])
    grad_model, _ = _fit(optimizer, lr, [RegularizationCallback(L1(), strength, mode="grad")])
    prox, grad = _zero_fractions(prox_model), _zero_fractions(grad_model)
    print(
        f"{optimizer.__name__} λ={strength}: dense acc {dense_acc:.3f}, prox acc {prox_acc:.3f}; zeros prox {prox} grad {grad}"
    )
    assert prox_acc >= dense_acc - 0.02
    # every hidden layer gets exact zeros; the 10 weights of the output layer may all be needed (with Adam and Adagrad
    # the prox step is bounded by the plain lr·λ step for the first half of the run, so short runs zero less)
    assert all(prox[name] > 0 for name in HIDDEN), prox
    if optimizer is torch.optim.Adagrad:
        # Adagrad's subgradient steps park some weights of dead ReLU units exactly at 0 (no data gradient
        # there, sign(0) = 0), so grad mode is not zero-free; the prox still zeroes far more in every hidden layer
        # (the output layer's 10 weights may all be needed, as above: here grad parks 1 of them at 0, prox none)
        assert all(prox[name] >= grad[name] for name in HIDDEN) and sum(prox.values()) > 1.5 * sum(grad.values())
    else:
        assert all(grad[name] == 0 for name in LAYERS), grad
