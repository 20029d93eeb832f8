"""``mode: exact``: stochastic proximal training, then a full-batch proximal finish that fixes the support.

With minibatches the zero pattern of prox-SGD/Adam is noise: a zero entry leaves zero whenever one batch's
gradient exceeds λ (DESIGN.md §7). The finish removes the noise: after the last batch of the last epoch (before
that epoch's validation and checkpoint), it minimizes the full-training-set objective ``f + Σ λR`` over every
trainable parameter with accelerated proximal gradient until the zero pattern is stable, then applies the
KKT-checked thresholding (:mod:`lightreg.optim.proximal_gradient`). Exactly the regularized problem the user
posed, so the zeros it keeps satisfy ``|∇f| ≤ λ`` (``‖∇_g f‖ ≤ λ√size`` per group) on the whole training set.

Cost: each iteration is one full-batch gradient plus one loss per backtracking trial (≈ 2–3 passes over the
training set); ``max_iter`` bounds it. The model runs in eval mode during the finish (no dropout).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from torch import Tensor

from lightreg import full_batch
from lightreg.errors import UserError, warn
from lightreg.optim.proximal_gradient import ProxTerm, fista, kkt_threshold


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"finish.{name} must be a positive integer, got {value!r}")
    return value


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"finish.{name} must be a number in [0, 1), got {value!r}")
    return float(value)


class ProximalFinish:
    """The full-batch proximal finish of ``mode: exact`` (owned by a :class:`RegularizationCallback`).

    Args:
        max_iter: most accelerated proximal-gradient iterations (each ≈ 2–3 full passes over the training set).
        tol: stop when the support was unchanged for ``patience`` iterations and the objective fell by at most
            ``tol·|F|`` over them.
        patience: iterations with an unchanged zero pattern required to stop.
        threshold_rel: entries/groups with norm ≤ this × the largest of their tensor are tested for zero by the
            KKT check (0 disables the thresholding).
    """

    def __init__(self, max_iter: int = 1000, tol: float = 1e-7, patience: int = 20, threshold_rel: float = 1e-2) -> None:
        self.max_iter = _positive_int("max_iter", max_iter)
        self.patience = _positive_int("patience", patience)
        self.tol = _fraction("tol", tol)
        self.threshold_rel = _fraction("threshold_rel", threshold_rel)

    def check(self, trainer: L.Trainer) -> None:
        """The finish runs after the last batch of epoch ``max_epochs − 1``, in one process, on the datamodule's
        training set: it needs a positive ``max_epochs``, a datamodule and a single process."""
        if not trainer.max_epochs or trainer.max_epochs < 1:
            raise UserError(
                f"mode=exact runs its full-batch finish at the end of the last epoch: set trainer.max_epochs "
                f"(got {trainer.max_epochs!r})"
            )
        if trainer.datamodule is None:
            raise UserError("mode=exact needs a LightningDataModule for its full-batch finish: trainer.fit(model, datamodule=...)")
        if trainer.world_size > 1:
            raise UserError(
                f"mode=exact's full-batch finish runs in one process, got world_size={trainer.world_size}: train with "
                "trainer.devices=1, or use mode=prox"
            )

    def after_batch(self, owner: Any, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Run the finish once, from the first exact-mode callback, after the last batch of the last epoch."""
        from lightreg.callbacks.regularization import RegularizationCallback

        if not (trainer.is_last_batch and trainer.current_epoch == trainer.max_epochs - 1):
            return
        regs = [cb for cb in trainer.callbacks if isinstance(cb, RegularizationCallback)]
        if next(cb for cb in regs if cb.mode == "exact") is not owner:
            return
        epoch = trainer.current_epoch
        report = self.run(pl_module, trainer.datamodule, [(cb.penalty, cb.current_strength(epoch), cb.params) for cb in regs])
        for key, value in report.items():
            pl_module.log(f"exact/{key}", value, on_step=False, on_epoch=True)
        if not report["converged"]:
            warn(
                f"mode=exact: the full-batch finish stopped at finish.max_iter={self.max_iter} before the zero pattern "
                "settled. Raise it (+penalty.finish.max_iter=...); if only some layers of a ReLU network are "
                "penalized, the objective may have no minimizer (rescaling moves weight into the unpenalized "
                "layers): add L2 on the others (experiment=seed001_exact shows how)."
            )

    def run(self, model: Any, datamodule: Any, penalties: list[tuple[Any, float, dict[str, Tensor]]]) -> dict[str, float]:
        """Minimize ``f + Σ λR`` on the full training set of ``datamodule`` over every trainable parameter of
        ``model``; sparse penalties by their prox, smooth ones (L2) inside ``f``. Returns what it did."""
        started = time.perf_counter()
        names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
        index = {n: i for i, n in enumerate(names)}
        terms = [ProxTerm(pen, lam, tuple(index[n] for n in sel)) for pen, lam, sel in penalties if pen.sparse and lam > 0]
        smooth = [(pen, lam, [index[n] for n in sel]) for pen, lam, sel in penalties if not pen.sparse and lam > 0]
        batches = full_batch.materialize(datamodule.train_dataloader(), params[0])

        def smooth_value() -> float:
            return sum(lam * float(pen.value(params[i])) for pen, lam, idx in smooth for i in idx)

        def loss() -> float:
            return full_batch.data_loss(model, batches) + smooth_value()

        def loss_and_grad() -> tuple[float, list[Tensor]]:
            value, grads = full_batch.data_loss_and_grad(model, batches, params)
            for pen, lam, idx in smooth:
                for i in idx:
                    grads[i].add_(pen.grad(params[i].detach()), alpha=lam)
            return value + smooth_value(), grads

        with full_batch.eval_mode(model), full_batch.threads_for(batches):
            first = fista(params, terms, loss_and_grad, loss, self.max_iter, self.tol, self.patience)
            zeroed = kkt_threshold(params, terms, loss_and_grad, loss, self.threshold_rel) if self.threshold_rel else 0
            final = fista(params, terms, loss_and_grad, loss, self.max_iter, self.tol, self.patience) if zeroed else first
        return {
            "iterations": float(first.iterations + (final.iterations if zeroed else 0)),
            "converged": float(final.converged),
            "zeroed_by_kkt": float(zeroed),
            "seconds": time.perf_counter() - started,
        }


__all__ = ["ProximalFinish"]
