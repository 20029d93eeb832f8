"""The regularization callback: a penalty λ·R applied as gradients or as proximal steps."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from torch import Tensor, nn
from torch.optim import Optimizer
from typing_extensions import override

from lightreg.callbacks.collapse import (
    CollapseWatch,
    is_network,
    linear_all_zero_message,
    network_all_zero_message,
)
from lightreg.callbacks.exact_finish import ExactFinish, finish_epoch, print_refit_line, restart_best_checkpoints
from lightreg.callbacks.loss_check import EpochObjective, check_hand_written_penalties
from lightreg.callbacks.step_hooks import StepHookCallback
from lightreg.callbacks.support import SupportMask
from lightreg.errors import UserError, warn
from lightreg.models.logging_steps import logging_step
from lightreg.optim import FusedPenalty, ProximalOptimizer
from lightreg.penalties import Penalty, PenaltyTerm, select_parameters
from lightreg.penalties.coupled import CoupledGroupLasso
from lightreg.penalties.selection import CONV_GROUPS, conv_weights
from lightreg.solvers import ProximalFinish, full_batch, is_adaptive, kernels, prox_step, warmup_steps

MODES = ("prox", "grad", "exact")
DECAY_PENALTIES = ("l2", "elastic_net")
FINGERPRINT_DEFAULTS = {"refit_epochs": 0}
"""Fingerprint entries of checkpoints written before the entry existed."""
SHARDING_STRATEGIES = (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)
"""Strategies that shard parameters: a group penalty would only see pieces of its groups."""


def samples_value(trainer: L.Trainer) -> bool:
    """Whether the coming training batch reads the penalty's value λ·R: the batches whose ``on_step`` figures Lightning
    logs (:func:`~lightreg.models.logging_steps.logging_step`, with or without a logger, so the epoch figures do not
    depend on one), the epoch's last batch (no epoch goes without a value) and the fit's last step (``max_steps``)."""
    return trainer.is_last_batch or 0 < trainer.max_steps <= trainer.global_step + 1 or logging_step(trainer)


class RegularizationCallback(StepHookCallback):
    """Add ``strength · R(w)`` to the training objective of the selected parameters.

    ``mode="prox"`` (default for sparse penalties: L1, elastic net, group lasso): after every real
    optimizer step, ``w ← prox_{λ·η·R}(w)`` with the step size η the optimizer just used (an
    ``optimizer.register_step_post_hook``: it fires only when a step happened, so never on gradient-
    accumulation micro-batches or on steps the AMP GradScaler skipped, and before any LR scheduler moves
    the rate). η is ``lr`` for SGD (momentum included) and the optimizer's own per-entry metric
    ``lr/(√v̂+ε)`` for Adam, AdamW, Adagrad and RMSprop, floored so the threshold never exceeds ``lr``
    (:mod:`lightreg.solvers.prox_steps`). Soft-thresholding gives exact zeros.

    ``mode="grad"`` (default for L2): ``∇ ← ∇ + λ∇R`` in ``on_before_optimizer_step``, i.e. once per real
    step, after the DDP all-reduce and AMP unscaling and before clipping: the same update as putting λR in
    the loss (for L1 the minimum-norm subgradient ``sign(w)``, which never gives exact zeros).

    With a proximal optimizer (:mod:`lightreg.optim`, ``optimizer=prox_<name>``) the callback hands its penalty to the
    optimizer, which applies the same gradient or prox inside its own per-parameter update instead of a second pass.

    Logged: ``train/penalty`` and ``train/objective`` (data loss + all penalties) per step and per epoch
    through :class:`~lightreg.models.LightregModule`; in any other LightningModule the callbacks log
    ``train/penalty/<name>`` and, per epoch (sample-weighted means), ``train/penalty`` and ``train/objective`` (the
    loss ``training_step`` returned + all penalties) themselves. The penalty's value λ·R (a reduction over every
    penalized weight) is read only on the batches of :func:`samples_value` (the steps that log, and each epoch's last
    batch): ``train/penalty`` is the sample-weighted mean of λ·R over those batches, ``train/objective`` the epoch's
    mean data loss (every batch) plus that; the other steps read nothing and never wait for the device. Also
    ``sparsity/<name>``, the fraction of exactly-zero penalized entries, per epoch. At the first step the loss's autograd graph is read for a hand-written penalty
    beside the callback's (:mod:`lightreg.callbacks.loss_check`): one subtracted, or one on weights the callback
    penalizes already, is warned about by name. Only weights with ``ndim >= 2`` are penalized unless ``include`` says
    otherwise; the validation loss never contains the penalty.

    Args:
        penalty: the unit-strength regularizer R (:mod:`lightreg.penalties`).
        strength: λ >= 0 (finite).
        mode: ``prox`` | ``grad`` | ``exact``; ``None`` picks ``prox`` for sparse penalties, ``grad`` otherwise.
            ``exact`` = ``prox``, then a full-batch proximal finish after the last training batch that makes the
            zero pattern the one of the regularized optimum (:mod:`lightreg.solvers.finish`).
        include: glob patterns over ``named_parameters()`` names (default: every weight with ndim >= 2).
        exclude: glob patterns removed from the selection.
        warmup_epochs: ramp λ linearly from 0 at epoch 0 to its full value at epoch ``warmup_epochs``.
        refit_epochs: the last ``refit_epochs`` epochs refit the weights that are non-zero after epoch
            ``max_epochs - refit_epochs`` without this penalty (λ = 0; the zeroed ones stay exactly zero): the relaxed
            lasso, which keeps the selected support but undoes the shrinkage of the kept weights (for a network: the
            fine-tune after a structured penalty, before compaction). ``mode: exact`` fixes that support by its
            full-batch finish, ``mode: prox`` takes the zeros of the last proximal step; monitored checkpoints start
            over at the refit, so ``best.ckpt`` has the fixed support. Other penalties keep acting.
        adaptive: use the optimizer's per-entry metric for the prox of adaptive optimizers (else plain lr·λ).
        adaptive_warmup: optimizer steps during which that metric step is bounded by the plain one (η ≤ lr);
            ``None`` = the first half of the run (:func:`lightreg.solvers.warmup_steps`), which depends on
            ``max_epochs``: pin it to continue a run bit-for-bit under a larger ``max_epochs``.
        name: label in logs (``train/penalty/<name>``, ``sparsity/<name>``); defaults to ``penalty.name``.
        finish: options of :class:`~lightreg.solvers.ProximalFinish` (``mode: exact`` only).
        kernel_form: how the gradient and prox passes run (:mod:`lightreg.solvers.kernels`): ``foreach``,
            ``chunked`` or ``plain``; ``None`` = :data:`lightreg.solvers.kernels.DEFAULT_FORM` (``chunked``).
        allow_changes: resume from a checkpoint written under another penalty, strength or mode (the CLI's
            ``resume.allow_changes=true``); ``False`` refuses it with one line naming both.
    """

    def __init__(
        self,
        penalty: Penalty,
        strength: float,
        mode: str | None = None,
        include: str | list[str] | None = None,
        exclude: str | list[str] | None = None,
        warmup_epochs: int = 0,
        adaptive: bool = True,
        adaptive_warmup: int | None = None,
        name: str | None = None,
        finish: dict[str, Any] | None = None,
        kernel_form: str | None = None,
        refit_epochs: int = 0,
        allow_changes: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(penalty, (Penalty, CoupledGroupLasso)):
            raise UserError(f"penalty must be a lightreg.penalties.Penalty, got {penalty!r}")
        if (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not math.isfinite(strength)
            or strength < 0
        ):
            raise UserError(
                f"strength (lambda) must be a finite number >= 0, got {strength!r}: "
                "a penalty is added to the objective, never subtracted"
            )
        mode = mode or ("prox" if penalty.sparse else "grad")
        if mode not in MODES:
            raise UserError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise UserError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
        if adaptive_warmup is not None and (
            isinstance(adaptive_warmup, bool) or not isinstance(adaptive_warmup, int) or adaptive_warmup < 0
        ):
            raise UserError(
                f"adaptive_warmup must be an integer >= 0 (optimizer steps) or null (half the run), got {adaptive_warmup!r}"
            )
        if isinstance(refit_epochs, bool) or not isinstance(refit_epochs, int) or refit_epochs < 0:
            raise UserError(f"refit_epochs must be an integer >= 0, got {refit_epochs!r}")
        if refit_epochs and mode not in ("prox", "exact"):
            raise UserError(
                f"refit_epochs={refit_epochs} refits the support that proximal steps select, but mode={mode!r} gives no "
                "exact zeros: set mode='prox' or 'exact', or refit_epochs=0 (penalty.refit_epochs=0)"
            )
        self.refit_epochs = refit_epochs
        self.allow_changes = bool(allow_changes)
        self.adaptive_warmup = adaptive_warmup
        self.penalty = penalty
        self.strength = float(strength)
        self.mode = mode
        self.include = [include] if isinstance(include, str) else (list(include) if include else None)
        self.exclude = [exclude] if isinstance(exclude, str) else (list(exclude) if exclude else None)
        if kernel_form is not None and kernel_form not in kernels.FORMS:
            raise UserError(
                f"kernel_form must be one of {kernels.FORMS} or null (kernels.DEFAULT_FORM), got {kernel_form!r}"
            )
        self.kernel_form = kernel_form
        self.warmup_epochs = warmup_epochs
        self.adaptive = adaptive
        self.name = name or penalty.name
        if finish is not None and mode != "exact":
            raise UserError(
                f"finish options apply to mode='exact' only, got mode={mode!r} with finish={dict(finish)!r}"
            )
        self.finish = ProximalFinish(**(finish or {})) if mode == "exact" else None
        self.params: dict[str, nn.Parameter] = {}
        self._param_ids: set[int] = set()
        self.collapse = CollapseWatch(self.name)
        self.objective = EpochObjective()
        self._prox_warmup = 0  # optimizer steps during which an adaptive prox step is bounded by lr (on_fit_start)
        self._finisher: ExactFinish | None = None  # mode=exact: the Trainer's finish (setup)
        self._refit_start: int | None = None  # first refit epoch (on_fit_start)
        self._loss_checked = False  # the first step's loss was read for hand-written penalties (on_before_backward)
        self._fused: dict[int, tuple[ProximalOptimizer, FusedPenalty]] = {}  # id(optimizer) -> the penalty it applies
        self._reads_in_pass: set[int] = set()  # id(optimizer): eager proximal optimizers, which read R in their pass
        self._last_value: Tensor | None = None  # λ·R at this batch's start; None on a batch that reads no value
        self.support: SupportMask | None = None
        """During the refit: 1 where the finish kept an entry, 0 where it is held at zero."""
        if self.strength == 0:
            warn(
                f"{self.name}: lambda is 0, so NO regularization is happening. Set it, e.g. `lambda=1e-3` on the "
                "command line or strength=1e-3 here."
            )

    @property
    @override
    def state_key(self) -> str:
        """Keyed by ``name`` only, so a resumed run finds the state of the same-named penalty even when the penalty,
        its strength or mode changed, and :meth:`load_state_dict` can compare them."""
        return self._generate_state_key(name=self.name)

    @property
    def finish_report(self) -> dict[str, float] | None:
        """What the full-batch finish of this fit did (``mode: exact``), on the penalty whose options it used."""
        finisher = self._finisher
        return finisher.report if finisher is not None and finisher.owner is self else None

    @classmethod
    def all_in(cls, trainer: L.Trainer) -> list[RegularizationCallback]:
        """The regularization callbacks of ``trainer``, in order: how every other piece finds them."""
        return [cb for cb in trainer.callbacks if isinstance(cb, cls)]

    def as_term(self, epoch: int | None = None) -> PenaltyTerm:
        """This callback's penalty term at ``epoch`` (default: full strength), over the parameters chosen at setup."""
        strength = self.strength if epoch is None else self.current_strength(epoch)
        return PenaltyTerm(self.penalty, strength, dict(self.params))

    def current_strength(self, epoch: int) -> float:
        """λ at ``epoch``: ``strength · min(1, epoch / warmup_epochs)`` (plain ``strength`` without warm-up); 0 in
        the refit epochs."""
        if self.refitting(epoch):
            return 0.0
        if self.warmup_epochs == 0:
            return self.strength
        return self.strength * min(1.0, epoch / self.warmup_epochs)

    def refitting(self, epoch: int) -> bool:
        """Whether ``epoch`` is one of the last ``refit_epochs`` of the current fit."""
        return self._refit_start is not None and epoch >= self._refit_start

    # -- set-up and guard rails ---------------------------------------------------------------------------
    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        selected = select_parameters(pl_module, self.include, self.exclude)
        groups = getattr(self.penalty, "groups", None)
        if groups in CONV_GROUPS:  # filters / channels: the conv weights
            selected = conv_weights(selected, groups, self.include is not None, type(pl_module).__name__)
        self.params = dict(selected)
        self._param_ids = {id(p) for p in self.params.values()}
        self._finisher = ExactFinish.ensure_in(trainer) if self.mode == "exact" else None
        if not self.penalty.elementwise and isinstance(trainer.strategy, SHARDING_STRATEGIES):
            raise UserError(
                f"{self.penalty!r} needs whole rows/columns but {type(trainer.strategy).__name__} shards parameters; "
                "use an elementwise penalty (l1, l2, elastic_net) or trainer.strategy=ddp"
            )

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.collapse.start_fit()
        self._loss_checked = False
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.support = None
        if self.refit_epochs and (trainer.max_epochs is None or trainer.max_epochs <= self.refit_epochs):
            raise UserError(
                f"{self.name}: refit_epochs={self.refit_epochs} leaves no epoch to select the support in under "
                f"trainer.max_epochs={trainer.max_epochs}: raise trainer.max_epochs above it or lower refit_epochs"
            )
        epoch = finish_epoch(trainer.max_epochs, self.refit_epochs) if self.refit_epochs else None
        self._refit_start = epoch + 1 if epoch is not None else None
        for optimizer in trainer.optimizers:
            fused = any(group.get("fused") for group in optimizer.param_groups)
            if fused and scaler is not None:
                raise UserError(
                    f"{type(optimizer).__name__}(fused=True) under a GradScaler ({trainer.precision_plugin.precision}) "
                    "still holds scaled gradients when callbacks see them; set fused=False or use bf16-mixed"
                )
            self._warn_double_decay(optimizer)
            self._fuse(trainer, optimizer)
            if self.mode in ("prox", "exact"):
                if self.adaptive and not is_adaptive(optimizer) and not isinstance(optimizer, torch.optim.SGD):
                    warn(f"{self.name}: no per-entry metric known for {type(optimizer).__name__}; the prox uses lr·λ")
                self._prox_warmup = (
                    warmup_steps(trainer.estimated_stepping_batches)
                    if self.adaptive_warmup is None
                    else self.adaptive_warmup
                )
                self.hook_optimizer(optimizer, self._after_optimizer_step)
        for _, fused in self._fused.values():
            fused.warmup = self._prox_warmup

    def _fuse(self, trainer: L.Trainer, optimizer: Optimizer) -> None:
        """Hand the penalty to a proximal optimizer (:mod:`lightreg.optim`), which applies it inside its own step."""
        params = [p for g in optimizer.param_groups for p in g["params"] if id(p) in self._param_ids]
        if not isinstance(optimizer, ProximalOptimizer) or not optimizer.can_fuse(self.penalty, params):
            return
        mode = "grad" if self.mode == "grad" else "prox"
        fused = FusedPenalty(self.penalty, self.strength, mode, params, self.adaptive, read_value=False)
        optimizer.attach(fused)
        optimizer.plan(trainer.estimated_stepping_batches)
        self._fused[id(optimizer)] = (optimizer, fused)
        if not optimizer.compiles():  # a compiled step would compile a second graph (the one that reads) mid-fit
            self._reads_in_pass.add(id(optimizer))

    def _unfuse(self) -> None:
        for optimizer, fused in self._fused.values():
            optimizer.detach(fused)
        self._fused.clear()
        self._reads_in_pass.clear()

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_end(trainer, pl_module)
        self._unfuse()

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        self._unfuse()

    def _warn_double_decay(self, optimizer: Optimizer) -> None:
        if self.penalty.name not in DECAY_PENALTIES:
            return
        for group in optimizer.param_groups:
            if group.get("weight_decay", 0) > 0 and any(id(p) in self._param_ids for p in group["params"]):
                warn(
                    f"{self.name}: {type(optimizer).__name__} has weight_decay={group['weight_decay']} on weights this "
                    f"{self.penalty!r} penalty already shrinks: they are regularized twice. Set optimizer.weight_decay=0."
                )
                return

    # -- the penalty itself -----------------------------------------------------------------------------------
    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not samples_value(trainer):  # nothing to reduce, nothing to report: no device work, no host sync
            self._last_value = None
            return
        value = self._penalty_value() * self.current_strength(trainer.current_epoch)  # a device tensor, no host sync
        if hasattr(pl_module, "report_penalty"):
            pl_module.report_penalty(self.name, value)
        else:
            pl_module.log(f"train/penalty/{self.name}", value, on_step=True, on_epoch=True, sync_dist=True)
        self._last_value = value

    def _penalty_value(self) -> Tensor:
        """R over the selected parameters: a proximal optimizer's figure read in its last step's own pass where it has
        one (:attr:`lightreg.optim.FusedPenalty.value`, asked for by :meth:`on_before_optimizer_step`), a
        multi-tensor norm over the rest."""
        known = [fused for _, fused in self._fused.values() if fused.value is not None]
        covered = {id(p) for fused in known for p in fused.params}
        rest = [p for p in self.params.values() if id(p) not in covered]
        parts = [fused.value for fused in known] + ([kernels.value(self.penalty, rest)] if rest else [])
        return torch.stack(parts).sum() if parts else torch.zeros(())

    def _kernel_form(self) -> str:
        return self.kernel_form or kernels.DEFAULT_FORM

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.support is not None:
            self.support.mask_grads_(self.params)
        if id(optimizer) in self._fused:  # an eager step reads R in its pass when the next batch reads the value
            self._fused[id(optimizer)][1].read_value = id(optimizer) in self._reads_in_pass and logging_step(
                trainer, ahead=1
            )
            return
        if self.mode != "grad":
            return
        lam = self.current_strength(trainer.current_epoch)
        if lam == 0:
            return
        pairs = [
            (p, p.grad)
            for g in optimizer.param_groups
            for p in g["params"]
            if id(p) in self._param_ids and p.grad is not None
        ]
        if pairs:
            params, grads = zip(*pairs)
            kernels.add_grad_(self.penalty, [p.detach() for p in params], grads, lam, self._kernel_form())

    @torch.no_grad()
    def _after_optimizer_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self.support is not None:  # momentum and weight decay move masked entries too
            self.support.apply_(self.params)
        lam = self._step_strength
        if lam == 0 or id(optimizer) in self._fused:
            return
        for group in optimizer.param_groups:
            scalar: dict[float, list[Tensor]] = {}  # one batched pass per scalar threshold (SGD: one per group)
            for p in group["params"]:
                if id(p) in self._param_ids:
                    step = prox_step(optimizer, group, p, self.adaptive, floor=lam, scale=lam, warmup=self._prox_warmup)
                    if isinstance(step, Tensor):
                        self.penalty.prox_(p, step)
                    else:
                        scalar.setdefault(step, []).append(p)
            for step, params in scalar.items():
                kernels.prox_(self.penalty, params, step, self._kernel_form())

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.refitting(trainer.current_epoch) and self.support is None:  # mode=prox, or resumed inside the refit
            self.freeze_support()
            if self.mode == "prox" and trainer.current_epoch == self._refit_start:
                self._announce_refit(trainer, pl_module)
        self._step_strength = self.current_strength(trainer.current_epoch)
        for _, fused in self._fused.values():
            fused.strength = self._step_strength
            fused.value = None  # read before what ran between the epochs (a full-batch finish) moved the weights
        self.collapse.start_epoch(pl_module.device)
        self.objective.start_epoch(pl_module.device)

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if isinstance(outputs, dict) and "data_loss" in outputs:
            n = len(batch[0]) if isinstance(batch, (tuple, list)) else 1
            self.collapse.add_batch(self._last_value, outputs["data_loss"], n)
        if self._logs_objective(trainer, pl_module):
            values = [cb._last_value for cb in RegularizationCallback.all_in(trainer)]
            self.objective.add_batch(outputs, batch, None if any(v is None for v in values) else values)

    def _logs_objective(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        """Whether this callback logs ``train/penalty`` and ``train/objective``: the first penalty callback in a
        LightningModule of the user's own (a :class:`~lightreg.models.LightregModule` logs them itself)."""
        return not hasattr(pl_module, "report_penalty") and RegularizationCallback.all_in(trainer)[0] is self

    @override
    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        if self._loss_checked:
            return
        self._loss_checked = True
        regs = RegularizationCallback.all_in(trainer)
        if regs[0] is self:
            check_hand_written_penalties(loss, pl_module, {cb.name: cb.params for cb in regs})

    def emptied_by_finish(self, trainer: L.Trainer) -> bool:
        """Whether the full-batch finish zeroed every penalized weight that the minibatch steps had kept."""
        finisher = ExactFinish.of(trainer)
        return finisher is not None and any(cb is self for cb in finisher.emptied)

    def freeze_support(self) -> None:
        """Hold the entries that are zero now at exactly zero from here on (the refit)."""
        self.support = SupportMask(self.params)

    def _announce_refit(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """mode=prox at the first refit epoch: monitored checkpoints start over (the models before lack the fixed
        support), and the epoch lines say so."""
        restart_best_checkpoints(trainer)
        print_refit_line(pl_module, self, trainer.current_epoch, trainer.max_epochs, who="the support is fixed")

    # -- epoch-end figures and warnings -------------------------------------------------------------------------
    @torch.no_grad()
    def zero_fraction(self) -> float:
        """Fraction of exactly-zero entries among the penalized parameters."""
        zeros = sum(int((p == 0).sum()) for p in self.params.values())
        return zeros / max(1, sum(p.numel() for p in self.params.values()))

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._logs_objective(trainer, pl_module):
            self.objective.log(pl_module)
        zero_fraction = self.zero_fraction()
        pl_module.log(f"sparsity/{self.name}", zero_fraction, sync_dist=True)  # the same on every rank: quiets DDP
        lam = self.current_strength(trainer.current_epoch)
        if self.penalty.sparse and zero_fraction == 1.0 and lam > 0:
            self.collapse.warn_once("all_zero", self._all_zero_message(trainer, pl_module, lam))
        if self.mode == "grad":  # only there does λ∇R enter every step beside ∇f (see CollapseWatch.check_dwarf)
            self.collapse.check_dwarf(trainer.current_epoch, self.strength)

    def _all_zero_message(self, trainer: L.Trainer, pl_module: L.LightningModule, lam: float) -> str:
        if is_network(pl_module):
            adaptive = self.adaptive and any(is_adaptive(o) for o in trainer.optimizers)
            metric = trainer.global_step > self._prox_warmup if adaptive else None
            return network_all_zero_message(
                self.name,
                list(self.params),
                trainer.current_epoch,
                trainer.global_step,
                lam,
                self.strength,
                metric,
                by_finish=self.emptied_by_finish(trainer),
            )
        return linear_all_zero_message(self.name, trainer.current_epoch, lam, self.lambda_max(trainer, pl_module))

    def lambda_max(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float | None:
        """λ_max = max over selected tensors of ``penalty.lambda_max(∇f)``, ∇f the full-training-set gradient at
        the current weights, which are all zero when this is called. Defined for one penalized tensor (linear
        models); ``None`` otherwise (with several zero layers the gradient vanishes at a saddle)."""
        if len(self.params) != 1 or trainer.datamodule is None or not hasattr(pl_module, "batch_loss"):
            return None
        (param,) = self.params.values()
        batches = full_batch.materialize(trainer.datamodule.train_dataloader(), param)
        _, (grad,) = full_batch.data_loss_and_grad(pl_module, batches, [param])
        return self.penalty.lambda_max(grad)

    # -- checkpointing ------------------------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What must match for a resume to continue the same problem: penalty, strength, mode and refit_epochs."""
        return {
            "penalty": repr(self.penalty),
            "strength": self.strength,
            "mode": self.mode,
            "refit_epochs": self.refit_epochs,
        }

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.fingerprint(), "params": list(self.params)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint written under another penalty, strength or mode (one line naming both), unless
        ``allow_changes`` is set (the CLI's ``resume.allow_changes=true``, which has warned once already)."""
        saved = {key: state_dict.get(key, FINGERPRINT_DEFAULTS.get(key)) for key in self.fingerprint()}
        if saved == self.fingerprint() or self.allow_changes:
            return
        raise UserError(
            f"{self.name}: the checkpoint was trained with {saved['penalty']} strength={saved['strength']} "
            f"mode={saved['mode']} refit_epochs={saved['refit_epochs']}, this run asks for {self.penalty!r} "
            f"strength={self.strength} mode={self.mode} refit_epochs={self.refit_epochs}; "
            "resume with the same penalty, or set resume.allow_changes=true (allow_changes=True on the callback)"
        )
