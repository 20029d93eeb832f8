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
from lightreg.compact.saved import report_of
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
    assert m["compact/max_abs_diff"] < 1e-5 and m["compact/status"] == "done" and m["compact/source"] == "best"
    assert m["compact/method"] == "layers" and m["compact/val_max_abs_diff"] < 1e-5
    assert m["compact/macs_after"] < m["compact/macs_before"]
    assert m["compact/latency_ms_before"] > 0 and m["compact/latency_ms_after"] > 0
    assert m["compact/val_acc_after"] == m["compact/val_acc_before"]
    assert m["compact/val_loss_before"] == pytest.approx(_best_score(run), rel=1e-4)  # made from best.ckpt
    small = lightreg.compact.load(run / "compact.pt")
    assert sum(p.numel() for p in small.parameters()) == m["compact/params_after"] and not small.training
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
def test_cli_compact_true_saves_the_kept_feature_names(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "data=synthetic", "model=mlp", "model.hidden_sizes=[6]", "+penalty=group_lasso", "penalty.groups=columns",
        "penalty.include=[net.fc1.weight]", "lambda=0.05", "trainer.max_epochs=20", "compact=true", "logger=none",
        "~callbacks.progress_bar", "model.print_epochs=false", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    small = lightreg.compact.load(run / "compact.pt")
    kept = report_of(run / "compact.pt")["kept_inputs"]
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    read = (state["net.fc1.weight"] != 0).any(dim=0)
    assert small.feature_names == [f"x{j}" for j in range(10) if read[j]]
    assert kept == [j for j in range(10) if read[j]] and 0 < len(kept) < 10
    assert {"x0", "x1"} <= set(small.feature_names)  # the informative inputs of the seed-001 setup
    assert small.body[1].in_features == len(kept) and small.input_shape == (len(read.nonzero()),)
    assert small.feature_mean.shape == (len(kept),)  # the preprocessing of the kept inputs only
    assert read_metrics(run)["compact/max_abs_diff"] < 1e-5
    from lightreg.cli.commands import main as lightreg_main

    capsys.readouterr()
    onnx_file = tmp_path / "compact.onnx"
    assert lightreg_main(["export", str(run), "--format", "onnx", "-o", str(onnx_file), "--checkpoint", "compact"]) == 0
    assert "on 200 validation rows" in capsys.readouterr().out  # the kept columns of the run's validation rows


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
    assert m["compact/val_loss_before"] == pytest.approx(_best_score(run), rel=1e-4)
    assert m["compact/val_mae_before"] > 10  # diabetes targets are 25-346: an MAE in std units would be below 1
    small = lightreg.compact.load(run / "compact.pt")
    raw = SklearnDataModule(name="diabetes", seed=0, standardize=False, standardize_target=False)
    raw.setup("fit")  # the same split, the features as the data set gives them
    columns = [raw.feature_names.index(name) for name in small.feature_names]
    with torch.no_grad():
        mae = (small(raw.x_val[:, columns].float()).squeeze(-1) - raw.y_val).abs().mean()
    assert float(mae) == pytest.approx(m["compact/val_mae_after"], rel=1e-4)


def _best_score(run: Path) -> float:
    """The validation loss of the run's best checkpoint (its ModelCheckpoint's ``best_model_score``)."""
    state = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["callbacks"]
    return next(float(v["best_model_score"]) for k, v in state.items() if k.startswith("ModelCheckpoint"))


@pytest.mark.slow
def test_a_model_with_a_skip_path_is_compacted_whole_and_predicts(tmp_path: Path, capsys) -> None:
    """SkipLogistic.forward is net(x) + skip(x): a compact net alone would drop the skip path, so compaction keeps the
    whole model (nothing to remove in a linear model); compact.pt, the checkpoint, predict and export agree."""
    import numpy as np

    from lightreg.cli.commands import main as lightreg_main
    from lightreg.compact.__main__ import main as compact_main
    from trained_runs import SkipLogistic, raw_rows, read_table, train_csv

    run, m = train_csv(tmp_path, "breast_cancer", "diagnosis", "model._target_=trained_runs.SkipLogistic",
                       "compact=true")  # fmt: skip
    assert m["status"] == "completed" and m["compact/status"] == "done" and m["compact/method"] == "coupled_groups"
    assert m["compact/params_after"] == m["compact/params_before"] and m["compact/max_abs_diff"] < 1e-5
    capsys.readouterr()
    assert compact_main([str(run), "--checkpoint", "last"]) == 0
    assert "compact/params_after: 61" in capsys.readouterr().out  # net: 30 weights + bias; skip: 30 weights
    model = SkipLogistic.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert float(model.skip.weight.detach().abs().sum()) > 0
    rows = read_table(tmp_path / "holdout.csv")
    expected = model.predict_labels(raw_rows(rows, model.feature_names))
    for which in ("last", "compact"):  # compact.pt of last.ckpt now
        assert lightreg_main(["predict", str(run), str(tmp_path / "holdout.csv"), "-o", str(tmp_path / "out.csv"),
                              "--checkpoint", which]) == 0  # fmt: skip
        assert [r["prediction"] for r in read_table(tmp_path / "out.csv")] == expected
    assert np.mean(np.asarray(expected) == [r["diagnosis"] for r in rows]) == pytest.approx(m["val/acc"], abs=0.01)
    assert lightreg_main(["export", str(run), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert "max abs diff from PyTorch" in capsys.readouterr().out


def test_compact_pt_loads_without_pickles_and_rebuilds_the_model(tmp_path: Path) -> None:
    from lightreg.compact.run import compact_model

    torch.manual_seed(0)
    model = lightreg.models.MLP(
        input_shape=(6,), num_classes=3, hidden_sizes=[5], feature_names=[f"f{i}" for i in range(6)],
        feature_scale=([float(i) for i in range(6)], [1.0 + i for i in range(6)]),
    )  # fmt: skip
    with torch.no_grad():
        model.net.fc1.weight[:, [1, 4]] = 0
    figures = compact_model(model, tmp_path)
    content = torch.load(tmp_path / "compact.pt", weights_only=True)  # no arbitrary objects inside
    assert content["facts"]["feature_names"] == ["f0", "f2", "f3", "f5"]
    small = lightreg.compact.load(tmp_path / "compact.pt")
    raw = torch.randn(8, 6) * 3 + 2
    with torch.no_grad():
        assert torch.allclose(small(raw[:, [0, 2, 3, 5]]), model(model.prepare_inputs(raw)), atol=1e-5)
    assert figures["compact/max_abs_diff"] < 1e-5
