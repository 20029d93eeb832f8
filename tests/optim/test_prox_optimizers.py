"""Proximal optimizers (lightreg.optim): the fused step equals torch's optimizer followed by the callback's pass."""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from typing_extensions import override

from lightreg.callbacks import RegularizationCallback
from lightreg.data import SyntheticDataModule
from lightreg.errors import UserError
from lightreg.models import MLP
from lightreg.optim import (
    FusedPenalty,
    ProxAdagrad,
    ProxAdam,
    ProxAdamW,
    ProxRMSprop,
    ProxSGD,
    proximal,
    should_compile,
)
from lightreg.penalties import make_penalty
from lightreg.solvers import kernels, prox_step

from helpers import quiet_trainer, read_metrics, run_cli, seeded_mlp

OPTIMIZERS = {
    "sgd": (torch.optim.SGD, ProxSGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}),
    "sgd_nesterov": (torch.optim.SGD, ProxSGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "dampening": 0.0}),
    "sgd_plain": (torch.optim.SGD, ProxSGD, {"lr": 0.1}),
    "adam": (torch.optim.Adam, ProxAdam, {"lr": 0.01, "weight_decay": 1e-3}),
    "adam_amsgrad": (torch.optim.Adam, ProxAdam, {"lr": 0.01, "amsgrad": True}),
    "adamw": (torch.optim.AdamW, ProxAdamW, {"lr": 0.01, "weight_decay": 0.05}),
    "adagrad": (torch.optim.Adagrad, ProxAdagrad, {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 1e-3}),
    "rmsprop": (torch.optim.RMSprop, ProxRMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True}),
    "rmsprop_plain": (torch.optim.RMSprop, ProxRMSprop, {"lr": 0.01, "weight_decay": 1e-3}),
}
PENALTIES = {
    "l1": make_penalty("l1"),
    "l2": make_penalty("l2"),
    "elastic_net": make_penalty("elastic_net", l1_ratio=0.6),
    "group_lasso": make_penalty("group_lasso", groups="rows"),
}
LAM = 0.05
WARMUP = 2
STEPS = 5


def _model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _grads(model: torch.nn.Module, k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * (k + 1)
        if p.ndim == 2:
            p.grad[0] = 0.0  # a row whose gradient vanishes: the metric step meets its floor


def _callback_pass(opt, penalty, params, mode: str, when: str) -> None:
    """What RegularizationCallback does around torch's step (grad before, prox after)."""
    if mode == "grad" and when == "before":
        kernels.add_grad_(penalty, params, [p.grad for p in params], LAM, "chunked")
    if mode == "prox" and when == "after":
        group = opt.param_groups[0]
        for p in params:
            step = prox_step(opt, group, p, True, floor=LAM, scale=LAM, warmup=WARMUP)
            if isinstance(step, torch.Tensor):
                penalty.prox_(p.data, step)
            else:
                kernels.prox_(penalty, [p.data], step, "chunked")


def _run(name: str, penalty_name: str, mode: str, scheduler: bool, fused: bool, compile: str = "off"):
    torch_cls, prox_cls, kw = OPTIMIZERS[name]
    model = _model()
    penalty = PENALTIES[penalty_name]
    params = [p for p in model.parameters() if p.ndim >= 2]
    opt = prox_cls(model.parameters(), compile=compile, **kw) if fused else torch_cls(model.parameters(), **kw)
    if fused:
        opt.attach(FusedPenalty(penalty, LAM, mode, params, warmup=WARMUP))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if scheduler else None
    for k in range(STEPS):
        _grads(model, k)
        with torch.no_grad():
            if not fused:
                _callback_pass(opt, penalty, params, mode, "before")
            opt.step()
            if not fused:
                _callback_pass(opt, penalty, params, mode, "after")
        if sched is not None:
            sched.step()
    return model, opt


@pytest.mark.parametrize("scheduler", [False, True])
@pytest.mark.parametrize("mode", ["grad", "prox"])
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_step_equals_torch_step_plus_callback_pass(name: str, penalty: str, mode: str, scheduler: bool) -> None:
    reference, _ = _run(name, penalty, mode, scheduler, fused=False)
    fused, _ = _run(name, penalty, mode, scheduler, fused=True)
    for want, got in zip(reference.parameters(), fused.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    if mode == "prox" and penalty in ("l1", "elastic_net", "group_lasso"):
        for want, got in zip(reference.parameters(), fused.parameters()):
            assert torch.equal(got == 0, want == 0)  # the same exact zeros


@pytest.mark.parametrize("mode", ["grad", "prox"])
@pytest.mark.parametrize("penalty", ["l1", "elastic_net", "group_lasso"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_chunked_eager_step_equals_the_whole_tensor_step(name: str, penalty: str, mode: str, monkeypatch) -> None:
    """Scratch buffers of 7 entries: the 5×6 and 3×5 weights are updated in chunks of 7 (the last one shorter), with
    the same weights, state and read value as the whole-tensor step (the adaptive metric included); a group penalty's
    prox needs its whole per-entry step, so its tensors are updated whole."""
    whole, whole_opt = _run(name, penalty, mode, True, fused=True)
    monkeypatch.setattr(proximal, "SCRATCH_MIN", 7)
    monkeypatch.setattr(proximal, "SCRATCH_FRACTION", 0.0)
    chunked, chunked_opt = _run(name, penalty, mode, True, fused=True)
    for want, got in zip(whole.parameters(), chunked.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    for want, got in zip(whole_opt.state.values(), chunked_opt.state.values()):
        for key, value in want.items():
            torch.testing.assert_close(got[key], value, atol=1e-6, rtol=1e-6, msg=key)
    torch.testing.assert_close(chunked_opt.penalties[0].value, whole_opt.penalties[0].value, atol=1e-6, rtol=1e-6)
    (scratch,) = chunked_opt._scratch.values()
    whole_tensor = penalty == "group_lasso" and mode == "prox"
    assert scratch.numel() == (2 * 30 if whole_tensor else 2 * 7)


@pytest.mark.parametrize("compile", ["off", pytest.param("on", marks=pytest.mark.slow)])
@pytest.mark.parametrize("mode", ["grad", "prox"])
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
def test_the_step_reads_the_penalty_value_of_the_new_weights(penalty: str, mode: str, compile: str) -> None:
    """``FusedPenalty.value`` (what the callback logs) is R at the weights the step left, read in the step's pass."""
    model, opt = _run("adam", penalty, mode, False, fused=True, compile=compile)
    params = [p for p in model.parameters() if p.ndim >= 2]
    (fused,) = opt.penalties
    torch.testing.assert_close(fused.value, kernels.value(PENALTIES[penalty], params), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_without_a_penalty_the_step_is_torchs(name: str) -> None:
    torch_cls, prox_cls, kw = OPTIMIZERS[name]
    models = [_model(), _model()]
    opts = [torch_cls(models[0].parameters(), **kw), prox_cls(models[1].parameters(), **kw)]
    for k in range(STEPS):
        for model, opt in zip(models, opts):
            _grads(model, k)
            opt.step()
    for want, got in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "rmsprop"])
def test_state_dict_round_trip_continues_the_same_run(name: str) -> None:
    _, prox_cls, kw = OPTIMIZERS[name]
    model, opt = _run(name, "l1", "prox", False, fused=True)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    state = copy.deepcopy(opt.state_dict())  # torch's load shares the tensors it is given
    clone = _model()
    clone.load_state_dict(saved)
    params = [p for p in clone.parameters() if p.ndim >= 2]
    opt2 = prox_cls(clone.parameters(), **kw)
    opt2.load_state_dict(state)
    opt2.attach(FusedPenalty(PENALTIES["l1"], LAM, "prox", params, warmup=WARMUP))
    for m, o in ((model, opt), (clone, opt2)):
        _grads(m, 9)
        o.step()
    for want, got in zip(model.parameters(), clone.parameters()):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
    # the state is torch's own: torch's optimizer loads it
    torch_cls = OPTIMIZERS[name][0]
    torch_cls(_model().parameters(), **kw).load_state_dict(state)


@pytest.mark.slow  # compiles the step (a few seconds)
def test_compiled_step_equals_eager_step() -> None:
    pytest.importorskip("torch._inductor")
    eager, _ = _run("adam", "l1", "prox", True, fused=True)
    compiled, _ = _run("adam", "l1", "prox", True, fused=True, compile="on")
    for want, got in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_compile_auto_rule() -> None:
    """``auto`` compiles from AUTO_MIN_WORK entry-steps on: a larger model pays the compile back in fewer steps."""
    assert not should_compile("auto", 2_700_000, 1_000)
    assert should_compile("auto", 2_700_000, 5_000)
    assert not should_compile("auto", 1_000_000, 5_000) and should_compile("auto", 1_000_000, 12_000)
    assert should_compile("auto", 21_000_000, 600) and not should_compile("auto", 21_000_000, 500)
    assert should_compile("auto", 2_700_000, math.inf)
    assert not should_compile("auto", 10_000, 10**9)
    assert should_compile("on", 10, 1) and not should_compile("off", 10**9, math.inf)


@pytest.mark.parametrize("compile", ["off", pytest.param("on", marks=pytest.mark.slow)])
@pytest.mark.parametrize("mode", ["grad", "prox"])
def test_read_value_off_skips_the_value_and_changes_no_step(mode: str, compile: str) -> None:
    """``read_value=False`` (a step whose value nobody logs) leaves ``value`` None; the weights are the same."""
    reading, _ = _run("adam", "elastic_net", mode, False, fused=True, compile=compile)
    model = _model()
    params = [p for p in model.parameters() if p.ndim >= 2]
    opt = ProxAdam(model.parameters(), compile=compile, **OPTIMIZERS["adam"][2])
    fused = FusedPenalty(PENALTIES["elastic_net"], LAM, mode, params, warmup=WARMUP, read_value=False)
    opt.attach(fused)
    for k in range(STEPS):
        _grads(model, k)
        opt.step()
        assert fused.value is None
    for want, got in zip(reading.parameters(), model.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    fused.read_value = True
    _grads(model, STEPS)
    opt.step()
    torch.testing.assert_close(fused.value, kernels.value(PENALTIES["elastic_net"], params), atol=1e-6, rtol=1e-6)


def test_bad_options_are_refused_with_the_value() -> None:
    params = list(_model().parameters())
    with pytest.raises(UserError, match=r"compile must be one of .* got 'sometimes'"):
        ProxSGD(params, lr=0.1, compile="sometimes")
    with pytest.raises(UserError, match="maximize=True"):
        ProxAdam(params, lr=0.1, maximize=True)
    opt = ProxSGD(params, lr=0.1)
    opt.attach(FusedPenalty(PENALTIES["l1"], LAM, "prox", params[:1]))
    assert not opt.can_fuse(PENALTIES["l2"], params[:1]) and opt.can_fuse(PENALTIES["l2"], params[1:])
    with pytest.raises(UserError, match="overlaps"):
        opt.attach(FusedPenalty(PENALTIES["l2"], LAM, "grad", params[:1]))


class _StepScheduled(MLP):
    """An MLP whose learning rate shrinks by 0.9 every optimizer step (a step-interval scheduler)."""

    @override
    def configure_optimizers(self):
        opt = self.optimizer_factory(self.parameters())
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _lightning_fit(optimizer, mode: str) -> MLP:
    dm = SyntheticDataModule(n_samples=200, batch_size=25, seed=0)
    dm.setup("fit")
    model = seeded_mlp([8, 6], optimizer, data=dm, cls=_StepScheduled)
    callback = RegularizationCallback(make_penalty("elastic_net", l1_ratio=0.7), 0.5, mode=mode, adaptive_warmup=1)
    trainer = quiet_trainer([callback], max_epochs=2, accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    return model


@pytest.mark.filterwarnings("ignore:.*more than 10x the data loss")  # a λ large enough for zeros in 8 steps
@pytest.mark.parametrize("mode", ["grad", "prox"])
@pytest.mark.parametrize(("torch_cls", "prox_cls"), [(torch.optim.SGD, ProxSGD), (torch.optim.Adam, ProxAdam)])
def test_lightning_fit_with_accumulation_and_a_step_scheduler(torch_cls, prox_cls, mode: str) -> None:
    """In a Trainer (2 micro-batches per step, the rate moving every step) the fused optimizer ends where torch's
    optimizer plus the callback's own pass ends."""
    kw = {"lr": 0.05, "momentum": 0.9} if torch_cls is torch.optim.SGD else {"lr": 0.01}
    separate = _lightning_fit(functools.partial(torch_cls, **kw), mode)
    fused = _lightning_fit(functools.partial(prox_cls, **kw), mode)
    for (name, want), got in zip(separate.named_parameters(), fused.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6, msg=name)
    if mode == "prox":
        assert (fused.net.fc1.weight == 0).any()  # exact zeros out of the fused step


def _metrics(run_dir, *overrides: str) -> dict:
    run_cli(run_dir, *overrides)
    return read_metrics(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "mode"), [("adam", "prox"), ("sgd", "grad")])
def test_cli_fused_run_equals_the_separate_pass(tmp_path, optimizer: str, mode: str) -> None:
    """``optimizer=prox_<name>`` hands the penalty to the optimizer: the same zeros and objective as the callback's own
    pass (LogisticRegression on breast_cancer)."""
    common = ("data=breast_cancer", "+penalty=l1", "lambda=0.01", f"penalty.mode={mode}", "trainer.max_epochs=3")
    separate = _metrics(tmp_path / "separate", *common, f"optimizer={optimizer}")
    fused = _metrics(tmp_path / "fused", *common, f"optimizer=prox_{optimizer}")
    for key in ("train/objective", "train/penalty", "val/loss", "sparsity/l1"):
        assert fused[key] == pytest.approx(separate[key], rel=1e-6, abs=1e-6), key
    if mode == "prox":
        assert fused["sparsity/l1"] > 0  # exact zeros came out of the fused step


@pytest.mark.slow
def test_a_changing_learning_rate_or_strength_does_not_recompile() -> None:
    """Learning rate, step count and λ are tensor inputs of the compiled step: a schedule never traces again."""
    from torch._dynamo.utils import counters

    model = _model()
    opt = ProxAdam(model.parameters(), compile="on", lr=0.01)
    fused = FusedPenalty(PENALTIES["l1"], LAM, "prox", [p for p in model.parameters() if p.ndim >= 2])
    opt.attach(fused)
    for k in range(2):
        _grads(model, k)
        opt.step()
    traced = dict(counters["frames"])
    for k in range(3):
        opt.param_groups[0]["lr"] *= 0.5
        fused.strength *= 2
        _grads(model, k)
        opt.step()
    assert dict(counters["frames"]) == traced
