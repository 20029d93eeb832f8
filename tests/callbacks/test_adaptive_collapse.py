"""Issue 10: adaptive proximal steps must not collapse a network that plain SGD handles at the same λ, and the
"every penalized weight is zero" guard tells a network's story (when, at which λ, what did it)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch

from lightreg.callbacks import RegularizationCallback
from lightreg.callbacks.collapse import is_network, network_all_zero_message
from lightreg.data import SyntheticDataModule
from lightreg.errors import LightregWarning
from lightreg.models import MLP, LogisticRegression
from lightreg.penalties import GroupLasso

from helpers import read_metrics, run_cli, seeded_mlp


def _fit_mlp(optimizer, strength: float, epochs: int = 1) -> list[str]:
    dm = SyntheticDataModule(n_samples=200, batch_size=32, seed=0, rule="ring")
    dm.setup("fit")
    model = seeded_mlp([6], optimizer, data=dm)
    callback = RegularizationCallback(GroupLasso("columns"), strength, include="net.fc1.weight")
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=epochs,
        callbacks=[callback],
        limit_val_batches=0,
    )
    with pytest.warns(LightregWarning) as record:
        trainer.fit(model, datamodule=dm)
    assert (model.net.fc1.weight == 0).all()
    return [str(w.message) for w in record if "every penalized weight" in str(w.message)]


def test_network_guard_names_layer_epoch_and_cause_not_lambda_max() -> None:
    """A huge λ kills fc1 in epoch 0; the warning says so and gives network advice (a smaller λ,
    penalty.warmup_epochs), never the linear-model λ_max; SGD has no adaptive-metric sentence."""
    (message,) = _fit_mlp(functools.partial(torch.optim.SGD, lr=0.1), strength=50.0)
    assert "net.fc1.weight" in message and "after epoch 0" in message
    assert "first 5 optimizer steps (epoch 0)" in message  # 160 training samples, batch 32
    assert "lambda=50 outweighed" in message and "e.g. 12" in message and "penalty.warmup_epochs" in message
    assert "lambda_max =" not in message
    assert "metric" not in message and "bounded" not in message


def test_network_message_during_the_adaptive_warmup_blames_lambda() -> None:
    message = network_all_zero_message("gl", ["net.fc1.weight"], 0, 5, 0.5, 0.5, False)
    assert "first 5 optimizer steps" in message
    assert "bounded by SGD's lr·lambda" in message and "lambda itself did it" in message


def test_network_message_later_epoch_with_warmup_and_metric() -> None:
    message = network_all_zero_message("gl", ["net.fc1.weight", "net.fc2.weight"], 7, 91, 0.02, 0.04, True)
    assert "at epoch 7 (91 optimizer steps)" in message and "first 91" not in message
    assert "net.fc1.weight, net.fc2.weight" in message
    assert "lambda=0.02 (warm-up; 0.04 in full)" in message and "optimizer's metric" in message
    assert "lambda below 0.02 (e.g. 0.005)" in message


def test_is_network() -> None:
    kwargs = dict(input_shape=(10,), num_classes=2, task="binary", optimizer=torch.optim.SGD)
    assert is_network(MLP(hidden_sizes=[6], **kwargs))
    assert not is_network(LogisticRegression(**kwargs))


@pytest.mark.slow
def test_cli_adagrad_on_ring_keeps_exactly_x0_x1(tmp_path: Path) -> None:
    """The issue's command: before the fix every input column was zero at epoch 0 and val/acc was 0.500 (chance).
    Floor 0.85: a model of x0, x1 alone reached 0.945 on ring data of this kind (the dense models 0.95), while
    the collapse sits at 0.50; 0.85 leaves room for platform noise and stays far above chance."""
    result = run_cli(
        tmp_path,
        "experiment=seed001_exact",
        "data.rule=ring",
        "optimizer=adagrad",
        "optimizer.lr=0.05",
        "logger=none",
        "callbacks=none",
        "model.print_epochs=false",
    )
    assert "every penalized weight" not in result.stderr
    metrics = read_metrics(tmp_path)
    features = json.loads((tmp_path / "sparsity.json").read_text())["features"]
    assert features["selected_names"] == ["x0", "x1"]
    assert metrics["features/selected"] == 2
    assert metrics["val/acc"] >= 0.85


def test_network_message_when_the_finish_emptied_the_layer() -> None:
    message = network_all_zero_message("gl", ["net.fc1.weight"], 39, 520, 0.08, 0.08, True, by_finish=True)
    assert "after epoch 39" in message and "full-batch finish" in message and "lambda=0.08" in message
    assert "lambda below 0.08 (e.g. 0.02)" in message and "+path=geometric" in message
    assert "warmup_epochs" not in message and "optimizer's metric" not in message  # neither did it
