"""compact=true and lightreg.compact.load for models that are not a plain Sequential net: a skip path, a
concatenation, a ResNet; compact.pt is the whole model without its zero channel groups, reloaded with equal outputs;
an untraceable model is refused in one line and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lightreg
from compact_models import ConcatMLP, SkipMLP, Untraceable
from lightreg.cli.commands import main as lightreg_main
from lightreg.compact import run as compact_run
from lightreg.compact.run import compact_in_run, compact_model
from lightreg.errors import UserError
from lightreg.models import ResNet
from lightreg.models.standalone import StandaloneModel
from trained_runs import read_table

from conftest import describe, run_train, write_csv
from helpers import read_metrics

QUIET = ["logger=none", "~callbacks.progress_bar", "model.print_epochs=false"]
NEW_KEYS = ("compact/macs_before", "compact/macs_after", "compact/latency_ms_before", "compact/latency_ms_after")
USER_MODELS = {
    "skip": (SkipMLP, ["model=mlp", "model._target_=compact_models.SkipMLP", "model.hidden_sizes=[8]", "lambda=0.02"]),
    "concat": (ConcatMLP, ["model=logistic", "model._target_=compact_models.ConcatMLP", "+model.width=8",
                           "lambda=0.05"]),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(USER_MODELS))
def test_user_model_compacts_whole_with_equal_outputs(kind: str, tmp_path: Path) -> None:
    model_class, overrides = USER_MODELS[kind]
    run = tmp_path / "run"
    proc = run_train(
        "data=synthetic", *overrides, "+penalty=group_lasso", "penalty.groups=coupled", "trainer.max_epochs=10",
        "compact=true", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    m = read_metrics(run)
    assert m["compact/status"] == "done" and m["compact/method"] == "coupled_groups" and m["compact/source"] == "best"
    assert m["compact/params_after"] < m["compact/params_before"]
    assert m["compact/macs_after"] < m["compact/macs_before"] and all(m[k] > 0 for k in NEW_KEYS)
    assert m["compact/max_abs_diff"] < 1e-5 and m["compact/val_max_abs_diff"] < 1e-5
    assert m["compact/val_acc_after"] == pytest.approx(m["compact/val_acc_before"])
    small = lightreg.compact.load(run / "compact.pt")
    assert isinstance(small, StandaloneModel) and not small.training and small.whole
    assert sum(p.numel() for p in small.parameters()) == m["compact/params_after"]
    best = model_class.load_from_checkpoint(run / "checkpoints" / "best.ckpt", map_location="cpu").eval()
    raw = torch.randn(50, 10, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        assert torch.allclose(small(raw), best(best.prepare_inputs(raw)), atol=1e-5)
    # lightreg predict on a CSV of raw rows, from compact.pt: the checkpoint's labels
    rows = write_csv(tmp_path / "rows.csv", small.feature_names, raw.tolist())
    out = tmp_path / "out.csv"
    assert lightreg_main(["predict", str(run), str(rows), "-o", str(out), "--checkpoint", "compact"]) == 0
    assert [int(r["prediction"]) for r in read_table(out)] == best.predict_labels(raw)


def _pruned_resnet() -> ResNet:
    """ResNet-18 (small input, 1×4×4) with every other coupled channel group zeroed and non-trivial BN statistics."""
    from test_pruning import _perturb_buffers, _zero_every_other_group

    torch.manual_seed(0)
    model = ResNet(arch="resnet18", small_input=True, input_shape=(1, 4, 4), num_classes=10, task="multiclass",
                   classes=[f"d{i}" for i in range(10)])  # fmt: skip
    _perturb_buffers(model)
    _zero_every_other_group(model, torch.randn(4, 1, 4, 4))
    return model.eval()


@pytest.mark.slow
def test_resnet_compact_pt_loads_and_predicts(tmp_path: Path) -> None:
    model = _pruned_resnet()
    figures = compact_model(model, tmp_path)
    assert figures["compact/params_after"] < figures["compact/params_before"] / 3  # 11.2 M -> 2.8 M
    assert figures["compact/macs_after"] < figures["compact/macs_before"] / 3
    assert figures["compact/max_abs_diff"] < 1e-5
    small = lightreg.compact.load(tmp_path / "compact.pt")
    assert not small.training and not small.whole and small.classes == [f"d{i}" for i in range(10)]
    x = torch.randn(20, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(small(x), model(x), atol=1e-5)
    assert small.body.layer4[0].conv1.out_channels == 256  # of 512
    np.save(tmp_path / "x.npy", x.numpy())
    out = tmp_path / "out.csv"
    assert lightreg_main(["predict", str(tmp_path), str(tmp_path / "x.npy"), "-o", str(out), "--checkpoint",
                          "compact"]) == 0  # fmt: skip
    assert [r["prediction"] for r in read_table(out)] == model.predict_labels(x)


def test_untraceable_model_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    model = Untraceable(input_shape=(6,), num_classes=3, hidden_sizes=[4])
    with pytest.raises(UserError) as caught:
        compact_model(model, tmp_path)
    assert "\n" not in str(caught.value) and "coupled groups need one output tensor" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    figures = compact_in_run(model, tmp_path, None, 0, None)
    assert figures == {"compact/status": f"refused: {caught.value}"}


def test_a_reloaded_model_that_differs_is_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compact.pt appears only once the model loaded back from it gives the trained model's outputs."""
    model = SkipMLP(input_shape=(6,), num_classes=3, hidden_sizes=[4])

    def wrong_load(path: Path) -> torch.nn.Module:
        loaded = lightreg.compact.load(path)
        with torch.no_grad():
            loaded.body.skip.weight.add_(1.0)
        return loaded

    monkeypatch.setattr(compact_run, "load", wrong_load)
    with pytest.raises(UserError, match="differs from the trained one"):
        compact_model(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_compact_resnet_experiment_composes() -> None:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=compact_resnet", "trainer.max_epochs=3"])
    assert cfg.model._target_ == "lightreg.models.ResNet" and cfg.model.small_input and cfg.model.arch == "resnet18"
    assert cfg.data.name == "digits_images" and cfg.optimizer._target_ == "lightreg.optim.ProxAdam"
    assert cfg.penalty.penalty == "group_lasso" and cfg.penalty.groups == "coupled" and cfg.compact
    assert cfg["lambda"] > 0 and cfg.penalty.group_weight == "macs" and cfg.penalty.refit_epochs > 0
    assert cfg.model.scheduler.T_max == 3  # the cosine rate follows the run's length
