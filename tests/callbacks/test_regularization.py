"""RegularizationCallback: gradient mode equals autograd of loss + λR, proximal mode gives exact zeros."""

from __future__ import annotations

import functools
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy

from lightreg.callbacks import RegularizationCallback, regularizer
from lightreg.callbacks.collapse import CollapseWatch
from lightreg.data import SyntheticDataModule
from lightreg.errors import LightregWarning, UserError
from lightreg.models import MLP, LogisticRegression
from lightreg.penalties import L1, L2, ElasticNet, GroupLasso, Penalty, SparseGroupLasso, soft_threshold_

from helpers import quiet_trainer, seeded_mlp

PENALTIES = [L1(), L2(), ElasticNet(0.3), GroupLasso("rows"), GroupLasso("columns"), SparseGroupLasso("columns", 0.4)]


def _data(batch_size: int | None = 32, n_samples: int = 200) -> SyntheticDataModule:
    dm = SyntheticDataModule(n_samples=n_samples, batch_size=batch_size, seed=0)
    dm.setup("fit")
    return dm


def _mlp(dm: SyntheticDataModule, optimizer, cls=MLP, seed: int = 0) -> MLP:
    return seeded_mlp([8, 6], optimizer, data=dm, cls=cls, seed=seed)


def _penalized_in_loss(penalty: Penalty, strength: float) -> type[MLP]:
    class PenaltyInLoss(MLP):
        def extra_loss_terms(self, batch, output):
            weights = [p for p in self.parameters() if p.ndim >= 2]
            return {"by_hand": strength * sum(penalty.value(w) for w in weights)}

    return PenaltyInLoss


@pytest.mark.parametrize("penalty", PENALTIES, ids=repr)
def test_grad_mode_equals_autograd_of_penalized_loss(penalty: Penalty) -> None:
    """Same init, same batches, accumulation 2 and clipping on: λ∇R added to .grad == λR added to the loss."""
    strength, dm = 0.05, _data(batch_size=40)  # 160 training rows: 4 batches, 2 full accumulation windows
    sgd = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    steps = dict(max_epochs=3, accumulate_grad_batches=2, gradient_clip_val=0.05)

    by_callback = _mlp(dm, sgd)
    quiet_trainer([RegularizationCallback(penalty, strength, mode="grad")], **steps).fit(by_callback, datamodule=dm)
    in_loss = _mlp(dm, sgd, cls=_penalized_in_loss(penalty, strength))
    quiet_trainer(**steps).fit(in_loss, datamodule=dm)
    untouched = _mlp(dm, sgd)
    quiet_trainer(**steps).fit(untouched, datamodule=dm)

    for (name, a), b, c in zip(by_callback.named_parameters(), in_loss.parameters(), untouched.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        if a.ndim >= 2:
            assert not torch.allclose(a, c, atol=1e-6), f"{name}: the penalty changed nothing"


@pytest.mark.parametrize(
    "penalty", [L1(), ElasticNet(0.5), GroupLasso("columns"), SparseGroupLasso("rows", 0.5)], ids=repr
)
def test_prox_mode_is_the_closed_form_prox_after_each_sgd_step(penalty: Penalty) -> None:
    """One full-batch plain-SGD step: w1 = prox_{lr·λ·R}(w0 − lr·∇f(w0)), with exact zeros."""
    lr, strength, dm = 0.5, 0.4, _data(batch_size=None)
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=lr))
    x, y = dm.x_train, dm.y_train
    model.zero_grad()
    model.batch_loss((x, y))[1].backward()
    expected = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            w = p - lr * p.grad
            expected[name] = penalty.prox_(w.clone(), lr * strength) if p.ndim >= 2 else w
    model.zero_grad()

    quiet_trainer([RegularizationCallback(penalty, strength)], max_steps=1, limit_val_batches=0).fit(
        model, datamodule=dm
    )
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)
    assert (model.net.fc1.weight == 0).any(), "a threshold this large must zero some entries exactly"


def test_prox_uses_the_lr_of_the_step_before_a_step_scheduler_moves_it() -> None:
    lr, strength, dm = 0.5, 0.2, _data(batch_size=None)

    class Halving(MLP):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.01)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    model = _mlp(dm, None, cls=Halving)
    w0 = model.net.fc1.weight.detach().clone()
    model.zero_grad()
    model.batch_loss((dm.x_train, dm.y_train))[1].backward()
    expected = soft_threshold_(w0 - lr * model.net.fc1.weight.grad, lr * strength)
    model.zero_grad()
    quiet_trainer([RegularizationCallback(L1(), strength)], max_steps=1, limit_val_batches=0).fit(model, datamodule=dm)
    torch.testing.assert_close(model.net.fc1.weight.detach(), expected)


def test_prox_skips_accumulation_micro_batches() -> None:
    """With accumulate_grad_batches=4, 8 batches are 2 optimizer steps: the prox runs exactly twice."""
    dm, calls = _data(batch_size=25), []
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.1))
    callback = RegularizationCallback(L1(), 0.01)
    original = callback._after_optimizer_step
    callback._after_optimizer_step = lambda *a: (calls.append(1), original(*a))
    quiet_trainer([callback], max_epochs=1, accumulate_grad_batches=4, limit_val_batches=0).fit(model, datamodule=dm)
    assert len(calls) == 2


def test_penalty_is_logged_and_objective_is_loss_plus_penalty() -> None:
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.Adam, lr=1e-2))
    trainer = quiet_trainer([RegularizationCallback(L1(), 1e-3)], max_epochs=2)
    trainer.fit(model, datamodule=dm)
    m = trainer.callback_metrics
    assert float(m["train/penalty"]) > 0
    torch.testing.assert_close(m["train/objective"], m["train/loss"] + m["train/penalty"])
    assert 0 < float(m["sparsity/l1"]) < 1
    # val/loss is the data loss only
    model.eval()
    with torch.no_grad():
        val = model.batch_loss((dm.x_val, dm.y_val))[1]
    torch.testing.assert_close(m["val/loss"], val, rtol=1e-5, atol=1e-6)


def test_only_weights_are_penalized_by_default() -> None:
    dm = _data(batch_size=None)
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.5))
    biases = {n: p.detach().clone() for n, p in model.named_parameters() if p.ndim == 1}
    bias_only_sgd = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.5))
    quiet_trainer([RegularizationCallback(L1(), 10.0)], max_steps=1, limit_val_batches=0).fit(model, datamodule=dm)
    quiet_trainer(max_steps=1, limit_val_batches=0).fit(bias_only_sgd, datamodule=dm)
    for name, p in model.named_parameters():
        if name in biases:
            torch.testing.assert_close(p, dict(bias_only_sgd.named_parameters())[name], msg=name)
        else:
            assert (p == 0).all(), f"{name} should be zeroed by a huge L1"


def test_include_exclude_select_parameters() -> None:
    dm = _data(batch_size=None)
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.5))
    callback = RegularizationCallback(L1(), 10.0, include=["net.fc1.weight"])
    quiet_trainer([callback], max_steps=1, limit_val_batches=0).fit(model, datamodule=dm)
    assert list(callback.params) == ["net.fc1.weight"]
    assert (model.net.fc1.weight == 0).all() and (model.net.fc2.weight != 0).any()
    with pytest.raises(UserError, match="available"):
        RegularizationCallback(L1(), 1.0, include="net.nope*").setup(SimpleNamespace(strategy=object()), model, "fit")


def test_two_callbacks_coexist_with_their_own_strength() -> None:
    first = RegularizationCallback(L1(), 1e-2, include="net.fc1.weight")
    rest = RegularizationCallback(L2(), 1e-4, exclude="net.fc1.weight", name="l2_rest")
    assert first.state_key != rest.state_key
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.1))
    trainer = quiet_trainer([first, rest], max_epochs=1)
    trainer.fit(model, datamodule=dm)
    assert "net.fc1.weight" in first.params and "net.fc1.weight" not in rest.params
    assert {"sparsity/l1", "sparsity/l2_rest"} <= set(trainer.callback_metrics)


def test_warmup_ramps_strength_linearly() -> None:
    callback = RegularizationCallback(L1(), 0.1, warmup_epochs=4)
    assert [callback.current_strength(e) for e in (0, 1, 2, 4, 9)] == pytest.approx([0, 0.025, 0.05, 0.1, 0.1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(strength=-0.1), "-0.1"),
        (dict(strength=float("nan")), "nan"),
        (dict(strength=float("inf")), "inf"),
        (dict(strength=1.0, mode="loss"), "'loss'"),
        (dict(strength=1.0, warmup_epochs=-2), "-2"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        RegularizationCallback(L1(), **kwargs)


def test_zero_strength_warns_that_nothing_is_regularized() -> None:
    with pytest.warns(LightregWarning, match="NO regularization"):
        RegularizationCallback(L1(), 0.0)


@pytest.mark.parametrize("strategy", [FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy], ids=lambda c: c.__name__)
def test_group_penalty_is_refused_on_sharded_strategies(strategy: type) -> None:
    sharded = SimpleNamespace(strategy=object.__new__(strategy))  # the class is what counts; no devices needed
    dm = _data()
    model = _mlp(dm, None)
    with pytest.raises(UserError, match=f"{strategy.__name__} shards parameters"):
        RegularizationCallback(GroupLasso("rows"), 1e-3).setup(sharded, model, "fit")
    RegularizationCallback(L1(), 1e-3).setup(sharded, model, "fit")  # elementwise: exact on shards


def test_fused_optimizer_under_grad_scaler_is_refused() -> None:
    dm = _data()
    model = _mlp(dm, None)
    callback = RegularizationCallback(L1(), 1e-3)
    callback.setup(SimpleNamespace(strategy=object()), model, "fit")
    fused = torch.optim.Adam(model.parameters(), fused=True)
    trainer = SimpleNamespace(
        precision_plugin=SimpleNamespace(scaler=object(), precision="16-mixed"), optimizers=[fused]
    )
    with pytest.raises(UserError, match="fused=True"):
        callback.on_fit_start(trainer, model)


def test_weight_decay_with_l2_penalty_warns_of_double_counting() -> None:
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.1, weight_decay=1e-3))
    with pytest.warns(LightregWarning, match="regularized twice"):
        quiet_trainer([RegularizationCallback(L2(), 1e-3)], max_steps=1).fit(model, datamodule=dm)


def test_all_zero_weights_warn_with_lambda_max_of_the_data() -> None:
    dm = _data(batch_size=None)
    torch.manual_seed(0)
    model = LogisticRegression(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=functools.partial(torch.optim.SGD, lr=0.5),
        print_epochs=False,
    )
    with pytest.warns(LightregWarning, match=r"lambda_max = ([0-9.e-]+)") as record:
        quiet_trainer([RegularizationCallback(L1(), 5.0)], max_epochs=1, limit_val_batches=0).fit(model, datamodule=dm)
    assert (model.net.linear.weight == 0).all()
    # λ_max = max |∇_w f| at w = 0 with the bias the run ended with
    model.zero_grad()
    model.batch_loss((dm.x_train, dm.y_train))[1].backward()
    lam_max = float(model.net.linear.weight.grad.abs().max())
    reported = next(str(w.message) for w in record if "lambda_max" in str(w.message))
    assert f"lambda_max = {lam_max:.4g}" in reported


def test_penalty_that_dwarfs_the_loss_warns() -> None:
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=1e-4))
    with pytest.warns(LightregWarning, match="more than 10x the data loss"):
        quiet_trainer([RegularizationCallback(L1(), 5.0, mode="grad")], max_epochs=1).fit(model, datamodule=dm)


def test_a_proximal_penalty_larger_than_the_loss_is_no_dwarf_warning() -> None:
    """The value λ·R says how a gradient penalty drives the weights, not how fast a proximal step moves them (its
    threshold lr·λ does): the same λ as a prox gives no "likely too large" warning; the all-zero guard speaks."""
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=1e-4))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        quiet_trainer([RegularizationCallback(L1(), 5.0, mode="prox")], max_epochs=1).fit(model, datamodule=dm)
    messages = [str(w.message) for w in record]
    assert not any("more than 10x the data loss" in m for m in messages), messages


def test_regularizer_builds_penalty_options_from_flat_config() -> None:
    callback = regularizer("elastic_net", 1e-3, l1_ratio=0.7, mode="grad")
    assert callback.penalty == ElasticNet(0.7) and callback.mode == "grad"
    assert regularizer("group_lasso", 1e-3, groups="rows").penalty == GroupLasso("rows")
    assert regularizer("l2", 1e-3).mode == "grad" and regularizer("l1", 1e-3).mode == "prox"
    with pytest.raises(UserError, match="'l3'"):
        regularizer("l3", 1e-3)


def test_small_data_loss_of_a_well_fit_model_is_not_a_dwarf_warning() -> None:
    """The penalty is compared with the first epoch's data loss too: a loss that fell to 0.03 is no alarm."""
    watch = CollapseWatch("l1")
    watch.start_fit()

    def epoch(penalty: float, loss: float) -> None:
        watch.start_epoch(torch.device("cpu"))
        watch.add_batch(torch.tensor(penalty), torch.tensor(loss), 4)
        watch.check_dwarf(epoch=0, strength=1e-3)

    with warnings.catch_warnings():
        warnings.simplefilter("error", LightregWarning)
        for loss, penalty in [(0.7, 0.3), (0.03, 0.35)]:  # penalty > 10x the current loss at the second epoch
            epoch(penalty, loss)
    with pytest.warns(LightregWarning, match="0.7 after the first epoch"):
        epoch(8.0, 0.5)  # > 10x the first epoch's 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error", LightregWarning)
        epoch(8.0, 0.5)  # said once


def test_penalties_reported_in_an_earlier_fit_are_forgotten() -> None:
    dm = _data()
    model = _mlp(dm, functools.partial(torch.optim.SGD, lr=0.1))
    quiet_trainer([RegularizationCallback(L1(), 1e-3)]).fit(model, datamodule=dm)
    again = quiet_trainer()
    again.fit(model, datamodule=dm)
    assert "train/penalty" not in again.callback_metrics and "train/objective" not in again.callback_metrics


class _PenaltyByHand(L.Callback):
    """λ·‖W‖₁ of the weights at every training batch's start, computed by hand, and each epoch's logged figures."""

    def __init__(self, strength: float, warmup_epochs: int) -> None:
        self.strength, self.warmup_epochs = strength, warmup_epochs
        self.rows: list[dict] = []  # per batch: epoch, batch index, global step, batch size, λ·R, fused value read
        self.logged: list[dict[str, float]] = []  # per epoch: train/penalty, train/loss, train/objective

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        lam = self.strength * min(1.0, trainer.current_epoch / self.warmup_epochs)
        weights = [p for p in pl_module.parameters() if p.ndim >= 2]
        reg = RegularizationCallback.all_in(trainer)[0]
        fused = [f.value is not None for _, f in reg._fused.values()]
        self.rows.append(
            dict(
                epoch=trainer.current_epoch,
                batch=batch_idx,
                step=trainer.global_step,
                n=len(batch[0]),
                value=lam * sum(float(w.detach().abs().sum()) for w in weights),
                fused_read=fused[0] if fused else None,
            )
        )

    def _record(self, trainer) -> None:
        m = trainer.callback_metrics
        self.logged.append({k: float(m[k]) for k in ("train/penalty", "train/loss", "train/objective")})

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:  # the module logs its epoch figures after the callbacks' epoch-end hooks
            self._record(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._record(trainer)


@pytest.mark.parametrize("optimizer", ["sgd", "prox_sgd"])
def test_penalty_value_is_read_only_on_logging_steps_and_each_epochs_last_batch(optimizer: str) -> None:
    """log_every_n_steps=2, 5 batches (4 × 36 rows + 16): the value is computed on global steps 1, 3, 5, 7, ... and on
    each epoch's last batch, nowhere else (no reduction, no host sync on the others); ``train/penalty`` is the
    sample-weighted mean of λ·R (warm-up included) over exactly those batches, and the objective adds it to the data
    loss's mean over every batch. A proximal optimizer reads R inside the step before a logging step."""
    from lightreg.optim import ProxSGD

    strength, warmup, every = 0.01, 2, 2
    dm = _data(batch_size=36)  # 160 training rows
    batches = len(dm.train_dataloader())
    assert batches == 5
    factory = {"sgd": torch.optim.SGD, "prox_sgd": ProxSGD}[optimizer]
    model = _mlp(dm, functools.partial(factory, lr=0.1, momentum=0.9))
    reg = RegularizationCallback(L1(), strength, warmup_epochs=warmup)
    by_hand = _PenaltyByHand(strength, warmup)
    trainer = quiet_trainer([by_hand, reg], max_epochs=3, log_every_n_steps=every, limit_val_batches=0)
    reads, original = [], reg._penalty_value
    reg._penalty_value = lambda: (reads.append(trainer.global_step), original())[1]  # the only reduction of R
    trainer.fit(model, datamodule=dm)

    sampled = [r for r in by_hand.rows if (r["step"] + 1) % every == 0 or r["batch"] == batches - 1]
    assert [r["step"] for r in sampled] == [1, 3, 4, 5, 7, 9, 11, 13, 14]
    assert reads == [r["step"] for r in sampled]  # _penalty_value ran on these steps only
    for epoch, logged in enumerate(by_hand.logged):
        rows = [r for r in sampled if r["epoch"] == epoch]
        expected = sum(r["n"] * r["value"] for r in rows) / sum(r["n"] for r in rows)
        assert logged["train/penalty"] == pytest.approx(expected, rel=1e-5, abs=1e-9), epoch
        assert logged["train/objective"] == pytest.approx(logged["train/loss"] + expected, rel=1e-5)
        if epoch > 0:  # a mean over every batch would differ: the test can tell them apart
            every_batch = [r for r in by_hand.rows if r["epoch"] == epoch]
            mean = sum(r["n"] * r["value"] for r in every_batch) / sum(r["n"] for r in every_batch)
            assert abs(mean - expected) > 1e-5 * expected
    assert by_hand.logged[0]["train/penalty"] == 0  # λ = 0 in the warm-up's first epoch
    if optimizer == "prox_sgd":  # read in the pass of the step before a logging step, not across an epoch's end
        read = [r["step"] for r in by_hand.rows if r["fused_read"]]
        assert read == [1, 3, 7, 9, 11, 13]  # 5 starts epoch 1; 4 and 14 are last batches only: computed apart


def test_collapse_watch_averages_the_penalty_over_the_batches_that_read_it() -> None:
    """A batch without a value (``None``) counts for the data loss only: 3 batches of loss 0.1, one penalty 2.5 on
    4 rows: 2.5 > 10 × 0.1 warns (averaged over all 12 rows it would be 0.83, no warning)."""
    watch = CollapseWatch("l1")
    watch.start_fit()
    watch.start_epoch(torch.device("cpu"))
    for penalty in (None, None, torch.tensor(2.5)):
        watch.add_batch(penalty, torch.tensor(0.1), 4)
    with pytest.warns(LightregWarning, match=r"the penalty \(2.5\) is more than 10x the data loss \(0.1;"):
        watch.check_dwarf(epoch=0, strength=1e-3)
    watch.start_epoch(torch.device("cpu"))
    for _ in range(3):
        watch.add_batch(None, torch.tensor(0.1), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LightregWarning)
        watch.check_dwarf(epoch=1, strength=1e-3)  # no batch read a value: nothing to compare, nothing divided by 0
