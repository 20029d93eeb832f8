"""Structured sparsity on real conv layers: group lasso over filters / input channels, and activity regularization."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from lightreg.callbacks import ActivityRegularization, RegularizationCallback
from lightreg.callbacks.activity import activity
from lightreg.data import ImageDataModule
from lightreg.errors import UserError
from lightreg.models import CNN, MLP
from lightreg.penalties import GroupLasso

from conftest import describe, run_train
from helpers import QUIET, read_metrics


def _conv() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(3, 5, kernel_size=3)


def test_group_lasso_value_on_conv_filters_and_channels() -> None:
    w = _conv().weight.detach()  # (out 5, in 3, 3, 3)
    filters = sum(w[f].norm() for f in range(5)) * math.sqrt(3 * 3 * 3)
    channels = sum(w[:, c].norm() for c in range(3)) * math.sqrt(5 * 3 * 3)
    assert torch.allclose(GroupLasso("filters").value(w), filters)
    assert torch.allclose(GroupLasso("channels").value(w), channels)


@pytest.mark.parametrize(("groups", "dim"), [("filters", 0), ("channels", 1)])
def test_group_prox_zeroes_whole_filters_or_channels(groups: str, dim: int) -> None:
    conv = _conv()
    w = conv.weight.detach()
    norms = w.transpose(0, dim).flatten(1).norm(dim=1)
    size = w.numel() // w.shape[dim]
    step = float(norms.median()) / math.sqrt(size)  # threshold at the median group norm
    out = GroupLasso(groups).prox_(w.clone(), step)
    zero = (out.transpose(0, dim).flatten(1) == 0).all(dim=1)
    assert torch.equal(zero, norms <= norms.median())
    kept = ~zero
    # surviving groups shrink by the block soft-threshold, in their own direction
    factor = 1 - step * math.sqrt(size) / norms[kept]
    expected = w.transpose(0, dim)[kept] * factor.view(-1, 1, 1, 1)
    assert torch.allclose(out.transpose(0, dim)[kept], expected, atol=1e-6)


def _fit(model: L.LightningModule, callbacks: list, epochs: int = 1, limit: int = 256) -> L.Trainer:
    dm = ImageDataModule("digits_images", batch_size=64, limit=limit)
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return trainer


def _cnn(**kwargs) -> CNN:
    torch.manual_seed(0)
    return CNN(channels=[6, 8], hidden_sizes=[16], input_shape=(1, 8, 8), num_classes=10,
               optimizer=partial(torch.optim.SGD, lr=0.1), print_epochs=False, **kwargs)  # fmt: skip


def test_filters_penalize_the_conv_weights_and_zero_whole_filters() -> None:
    model = _cnn()
    callback = RegularizationCallback(GroupLasso("filters"), strength=0.1)
    _fit(model, [callback], epochs=2)
    assert sorted(callback.params) == ["net.conv1.weight", "net.conv2.weight"]  # conv weights only, not net.fc1
    zero_filters = (model.net.conv2.weight.detach().flatten(1) == 0).all(dim=1)
    assert zero_filters.any() and not zero_filters.all()
    for name in ("conv1", "conv2"):
        w = getattr(model.net, name).weight.detach().flatten(1)
        # zeros come in whole filters: a filter is either all zero or has no zero entry
        assert not ((w == 0).any(dim=1) & ~(w == 0).all(dim=1)).any(), name
    assert (model.net.fc1.weight != 0).all()


def test_channels_zero_whole_input_channels_of_conv2() -> None:
    model = _cnn()
    _fit(model, [RegularizationCallback(GroupLasso("channels"), strength=0.1, include="net.conv2.weight")], epochs=2)
    w = model.net.conv2.weight.detach().transpose(0, 1).flatten(1)  # one row per input channel
    assert (w == 0).all(dim=1).any()
    assert not ((w == 0).any(dim=1) & ~(w == 0).all(dim=1)).any()  # whole channels only
    assert (model.net.conv1.weight != 0).all()  # not selected


def test_filters_on_a_model_without_conv_layers_is_a_user_error() -> None:
    mlp = MLP(hidden_sizes=[8], input_shape=(64,), num_classes=10, optimizer=partial(torch.optim.SGD, lr=0.1))
    with pytest.raises(UserError, match=r"penalty.groups=filters .* no conv weight.*use penalty.groups=rows"):
        _fit(mlp, [RegularizationCallback(GroupLasso("filters"), strength=0.01)], limit=64)


# ------------------------------------------------------------------------------------------------------------
# activity regularization
# ------------------------------------------------------------------------------------------------------------
def test_activity_is_the_batch_mean_of_the_summed_activity() -> None:
    a = torch.tensor([[1.0, -2.0, 0.0], [3.0, 0.5, -0.5]])
    assert activity(a, "l1") == pytest.approx((3.0 + 4.0) / 2)
    assert activity(a, "l2") == pytest.approx((5.0 + 9.5) / 2)


class _Recorder(L.Callback):
    """Compares each step's training loss with data loss + λ·activity computed by hand before the step."""

    def __init__(self, strength: float) -> None:
        self.strength, self.checked = strength, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        expected = outputs["data_loss"] + self.strength * (activity(self._a1, "l1") + activity(self._a2, "l1"))
        assert torch.allclose(outputs["loss"].detach(), expected, rtol=1e-5)
        self.checked += 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        x, _ = batch
        with torch.no_grad():
            self._a1 = pl_module.net.act1(pl_module.net.conv1(x))
            self._a2 = pl_module.net.act2(pl_module.net.conv2(pl_module.net.pool1(self._a1)))


def test_activity_regularization_adds_its_term_to_the_training_loss() -> None:
    model = _cnn()
    strength = 1e-3
    recorder = _Recorder(strength)
    # the recorder first: its own forward must run before the activity hooks start recording
    trainer = _fit(model, [recorder, ActivityRegularization(strength, modules=["net.act1", "net.act2"])], limit=192)
    assert recorder.checked == 3
    assert "train/penalty" in trainer.callback_metrics  # logged like every penalty
    assert float(trainer.callback_metrics["train/penalty"]) > 0


def test_activity_options_are_checked() -> None:
    with pytest.raises(UserError, match="norm"):
        ActivityRegularization(1e-3, modules="net.act*", norm="l3")
    with pytest.raises(UserError, match="strength"):
        ActivityRegularization(-1.0, modules="net.act*")
    with pytest.raises(UserError, match=r"'net.nothing\*' matches no module"):
        _fit(_cnn(), [ActivityRegularization(1e-3, modules="net.nothing*")], limit=64)


# ------------------------------------------------------------------------------------------------------------
# the CLI
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_activity_callback_logs_its_penalty(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "data=digits_images", "data.limit=256", "model=cnn", "callbacks=activity", "callbacks.activity.strength=1e-3",
        "~callbacks.progress_bar", "logger=none", "model.print_epochs=false", "trainer.max_epochs=1",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert metrics["train/penalty"] > 0
    assert metrics["train/objective"] == pytest.approx(metrics["train/loss"] + metrics["train/penalty"], rel=1e-5)


@pytest.mark.slow
def test_cli_filters_on_an_mlp_is_one_line(tmp_path: Path) -> None:
    proc = run_train("model=mlp", "+penalty=group_lasso", "penalty.groups=filters", "lambda=1e-3", *QUIET, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "penalty.groups=filters" in lines[0] and "no conv weight" in lines[0]
