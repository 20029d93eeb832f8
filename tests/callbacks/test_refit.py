"""``refit_epochs``: the full-batch finish (mode=exact) or the last proximal step (mode=prox) fixes the support
``refit_epochs`` before the end, then the kept weights are refit without the penalty while the zeroed ones stay exactly
zero, also under Adam's momentum, for coupled channel groups, and across a resume inside the refit."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from lightreg.callbacks import RegularizationCallback
from lightreg.data import SyntheticDataModule
from lightreg.errors import LightregWarning, UserError
from lightreg.models import MLP
from lightreg.penalties import L1, L2, GroupLasso

from conftest import describe
from helpers import QUIET, quiet_trainer, read_metrics, seeded_mlp

LAMBDA = 0.05


class WeightsAtEpochStart(Callback):
    """fc1's weights at the start of every training epoch."""

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weights[trainer.current_epoch] = pl_module.net.fc1.weight.detach().clone()


def _model_and_data(hidden: int = 6) -> tuple[MLP, SyntheticDataModule]:
    dm = SyntheticDataModule(n_samples=300, batch_size=50, rule="linear", seed=0)
    model = seeded_mlp([hidden], functools.partial(torch.optim.Adam, lr=0.05))
    return model, dm


def _parts(
    refit_epochs: int = 2, strength: float = LAMBDA, mode: str = "exact", **callback_options
) -> tuple[MLP, SyntheticDataModule, RegularizationCallback]:
    model, dm = _model_and_data()
    callback = RegularizationCallback(
        GroupLasso(groups="columns"),
        strength,
        mode=mode,
        include="net.fc1.weight",
        refit_epochs=refit_epochs,
        finish={"max_iter": 1000} if mode == "exact" else None,
        **callback_options,
    )
    return model, dm, callback


def _l2_rest() -> RegularizationCallback:
    """L2 on the other weights, so that the penalized objective has a minimizer (as ``experiment=seed001_exact``)."""
    return RegularizationCallback(L2(), 1e-2, exclude="net.fc1.weight", name="l2_rest")


def test_refit_keeps_the_finish_support_and_moves_the_kept_weights() -> None:
    model, dm, callback = _parts(refit_epochs=2)
    seen = WeightsAtEpochStart()
    trainer = quiet_trainer(max_epochs=5, callbacks=[callback, _l2_rest(), seen])
    trainer.fit(model, datamodule=dm)
    assert callback.finish_report is not None and callback.finish_report["refit_epochs"] == 2.0
    assert callback.finish_report["kkt_violation"] < 1e-3  # the penalized optimum, before the refit
    at_finish = seen.weights[3]  # the finish ran after epoch 2's last batch: epochs 3 and 4 refit
    final = model.net.fc1.weight.detach()
    dropped = (at_finish == 0).all(dim=0)
    assert 0 < int(dropped.sum()) < 10
    assert torch.equal(final == 0, at_finish == 0)  # Adam's momentum did not move a single held zero
    assert not torch.allclose(final[:, ~dropped], at_finish[:, ~dropped])  # the kept weights were refit
    penalty = trainer.callback_metrics["train/penalty"]  # group lasso (0 in the refit epochs) + L2 on the rest
    rest = [p for name, p in model.named_parameters() if name != "net.fc1.weight" and p.ndim > 1]
    l2 = 1e-2 * sum(float(p.detach().square().sum()) for p in rest) / 2
    assert float(penalty) == pytest.approx(l2, rel=0.2)


def test_without_refit_the_finish_is_the_last_step() -> None:
    model, dm, callback = _parts(refit_epochs=0)
    seen = WeightsAtEpochStart()
    quiet_trainer(max_epochs=3, callbacks=[callback, _l2_rest(), seen]).fit(model, datamodule=dm)
    assert callback.support is None and "refit_epochs" not in callback.finish_report
    assert not torch.equal(seen.weights[2] == 0, model.net.fc1.weight.detach() == 0)


def test_resuming_inside_the_refit_holds_the_same_zeros(tmp_path: Path) -> None:
    model, dm, callback = _parts(refit_epochs=3)
    saver = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1, filename="{epoch}")
    quiet_trainer(max_epochs=6, callbacks=[callback, _l2_rest(), saver], enable_checkpointing=True).fit(
        model, datamodule=dm
    )
    expected = model.net.fc1.weight.detach() == 0

    model, dm, callback = _parts(refit_epochs=3)
    quiet_trainer(max_epochs=6, callbacks=[callback, _l2_rest()]).fit(
        model, datamodule=dm, ckpt_path=tmp_path / "epoch=3.ckpt"
    )  # in the refit
    assert callback.finish_report is None  # no second finish at the end of the resumed run
    assert callback.support is not None
    assert torch.equal(model.net.fc1.weight.detach() == 0, expected)


def test_early_stop_before_the_refit_says_it_did_not_run() -> None:
    model, dm, callback = _parts(refit_epochs=2)
    stop = EarlyStopping(monitor="val/loss", min_delta=10.0, patience=0)
    with pytest.warns(LightregWarning, match=r"refit_epochs=2 refit did not run"):
        quiet_trainer(max_epochs=8, callbacks=[callback, _l2_rest(), stop]).fit(model, datamodule=dm)
    assert callback.support is None and callback.finish_report is not None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_refit_epochs_must_be_a_non_negative_integer(bad) -> None:
    with pytest.raises(UserError, match=rf"refit_epochs must be an integer >= 0, got {bad!r}"):
        RegularizationCallback(L1(), 0.01, mode="exact", refit_epochs=bad)


def test_refit_needs_a_mode_with_exact_zeros() -> None:
    with pytest.raises(UserError, match=r"refit_epochs=3 refits .* mode='grad' gives no exact zeros"):
        RegularizationCallback(L1(), 0.01, mode="grad", refit_epochs=3)


def test_prox_refit_holds_the_last_prox_steps_zeros_and_restarts_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mode=prox: the zeros after epoch 3 are held through the refit epochs 4-5 (Adam's momentum included), the kept
    weights move without the penalty, and best.ckpt comes from the refit (the support it will be compacted with)."""
    model, dm, callback = _parts(refit_epochs=2, strength=0.4, mode="prox")
    model.print_epochs = True
    seen = WeightsAtEpochStart()
    best = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/loss", mode="min", save_top_k=1)
    trainer = quiet_trainer(max_epochs=5, callbacks=[callback, seen, best], enable_checkpointing=True)
    trainer.fit(model, datamodule=dm)
    at_refit, final = seen.weights[3], model.net.fc1.weight.detach()
    dropped = (at_refit == 0).all(dim=0)
    assert 0 < int(dropped.sum()) < 10
    assert torch.equal(final == 0, at_refit == 0)
    assert not torch.allclose(final[:, ~dropped], at_refit[:, ~dropped])
    assert float(trainer.callback_metrics["train/penalty"]) == 0.0  # λ = 0 in the refit
    assert torch.load(tmp_path / "best.ckpt", weights_only=False)["epoch"] >= 3
    assert "group_lasso: the support is fixed after epoch 3 (" in capsys.readouterr().out


def test_prox_refit_holds_zero_coupled_groups() -> None:
    """groups=coupled: a channel group zeroed before the refit stays zero in every tensor it spans."""
    from lightreg.callbacks.coupled_regularization import CoupledRegularizationCallback
    from lightreg.penalties.coupled import CoupledGroupLasso

    model, dm = _model_and_data(hidden=16)
    callback = CoupledRegularizationCallback(CoupledGroupLasso(), 0.4, mode="prox", refit_epochs=2)
    seen = WeightsAtEpochStart()
    quiet_trainer(max_epochs=5, callbacks=[callback, seen]).fit(model, datamodule=dm)
    held = (seen.weights[3] == 0).all(dim=1)  # fc1's rows: the hidden units' groups
    assert 0 < int(held.sum()) < 16
    assert torch.equal(model.net.fc1.weight.detach()[held], torch.zeros_like(model.net.fc1.weight[held]))
    assert (model.net.out.weight.detach()[:, held] == 0).all()


def test_refit_must_leave_epochs_to_select_in() -> None:
    model, dm, callback = _parts(refit_epochs=4)
    with pytest.raises(UserError, match=r"refit_epochs=4 leaves no epoch .* trainer.max_epochs=4"):
        quiet_trainer(max_epochs=4, callbacks=[callback]).fit(model, datamodule=dm)


@pytest.mark.parametrize(("max_epochs", "refit_epochs"), [(5, 2), (3, 0)])
def test_the_lambda_ramp_must_end_before_the_finish(max_epochs: int, refit_epochs: int) -> None:
    model, dm, callback = _parts(refit_epochs=refit_epochs, warmup_epochs=4)
    finish_epoch = max_epochs - refit_epochs - 1
    with pytest.raises(UserError, match=rf"ramp \(warmup_epochs=4\) is still at .* in epoch {finish_epoch}, where"):
        quiet_trainer(max_epochs=max_epochs, callbacks=[callback]).fit(model, datamodule=dm)


def test_exact_penalties_must_agree_on_refit_epochs() -> None:
    model, dm, callback = _parts(refit_epochs=2)
    other = RegularizationCallback(L1(), 0.01, mode="exact", include="net.out.weight", refit_epochs=1, name="l1_out")
    with pytest.raises(UserError, match=r"different refit_epochs \[1, 2\]"):
        quiet_trainer(max_epochs=5, callbacks=[callback, other]).fit(model, datamodule=dm)


def test_a_resume_under_another_refit_is_refused() -> None:
    _, _, callback = _parts(refit_epochs=2)
    _, _, other = _parts(refit_epochs=0)
    with pytest.raises(UserError, match=r"refit_epochs=2, this run asks for .* refit_epochs=0"):
        other.load_state_dict(callback.state_dict())


def test_cli_seed001_refits_with_rmsprop_and_keeps_x0_x1(cli, tmp_path: Path) -> None:
    """The preset with the optimizer that kept x0, x1 in 4 of 10 ring data sets before the λ ramp and the refit."""
    proc = cli(
        "experiment=seed001_exact", "data.rule=ring", "optimizer=rmsprop", "seed=3", *QUIET, f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(tmp_path)
    features = json.loads((tmp_path / "sparsity.json").read_text())["features"]
    assert features["selected_names"] == ["x0", "x1"]
    assert metrics["exact/refit_epochs"] == 20 and metrics["exact/converged"] == 1.0
    assert metrics["exact/kkt_violation"] < 1e-2  # at the finish, before the refit left the penalized optimum
    assert "kkt_violation" not in metrics
    assert metrics["val/acc"] >= 0.9  # the ring needs both inputs: one alone is near 0.77


def test_cli_preset_in_grad_mode_says_to_drop_the_refit(cli) -> None:
    proc = cli("experiment=seed001_exact", "penalty.mode=grad", *QUIET)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.strip().splitlines()[-1].startswith("lightreg: error: bad penalty config: refit_epochs=20")
    assert "penalty.refit_epochs=0" in proc.stderr


def test_cli_path_turns_the_run_schedules_off_by_name(cli, tmp_path: Path) -> None:
    proc = cli(
        "experiment=seed001_exact",
        "lambda=0",
        "+path=geometric",
        "path.num=2",
        "path.epochs_per_lambda=2",
        "path.lambda_max=0.05",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, describe(proc)
    assert "path: penalty.warmup_epochs=10, penalty.refit_epochs=20 schedule a single run" in proc.stderr
    assert len((tmp_path / "path.csv").read_text().splitlines()) == 3  # header + 2 points


def test_best_checkpoint_comes_from_after_the_finish(tmp_path: Path) -> None:
    """λ ramps from 0, so the lowest val/loss is in an early, barely penalized epoch that lacks the finish's zeros and
    shrinkage; best.ckpt must still hold a model with the finish's support."""
    model, dm, callback = _parts(refit_epochs=0, strength=0.2, warmup_epochs=3)
    best = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/loss", mode="min", save_top_k=1)
    quiet_trainer(max_epochs=6, callbacks=[callback, _l2_rest(), best], enable_checkpointing=True).fit(
        model, datamodule=dm
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]
    saved = torch.load(tmp_path / "best.ckpt", weights_only=False)
    assert saved["epoch"] == 5  # the finish ran after the last batch of epoch 5, the last
    assert torch.equal(saved["state_dict"]["net.fc1.weight"] == 0, model.net.fc1.weight.detach() == 0)


def test_a_checkpoint_from_before_refit_epochs_resumes_without_a_refit() -> None:
    _, _, callback = _parts(refit_epochs=0)
    older = {key: value for key, value in callback.state_dict().items() if key != "refit_epochs"}
    callback.load_state_dict(older)  # no error: it was trained without a refit
    _, _, refitting = _parts(refit_epochs=2)
    with pytest.raises(UserError, match=r"refit_epochs=0, this run asks for .* refit_epochs=2"):
        refitting.load_state_dict(older)


def test_the_refit_start_is_announced_beside_the_epoch_lines(capsys: pytest.CaptureFixture[str]) -> None:
    model, dm, callback = _parts(refit_epochs=2)
    model.print_epochs = True
    quiet_trainer(max_epochs=5, callbacks=[callback, _l2_rest()]).fit(model, datamodule=dm)
    out = capsys.readouterr().out
    assert "group_lasso: the finish fixed the support after epoch 3 (" in out
    assert "epochs 4-5 refit the others without group_lasso" in out


def test_a_finish_that_empties_the_layer_is_named_as_the_cause() -> None:
    """One epoch of prox steps at a large λ leaves columns; the full-batch finish at that λ removes them all."""
    model, dm, callback = _parts(refit_epochs=0, strength=0.5)
    with pytest.warns(LightregWarning, match=r"the mode=exact full-batch finish, which solves .* emptied them"):
        quiet_trainer(max_epochs=1, callbacks=[callback, _l2_rest()]).fit(model, datamodule=dm)
    assert callback.emptied_by_finish and callback.zero_fraction() == 1.0
