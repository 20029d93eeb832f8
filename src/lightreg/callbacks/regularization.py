"""The regularization callback: a penalty λ·R applied as gradients or as proximal steps."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.optim import Optimizer

from lightreg import full_batch
from lightreg.callbacks.collapse import is_network, network_all_zero_message
from lightreg.callbacks.exact_support import ProximalFinish
from lightreg.errors import UserError, warn
from lightreg.optim import is_adaptive, prox_step, warmup_steps
from lightreg.penalties import Penalty, make_penalty, select_parameters

MODES = ("prox", "grad", "exact")
DECAY_PENALTIES = ("l2", "elastic_net")
DWARF_RATIO = 10.0


class RegularizationCallback(Callback):
    """Add ``strength · R(w)`` to the training objective of the selected parameters.

    ``mode="prox"`` (default for sparse penalties: L1, elastic net, group lasso): after every real
    optimizer step, ``w ← prox_{λ·η·R}(w)`` with the step size η the optimizer just used (an
    ``optimizer.register_step_post_hook``: it fires only when a step happened, so never on gradient-
    accumulation micro-batches or on steps the AMP GradScaler skipped, and before any LR scheduler moves
    the rate). η is ``lr`` for SGD (momentum included) and the optimizer's own per-entry metric
    ``lr/(√v̂+ε)`` for Adam, AdamW, Adagrad and RMSprop, floored so the threshold never exceeds ``lr``
    (:mod:`lightreg.optim.prox_steps`). Soft-thresholding gives exact zeros.

    ``mode="grad"`` (default for L2): ``∇ ← ∇ + λ∇R`` in ``on_before_optimizer_step``, i.e. once per real
    step, after the DDP all-reduce and AMP unscaling and before clipping: the same update as putting λR in
    the loss (for L1 the minimum-norm subgradient ``sign(w)``, which never gives exact zeros).

    Logged: ``train/penalty`` and ``train/objective`` (data loss + all penalties) per step and per epoch
    through :class:`~lightreg.models.LightregModule`, and ``sparsity/<name>``, the fraction of exactly-zero
    penalized entries, per epoch. Only weights with ``ndim >= 2`` are penalized unless ``include`` says
    otherwise; the validation loss never contains the penalty.

    Args:
        penalty: the unit-strength regularizer R (:mod:`lightreg.penalties`).
        strength: λ >= 0 (finite).
        mode: ``prox`` | ``grad`` | ``exact``; ``None`` picks ``prox`` for sparse penalties, ``grad`` otherwise.
            ``exact`` = ``prox``, then a full-batch proximal finish after the last epoch that makes the zero
            pattern the one of the regularized optimum (:mod:`lightreg.callbacks.exact_support`).
        include: glob patterns over ``named_parameters()`` names (default: every weight with ndim >= 2).
        exclude: glob patterns removed from the selection.
        warmup_epochs: ramp λ linearly from 0 at epoch 0 to its full value at epoch ``warmup_epochs``.
        adaptive: use the optimizer's per-entry metric for the prox of adaptive optimizers (else plain lr·λ).
        name: label in logs (``train/penalty/<name>``, ``sparsity/<name>``); defaults to ``penalty.name``.
        finish: options of :class:`~lightreg.callbacks.exact_support.ProximalFinish` (``mode: exact`` only).
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
        name: str | None = None,
        finish: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(penalty, Penalty):
            raise UserError(f"penalty must be a lightreg.penalties.Penalty, got {penalty!r}")
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) or strength < 0:
            raise UserError(
                f"strength (lambda) must be a finite number >= 0, got {strength!r}: "
                "a penalty is added to the objective, never subtracted"
            )
        mode = mode or ("prox" if penalty.sparse else "grad")
        if mode not in MODES:
            raise UserError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise UserError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
        self.penalty = penalty
        self.strength = float(strength)
        self.mode = mode
        self.include = [include] if isinstance(include, str) else (list(include) if include else None)
        self.exclude = [exclude] if isinstance(exclude, str) else (list(exclude) if exclude else None)
        self.warmup_epochs = warmup_epochs
        self.adaptive = adaptive
        self.name = name or penalty.name
        if finish is not None and mode != "exact":
            raise UserError(f"finish options apply to mode='exact' only, got mode={mode!r} with finish={dict(finish)!r}")
        self.finish = ProximalFinish(**(finish or {})) if mode == "exact" else None
        self.params: dict[str, nn.Parameter] = {}
        self._param_ids: set[int] = set()
        self._handles: list[Any] = []
        self._epoch_sums = torch.zeros(3)  # Σ n·penalty, Σ n·data_loss, Σ n over the epoch
        self._warned: set[str] = set()
        if self.strength == 0:
            warn(
                f"{self.name}: lambda is 0, so NO regularization is happening. Set it, e.g. `lambda=1e-3` on the "
                "command line or strength=1e-3 here."
            )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(penalty=repr(self.penalty), include=self.include, exclude=self.exclude, name=self.name)

    def current_strength(self, epoch: int) -> float:
        """λ at ``epoch``: ``strength · min(1, epoch / warmup_epochs)`` (plain ``strength`` without warm-up)."""
        if self.warmup_epochs == 0:
            return self.strength
        return self.strength * min(1.0, epoch / self.warmup_epochs)

    # -- set-up and guard rails ---------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.params = dict(select_parameters(pl_module, self.include, self.exclude))
        self._param_ids = {id(p) for p in self.params.values()}
        strategy = type(trainer.strategy).__name__
        if not self.penalty.elementwise and ("FSDP" in strategy or "DeepSpeed" in strategy):
            raise UserError(
                f"{self.penalty!r} needs whole rows/columns but {strategy} shards parameters; use an elementwise "
                "penalty (l1, l2, elastic_net) or strategy=ddp"
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_loss: float | None = None
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if self.finish is not None:
            self.finish.check(trainer)
        for optimizer in trainer.optimizers:
            fused = any(group.get("fused") for group in optimizer.param_groups)
            if fused and scaler is not None:
                raise UserError(
                    f"{type(optimizer).__name__}(fused=True) under a GradScaler ({trainer.precision_plugin.precision}) "
                    "still holds scaled gradients when callbacks see them; set fused=False or use bf16-mixed"
                )
            self._warn_double_decay(optimizer)
            if self.mode in ("prox", "exact"):
                if self.adaptive and not is_adaptive(optimizer) and type(optimizer).__name__ != "SGD":
                    warn(
                        f"{self.name}: no per-entry metric known for {type(optimizer).__name__}; the prox uses lr·λ"
                    )
                self._prox_warmup = warmup_steps(trainer.estimated_stepping_batches)
                self._handles.append(optimizer.register_step_post_hook(self._after_optimizer_step))

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

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()

    # -- the penalty itself -----------------------------------------------------------------------------------
    @torch.no_grad()
    def penalty_value(self, strength: float | None = None) -> Tensor:
        """``λ · Σ R(w)`` over the selected parameters (λ = the current strength unless given)."""
        lam = self.strength if strength is None else strength
        return lam * sum(self.penalty.value(p) for p in self.params.values())

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        value = self.penalty_value(self.current_strength(trainer.current_epoch))
        if hasattr(pl_module, "report_penalty"):
            pl_module.report_penalty(self.name, value)
        else:
            pl_module.log(f"train/penalty/{self.name}", value, on_step=True, on_epoch=True)
        self._last_value = value

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.mode != "grad":
            return
        lam = self.current_strength(trainer.current_epoch)
        if lam == 0:
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) in self._param_ids and p.grad is not None:
                    p.grad.add_(self.penalty.grad(p.detach()), alpha=lam)

    @torch.no_grad()
    def _after_optimizer_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        lam = self._step_strength
        if lam == 0:
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) in self._param_ids:
                    self.penalty.prox_(
                        p, prox_step(optimizer, group, p, self.adaptive, floor=lam, scale=lam, warmup=self._prox_warmup)
                    )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step_strength = self.current_strength(trainer.current_epoch)
        self._epoch_sums = torch.zeros(3, dtype=torch.float64, device=pl_module.device)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if isinstance(outputs, dict) and "data_loss" in outputs:
            n = len(batch[0]) if isinstance(batch, (tuple, list)) else 1
            self._epoch_sums[0] += self._last_value * n
            self._epoch_sums[1] += outputs["data_loss"] * n
            self._epoch_sums[2] += n
        if self.finish is not None:
            self.finish.after_batch(self, trainer, pl_module)

    # -- epoch-end figures and warnings -------------------------------------------------------------------------
    @torch.no_grad()
    def zero_fraction(self) -> float:
        """Fraction of exactly-zero entries among the penalized parameters."""
        zeros = sum(int((p == 0).sum()) for p in self.params.values())
        return zeros / max(1, sum(p.numel() for p in self.params.values()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        zero_fraction = self.zero_fraction()
        pl_module.log(f"sparsity/{self.name}", zero_fraction)
        lam = self.current_strength(trainer.current_epoch)
        if self.penalty.sparse and zero_fraction == 1.0 and lam > 0:
            self._warn_once("all_zero", self._all_zero_message(trainer, pl_module, lam))
        penalty_sum, loss_sum, n = self._epoch_sums.tolist()
        if n == 0:
            return
        penalty, loss = penalty_sum / n, loss_sum / n
        if self._first_loss is None:
            self._first_loss = loss
        # against the larger of this epoch's and the first epoch's data loss: a well-fit model's small loss
        # (0.03 on digits) is not a sign that λ is too large
        if penalty > DWARF_RATIO * max(loss, self._first_loss):
            self._warn_once(
                "dwarf",
                f"{self.name}: the penalty ({penalty:.4g}) is more than {DWARF_RATIO:g}x the data loss "
                f"({loss:.4g}; {self._first_loss:.4g} after the first epoch) at epoch {trainer.current_epoch}: "
                f"lambda={self.strength:g} is likely too large and will freeze training; try a value 10-100x smaller",
            )

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warn(message)

    def _all_zero_message(self, trainer: L.Trainer, pl_module: L.LightningModule, lam: float) -> str:
        if is_network(pl_module):
            adaptive = self.adaptive and any(is_adaptive(o) for o in trainer.optimizers)
            metric = trainer.global_step > getattr(self, "_prox_warmup", 0) if adaptive else None
            return network_all_zero_message(
                self.name, list(self.params), trainer.current_epoch, trainer.global_step, lam, self.strength, metric
            )
        message = (
            f"{self.name}: every penalized weight is exactly zero after epoch {trainer.current_epoch}: "
            f"lambda={lam:g} is at or above lambda_max, the model predicts from biases only."
        )
        lam_max = self.lambda_max(trainer, pl_module)
        if lam_max is not None:
            message += f" lambda_max = {lam_max:.4g} for this data; use a smaller lambda (e.g. {lam_max / 10:.2g})."
        return message

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
    def state_dict(self) -> dict[str, Any]:
        return {"penalty": repr(self.penalty), "strength": self.strength, "mode": self.mode, "params": list(self.params)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = (state_dict.get("penalty"), state_dict.get("strength"), state_dict.get("mode"))
        if saved != (repr(self.penalty), self.strength, self.mode):
            warn(
                f"{self.name}: resuming a run trained with {saved[0]} strength={saved[1]} mode={saved[2]} "
                f"under {self.penalty!r} strength={self.strength} mode={self.mode}"
            )


def regularizer(
    penalty: str,
    strength: float,
    l1_ratio: float | None = None,
    groups: str | None = None,
    **callback_options: Any,
) -> RegularizationCallback:
    """Flat constructor for configs: ``regularizer("elastic_net", 1e-3, l1_ratio=0.7, mode="prox")``.

    ``l1_ratio`` and ``groups`` go to the penalty (elastic net, group lasso); everything else to
    :class:`RegularizationCallback`.
    """
    options = {"l1_ratio": l1_ratio, "groups": groups}
    return RegularizationCallback(make_penalty(penalty, **options), strength, **callback_options)
