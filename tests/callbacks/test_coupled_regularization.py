"""penalty.groups=coupled through the real entry point: whole coupled channel groups reach zero together."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor, nn

from lightreg.callbacks import regularizer
from lightreg.compact.pruning import remove_zero_groups
from lightreg.data import ImageDataModule
from lightreg.errors import UserError
from lightreg.models import LightregModule

from conftest import describe, run_train
from helpers import QUIET, read_metrics


@pytest.mark.slow
def test_cli_coupled_group_lasso_zeroes_filters_with_their_consumers(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", "penalty.groups=coupled", "lambda=0.008",
        "trainer.max_epochs=3", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert 0 < metrics["sparsity/group_lasso"] < 1
    assert metrics["train/penalty"] > 0


@pytest.mark.slow
def test_cli_coupled_with_mode_exact_is_one_line(tmp_path: Path) -> None:
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", "penalty.groups=coupled", "penalty.mode=exact",
        "lambda=1e-3", *QUIET, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, describe(proc)
    assert "mode=exact" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_macs_group_weight_removes_more_macs_than_parameters(tmp_path: Path) -> None:
    """penalty.group_weight=macs weighs conv1's groups (8×8 map) most: at λ = 0.006 (measured: 2 epochs, seed 0)
    compaction takes 28 % of the MACs and 11 % of the parameters; the default √size empties fc1 units first."""
    run = tmp_path / "run"
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", "penalty.groups=coupled",
        "penalty.group_weight=macs", "lambda=0.006", "trainer.max_epochs=2", "compact=true", *QUIET,
        f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    m = read_metrics(run)
    macs_kept = m["compact/macs_after"] / m["compact/macs_before"]
    params_kept = m["compact/params_after"] / m["compact/params_before"]
    assert macs_kept < 0.9 and macs_kept < params_kept
    (checkpoint,) = (run / "checkpoints").glob("*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["callbacks"]
    assert any("group_weight='macs'" in str(v.get("penalty")) for v in state.values() if isinstance(v, dict))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["penalty.groups=coupled", "penalty.group_weight=flops"], "'flops'"),
        (["penalty.group_weight=macs"], "groups=coupled"),
    ],
    ids=["unknown", "not-coupled"],
)
def test_cli_bad_group_weight_is_one_line(tmp_path: Path, overrides: list[str], words: str) -> None:
    proc = run_train(
        "model=cnn", "data=digits_images", "+penalty=group_lasso", *overrides, "lambda=1e-3", *QUIET, cwd=tmp_path
    )
    assert proc.returncode == 2, describe(proc)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("lightreg: error:") and words in last and "group_weight" in last


class _SkipPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn(self.stem(x)))
        return self.head(torch.relu(h + self.block(h)).mean(dim=(2, 3)))


class _Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 5, padding=2)
        self.head = nn.Linear(10, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.cat([torch.relu(self.a(x)), torch.tanh(self.b(x))], dim=1)
        return self.head(h.mean(dim=(2, 3)))


class _UserModel(LightregModule):
    """A user's LightregModule that only builds ``self.net``."""

    def __init__(self, net: nn.Module, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = net


@pytest.mark.parametrize(
    ("net", "lam"),
    [pytest.param(_SkipPath, 0.14, marks=pytest.mark.slow), (_Concat, 0.2)],  # the skip path trains for seconds
    ids=["skip", "concat"],
)
def test_user_module_groups_reach_zero_together_and_are_removed(net: type[nn.Module], lam: float) -> None:
    """λ measured to zero some groups but not all after 2 epochs (skip path: 4 of 8 at 0.14; concat: 4 of 10)."""
    torch.manual_seed(0)
    model = _UserModel(net(), input_shape=(1, 8, 8), num_classes=10, print_epochs=False,
                       optimizer=partial(torch.optim.SGD, lr=0.1))  # fmt: skip
    callback = regularizer("group_lasso", lam, groups="coupled")
    trainer = L.Trainer(
        max_epochs=2, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, datamodule=ImageDataModule("digits_images", batch_size=64, limit=256))
    penalty = callback.coupled
    zero = penalty.unit_norms(callback.params) == 0
    assert 0 < int(zero.sum()) < penalty.groups.num_groups
    for name, mask in penalty.groups.member_mask(callback.params, zero).items():
        assert bool((callback.params[name][mask] == 0).all()), name  # every coupled slice, biases included
    x = torch.randn(4, 1, 8, 8)
    small, report = remove_zero_groups(model, x)
    model.eval(), small.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
    assert report.params_after < report.params_before


def test_a_bound_penalty_is_shared_without_a_second_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A λ path binds the groups once: a callback given the bound penalty keeps it through ``setup`` (no trace), a
    model pruned in place since is traced again, and a penalty bound to another model is refused in one line."""
    from lightreg.callbacks import coupled_regularization

    traces = []
    trace = coupled_regularization.coupled_layout
    monkeypatch.setattr(coupled_regularization, "coupled_layout", lambda *a, **k: traces.append(1) or trace(*a, **k))
    model = _UserModel(_Concat(), input_shape=(1, 8, 8), num_classes=10, print_epochs=False)
    first = regularizer("group_lasso", 0.1, groups="coupled")
    first.bind(model)
    second = regularizer("group_lasso", 0.2, groups="coupled")
    second.bind(model, first.coupled)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    second.setup(trainer, model, "fit")
    assert len(traces) == 1 and second.coupled is first.coupled and second.num_groups == 10
    assert second.params["net.a.weight"] is model.net.a.weight
    model.net.a.weight = nn.Parameter(model.net.a.weight.detach().clone())  # e.g. pruned in place
    second.setup(trainer, model, "fit")
    assert len(traces) == 2 and second.params["net.a.weight"] is model.net.a.weight
    other = _UserModel(_SkipPath(), input_shape=(1, 8, 8), num_classes=10, print_epochs=False)
    with pytest.raises(UserError, match="is not bound to the groups of _UserModel"):
        regularizer("group_lasso", 0.1, groups="coupled").bind(other, first.coupled)
