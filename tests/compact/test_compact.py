"""lightreg.compact: a smaller network with the same outputs (1e-5) for MLPs and CNNs, with and without batch norm
and biases; notes for what it keeps; the run-dir CLI and compact=true."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lightreg
from lightreg.models import CNN, ResNet

from conftest import describe, run_train
from helpers import read_metrics


def _randomize_bn(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)


def _same_outputs(model: nn.Module, small: nn.Module, shape: tuple[int, ...], kept: list[int] | None) -> float:
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1)) * 3
    model.eval()
    with torch.no_grad():
        return float((model(x) - small(x if kept is None else x[:, kept])).abs().max())


def _mlp(bias: bool, batch_norm: bool) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(6, 10, bias=bias)]
    layers += [nn.BatchNorm1d(10)] if batch_norm else []
    layers += [nn.ReLU(), nn.Linear(10, 8, bias=bias)]
    layers += [nn.BatchNorm1d(8)] if batch_norm else []
    layers += [nn.Tanh(), nn.Linear(8, 3)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        fc1, fc2, out = (m for m in net if isinstance(m, nn.Linear))
        fc1.weight[[1, 4]] = 0  # dead units of layer 1 (constant output, folded or zero)
        fc1.weight[:, [2, 5]] = 0  # unselected input features
        fc2.weight[:, 7] = 0  # unit 7 of layer 1 is read by nobody
        fc2.weight[[0, 3]] = 0  # dead units of layer 2
        out.weight[:, 6] = 0  # unit 6 of layer 2 is read by nobody
        _randomize_bn(net)
    return net


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_compacts_to_equal_outputs(bias: bool, batch_norm: bool) -> None:
    net = _mlp(bias, batch_norm)
    names = [f"f{i}" for i in range(6)]
    small, report = lightreg.compact(net, feature_names=names, input_shape=(6,))
    assert _same_outputs(net, small, (6,), report.kept_inputs) < 1e-5
    assert report.kept_inputs == [0, 1, 3, 4] and report.feature_names == ["f0", "f1", "f3", "f4"]
    linear = [m for m in small if isinstance(m, nn.Linear)]
    assert [m.in_features for m in linear] == [4, 7, 5]  # 10 - {1, 4, 7} units, 8 - {0, 3, 6}
    assert report.params_after < report.params_before
    assert report.params_after == sum(p.numel() for p in small.parameters())
    assert sum(p.numel() for p in net.parameters()) == report.params_before  # the original is untouched


def _cnn(batch_norm: bool, bias_sign: float = 1.0) -> CNN:
    torch.manual_seed(0)
    model = CNN(channels=[6, 8], hidden_sizes=[12], batch_norm=batch_norm, input_shape=(3, 8, 8), num_classes=4)
    with torch.no_grad():
        model.net.conv1.weight[[0, 2]] = 0  # zero filters of conv1 (feed conv2's zero padding)
        model.net.conv2.weight[[1, 5]] = 0  # zero filters of conv2 (feed the flatten -> fc1: foldable)
        model.net.conv2.weight[:, 3] = 0  # input channel 3 of conv2 unread -> filter 3 of conv1 removable
        model.net.fc1.weight[4] = 0
        if not batch_norm:
            model.net.conv1.bias[0] = -0.5  # relu(-0.5) = 0: silent, removable despite the padding
            model.net.conv1.bias[2] = 0.7  # relu(0.7) > 0 into a zero-padded conv: must be kept
            model.net.conv2.bias[[1, 5]] = torch.tensor([0.3, 0.9])  # folded into fc1's bias
        _randomize_bn(model)
    return model.eval()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_cnn_compacts_to_equal_outputs(batch_norm: bool) -> None:
    model = _cnn(batch_norm)
    small, report = lightreg.compact(model)
    assert isinstance(small, CNN)
    assert _same_outputs(model, small, (3, 8, 8), None) < 1e-5
    assert small.net.conv2.out_channels == 6 and small.net.fc1.in_features == 6 * 2 * 2
    assert small.net.fc1.out_features == 11
    if not batch_norm:  # filter 0 silent, filter 2 kept (padding), filter 3 unread
        assert small.net.conv1.out_channels == 4
        assert any("zero-padded convolution" in note for note in report.notes)
    else:
        assert small.net.bn1.num_features == small.net.conv1.out_channels
        assert small.net.bn2.num_features == 6
    assert report.params_after < report.params_before


def test_conv_without_padding_folds_the_constant_channel() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Conv2d(5, 4, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    )
    with torch.no_grad():
        net[0].weight[1] = 0
        net[0].bias[1] = 0.8
    small, report = lightreg.compact(net, input_shape=(2, 8, 8))
    assert small[0].out_channels == 4 and small[2].bias is not None  # a bias was created to hold the constant
    assert _same_outputs(net, small, (2, 8, 8), None) < 1e-5
    assert not report.notes


def test_an_unhandled_layer_is_left_as_it_is_with_a_note() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    with torch.no_grad():
        net[0].weight[2] = 0  # across the LayerNorm: must stay
        net[3].weight[1] = 0
        net[3].bias[1] = -1.0  # relu(-1) = 0: removable
    small, report = lightreg.compact(net, input_shape=(4,))
    assert small[0].out_features == 6 and small[3].out_features == 4
    assert any("LayerNorm" in note and "left as it is" in note for note in report.notes)
    assert _same_outputs(net, small, (4,), None) < 1e-5


def test_a_network_that_is_not_sequential_is_returned_unchanged() -> None:
    model = ResNet(input_shape=(3, 16, 16), num_classes=3)
    small, report = lightreg.compact(model)
    assert small is not model and report.params_after == report.params_before
    assert "not an nn.Sequential" in report.notes[0]


def test_compact_is_the_module_and_the_function() -> None:
    from lightreg.compact import compact

    assert callable(lightreg.compact)
    net = _mlp(True, False)
    assert lightreg.compact(net, input_shape=(6,))[1].params_after == compact(net, input_shape=(6,))[1].params_after


# ------------------------------------------------------------------------------------------------------------
# run dirs: compact=true and python -m lightreg.compact
# ------------------------------------------------------------------------------------------------------------
GROUP_FILTERS = ["data=digits_images", "data.limit=512", "model=cnn", "+penalty=group_lasso", "penalty.groups=filters",
                 "lambda=0.03"]  # fmt: skip


@pytest.mark.slow
def test_cli_compact_true_removes_filters_with_equal_outputs_and_accuracy(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        *GROUP_FILTERS, "trainer.max_epochs=4", "compact=true", "~callbacks.progress_bar", "logger=none",
        "model.print_epochs=false", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    m = read_metrics(run)
    assert m["compact/params_after"] < m["compact/params_before"]
    assert m["compact/max_abs_diff"] < 1e-5
    assert m["compact/val_acc_after"] == m["compact/val_acc_before"] == pytest.approx(m["val/acc"], abs=1e-6)
    saved = torch.load(run / "compact.pt", weights_only=False)
    assert sum(p.numel() for p in saved["net"].parameters()) == m["compact/params_after"]
    assert "ms before" in (run / "compact.md").read_text()
    # the same from the run dir afterwards, on the best checkpoint
    cli = subprocess.run(
        [sys.executable, "-m", "lightreg.compact", str(run), "--checkpoint", "best"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    again = json.loads((run / "compact.json").read_text())["figures"]
    assert again["compact/params_after"] < again["compact/params_before"] and again["compact/max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_cli_compact_without_checkpoints_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train("data=digits_images", "model=cnn", "data.limit=64", "trainer.max_epochs=1", "callbacks=none",
                     "logger=none", f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    cli = subprocess.run(
        [sys.executable, "-m", "lightreg.compact", str(run)], capture_output=True, text=True, cwd=tmp_path
    )
    assert cli.returncode == 2
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightreg: error:") and "no checkpoint" in lines[0]


@pytest.mark.slow
def test_cli_compact_true_saves_the_kept_feature_names(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "data=synthetic", "model=mlp", "model.hidden_sizes=[6]", "+penalty=group_lasso", "penalty.groups=columns",
        "penalty.include=[net.fc1.weight]", "lambda=0.05", "trainer.max_epochs=20", "compact=true", "logger=none",
        "~callbacks.progress_bar", "model.print_epochs=false", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    saved = torch.load(run / "compact.pt", weights_only=False)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    read = (state["net.fc1.weight"] != 0).any(dim=0)
    assert saved["feature_names"] == [f"x{j}" for j in range(10) if read[j]]
    assert saved["kept_inputs"] == [j for j in range(10) if read[j]] and 0 < len(saved["kept_inputs"]) < 10
    assert {"x0", "x1"} <= set(saved["feature_names"])  # the informative inputs of the seed-001 setup
    assert saved["net"][1].in_features == len(saved["kept_inputs"]) and saved["input_shape"] == (len(read.nonzero()),)
    assert read_metrics(run)["compact/max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_cli_compact_regression_predicts_in_the_target_units(tmp_path: Path) -> None:
    """The net alone predicts the standardized target: compact.pt's net must give the prediction itself, and the
    before/after figures must be val/loss (standardized MSE) and val/mae (target units)."""
    from lightreg.data import SklearnDataModule

    run = tmp_path / "run"
    proc = run_train(
        "data=diabetes", "model=mlp", "model.hidden_sizes=[8]", "+penalty=group_lasso", "penalty.groups=columns",
        "penalty.include=[net.fc1.weight]", "lambda=0.05", "trainer.max_epochs=10", "compact=true", "logger=none",
        "~callbacks.progress_bar", "model.print_epochs=false", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    m = read_metrics(run)
    assert m["compact/val_mae_after"] == pytest.approx(m["compact/val_mae_before"], rel=1e-5)
    assert m["compact/val_mae_before"] == pytest.approx(m["val/mae"], rel=1e-4)
    assert m["compact/val_loss_before"] == pytest.approx(m["val/loss"], rel=1e-4)
    assert m["val/mae"] > 10  # diabetes targets are 25-346: an MAE in std units would be below 1
    saved = torch.load(run / "compact.pt", weights_only=False)
    data = SklearnDataModule(name="diabetes", batch_size=128, standardize_target=True, seed=0)
    data.setup("fit")
    x = data.x_val if saved["kept_inputs"] is None else data.x_val[:, saved["kept_inputs"]]
    with torch.no_grad():
        mae = (saved["net"](x).squeeze(-1) - data.y_val).abs().mean()
    assert float(mae) == pytest.approx(m["val/mae"], rel=1e-4)
