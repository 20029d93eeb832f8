"""The full-batch proximal finish of ``mode="exact"``: one callback per Trainer, for every penalty's term.

With minibatches the zero pattern of proximal SGD/Adam is noise (a zero entry leaves zero whenever one batch's
gradient exceeds λ). After the last planned optimizer step (or the last one before a ``refit_epochs`` refit) the
finish solves ``f + Σ λR`` on the whole training set (:class:`~lightreg.solvers.ProximalFinish`), so the zero pattern
is the regularized optimum's. The pipeline adds one :class:`ExactFinish` when a penalty asks for it; a
``mode="exact"`` penalty callback adds one itself to a Trainer that has none (a plain Lightning ``Trainer``).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from typing_extensions import override

from lightreg.errors import UserError, warn
from lightreg.penalties import Penalty, PenaltyTerm
from lightreg.solvers import ProximalFinish, full_batch
from lightreg.solvers.kkt import kkt_report

LATE_FINISH = r".*the mode=exact full-batch finish ran after the last validation"
"""The warning given when the finish ran at the end of training (after an early stop): a regex for filters."""
UNSETTLED_FINISH = r"mode=exact: the full-batch finish stopped at finish.max_iter"
"""The warning given when the finish's zero pattern had not settled: a regex for filters."""


@runtime_checkable
class FinishedPenalty(Protocol):
    """What the finish needs of a penalty callback (:class:`~lightreg.callbacks.RegularizationCallback`)."""

    name: str
    mode: str
    penalty: Penalty
    strength: float
    warmup_epochs: int
    refit_epochs: int
    finish: ProximalFinish | None

    def as_term(self, epoch: int | None = None) -> PenaltyTerm: ...

    def zero_fraction(self) -> float: ...

    def freeze_support(self) -> None: ...


def finish_epoch(max_epochs: int | None, refit_epochs: int) -> int | None:
    """The epoch after whose last batch the finish runs: the last one, or the last before a ``refit_epochs`` refit
    (``None`` without ``max_epochs``)."""
    return None if max_epochs is None or max_epochs < 0 else max_epochs - refit_epochs - 1


class ExactFinish(Callback):
    """Run the full-batch proximal finish once, after the last planned optimizer step, for every penalty callback of
    the Trainer (each at its strength in that epoch), with the options (``finish``) and ``refit_epochs`` of the first
    ``mode="exact"`` penalty; inactive when no penalty asks for it.

    After the finish: ``exact/*`` figures are logged (``report`` holds them), monitored checkpoints start over (the
    models before the finish lack its zeros), and with ``refit_epochs`` the penalties freeze their supports for the
    refit. When training stops early (early stopping, ``max_time``) the finish runs at the end of training and says
    that the last validation and checkpoints predate it.
    """

    def __init__(self) -> None:
        self.penalties: list[FinishedPenalty] = []
        self.owner: FinishedPenalty | None = None
        """The first ``mode="exact"`` penalty: its ``finish`` options and ``refit_epochs`` apply."""
        self.report: dict[str, float] | None = None
        """What the last finish did (``iterations``, ``converged``, ...), ``None`` before it ran in this fit."""
        self.emptied: list[FinishedPenalty] = []
        """The sparse penalties whose weights the finish zeroed entirely after the minibatch steps had kept some."""

    @classmethod
    def of(cls, trainer: L.Trainer) -> ExactFinish | None:
        """The Trainer's finish callback, if it has one."""
        return next((cb for cb in trainer.callbacks if isinstance(cb, cls)), None)

    @classmethod
    def ensure_in(cls, trainer: L.Trainer) -> ExactFinish:
        """The Trainer's finish callback, added to ``trainer.callbacks`` when it has none (in a ``setup`` hook,
        before the hooks of the fit)."""
        found = cls.of(trainer)
        if found is None:
            found = cls()
            trainer.callbacks.append(found)
        return found

    @property
    def active(self) -> bool:
        return self.owner is not None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.penalties = [cb for cb in trainer.callbacks if isinstance(cb, FinishedPenalty)]
        self.owner = next((cb for cb in self.penalties if cb.mode == "exact"), None)

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.report = None
        self.emptied = []
        if self.active:
            self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        """The finish runs in one process, on the datamodule's training set, at the full λ of every exact penalty."""
        if trainer.datamodule is None:
            raise UserError(
                "mode=exact needs a LightningDataModule for its full-batch finish: trainer.fit(model, datamodule=...)"
            )
        module = trainer.lightning_module
        if not callable(getattr(module, "batch_loss", None)):
            raise UserError(
                f"mode=exact solves the data loss + penalties on the whole training set, and "
                f"{type(module).__name__} does not say what its data loss is: define "
                "batch_loss(batch) -> (output, data_loss, target) on it (lightreg.models.LightregModule has it), "
                "or use mode=prox"
            )
        if trainer.world_size > 1:
            raise UserError(
                f"mode=exact's full-batch finish runs in one process, got world_size={trainer.world_size}: train with "
                "trainer.devices=1, or use mode=prox"
            )
        exact = [cb for cb in self.penalties if cb.mode == "exact"]
        refits = {cb.refit_epochs for cb in exact}
        if len(refits) > 1:
            raise UserError(
                f"the mode=exact penalties ask for different refit_epochs {sorted(refits)}; there is one finish: "
                "give them the same refit_epochs"
            )
        refit = self.refit_epochs
        if refit and (trainer.max_epochs is None or trainer.max_epochs <= refit):
            raise UserError(
                f"{self.owner.name}: refit_epochs={refit} leaves no epoch to select the support in under "  # type: ignore[union-attr]
                f"trainer.max_epochs={trainer.max_epochs}: raise trainer.max_epochs above it or lower refit_epochs"
            )
        epoch = finish_epoch(trainer.max_epochs, refit)
        for cb in exact:
            ramp = min(1.0, epoch / cb.warmup_epochs) if cb.warmup_epochs and epoch is not None else 1.0
            if ramp < 1:
                raise UserError(
                    f"{cb.name}: the lambda ramp (warmup_epochs={cb.warmup_epochs}) is still at "
                    f"{ramp * cb.strength:.3g} of lambda={cb.strength:g} in epoch {epoch}, where "
                    f"the full-batch finish runs (trainer.max_epochs={trainer.max_epochs}, refit_epochs={refit}): "
                    f"lower warmup_epochs{', refit_epochs' if refit else ''} or raise trainer.max_epochs"
                )

    @property
    def refit_epochs(self) -> int:
        return self.owner.refit_epochs if self.owner is not None else 0

    def is_finish_step(self, trainer: L.Trainer) -> bool:
        """After the last optimizer step that ``max_epochs`` or ``max_steps`` allow, or, with ``refit_epochs``, the
        last step before the refit; never twice in one fit."""
        if not self.active or self.report is not None:
            return False
        if self.refit_epochs and self.owner is not None and getattr(self.owner, "support", None) is not None:
            return False  # resumed inside the refit: the support is already fixed
        last = finish_epoch(trainer.max_epochs, self.refit_epochs)
        at_epoch_end = trainer.is_last_batch and last is not None and trainer.current_epoch >= last
        return at_epoch_end or 0 < trainer.max_steps <= trainer.global_step

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.is_finish_step(trainer):
            return
        at_max_steps = 0 < trainer.max_steps <= trainer.global_step
        if self.refit_epochs and at_max_steps:
            warn(
                f"{self.owner.name}: trainer.max_steps={trainer.max_steps} ends training before the "  # type: ignore[union-attr]
                f"refit_epochs={self.refit_epochs} refit: the finish ran, the refit will not"
            )
        self.run(trainer, pl_module, refit=bool(self.refit_epochs) and not at_max_steps)
        restart_best_checkpoints(trainer)
        for key, value in (self.report or {}).items():
            pl_module.log(f"exact/{key}", value, on_step=False, on_epoch=True)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Training stopped before the last planned batch (early stopping, ``max_time``): finish now, and say that
        the last validation figures and checkpoints were taken before it."""
        if not self.active or self.report is not None or getattr(self.owner, "support", None) is not None:
            return
        self.run(trainer, pl_module, refit=False)
        skipped = f", and the refit_epochs={self.refit_epochs} refit did not run" if self.refit_epochs else ""
        warn(
            f"{self.owner.name}: training stopped at epoch {trainer.current_epoch} before trainer.max_epochs="  # type: ignore[union-attr]
            f"{trainer.max_epochs} (early stopping or max_time), so the mode=exact full-batch finish ran after the "
            f"last validation and checkpoint{skipped}: val/* and the checkpoints predate it; metrics.json's exact/* "
            "and kkt figures include it"
        )

    def run(self, trainer: L.Trainer, pl_module: L.LightningModule, refit: bool) -> None:
        """The full-batch finish for every penalty's term; with ``refit``, then hold its zeros for the refit."""
        assert self.owner is not None and self.owner.finish is not None
        epoch = trainer.current_epoch
        terms = [cb.as_term(epoch) for cb in self.penalties]
        batches = full_batch.materialize(trainer.datamodule.train_dataloader(), next(pl_module.parameters()))
        kept_some = [cb.penalty.sparse and cb.zero_fraction() < 1 for cb in self.penalties]
        self.report = self.owner.finish.run(pl_module, batches, terms)
        self.emptied = [cb for cb, kept in zip(self.penalties, kept_some) if kept and cb.zero_fraction() == 1]
        if refit:
            # the penalized optimum's KKT residual, before the refit moves away from it on purpose
            self.report["kkt_violation"] = kkt_report(pl_module, batches, terms)["kkt_violation"]
            self.report["refit_epochs"] = float(self.refit_epochs)
            for cb in self.penalties:
                if cb.refit_epochs:
                    cb.freeze_support()
            print_refit_line(pl_module, self.owner, epoch + 1, trainer.max_epochs, who="the finish fixed the support")
        if not self.report["converged"]:
            finish = self.owner.finish
            penalized = {id(p) for term in terms for p in term.params.values()}
            free_layers = any(p.ndim >= 2 and id(p) not in penalized for p in pl_module.parameters())
            why = (
                "; with unpenalized layers beside the penalized ones, the objective may have no minimizer (rescaling "
                "moves weight into them): add L2 on the others (experiment=seed001_exact shows how)"
                if free_layers
                else "; on unscaled features the step is small: standardize the data (data.standardize=true)"
            )
            warn(
                f"mode=exact: the full-batch finish stopped at finish.max_iter={finish.max_iter} with KKT residual "
                f"{self.report['kkt']:.3g} above finish.tol={finish.tol:g} x the largest zero threshold. "
                f"Raise it (+penalty.finish.max_iter=...){why}"
            )


def print_refit_line(
    pl_module: L.LightningModule, owner: Any, last_epoch: int, max_epochs: int | None, who: str
) -> None:
    """Beside the epoch lines (when the model prints them), whose penalty drops from here: ``"<name>: <who> after
    epoch <last_epoch> (z% of its weights exactly zero); epochs <last_epoch + 1>-<max_epochs> refit the others without
    <name>"``; epochs counted from 1, ``owner`` the penalty callback (its ``name`` and ``zero_fraction()``)."""
    if getattr(pl_module, "print_epochs", False):
        pl_module.print(
            f"{owner.name}: {who} after epoch {last_epoch} ({100 * owner.zero_fraction():.1f}% of its weights exactly "
            f"zero); epochs {last_epoch + 1}-{max_epochs} refit the others without {owner.name}"
        )


def restart_best_checkpoints(trainer: L.Trainer) -> None:
    """Monitored checkpoints (``best.ckpt``) start over at the finish: the models before it lack its zeros, so the first
    validation after it saves, and only models with the finish's support compete (their old files are removed).

    The one place lightreg writes a ``ModelCheckpoint``'s tracking state: every field of the best-model bookkeeping is
    set back to the value a new ``ModelCheckpoint`` starts with (``tests/callbacks/test_exact_finish.py`` compares it with a fresh one, so a
    new field in Lightning fails there)."""
    for checkpoint in trainer.checkpoint_callbacks:
        if not isinstance(checkpoint, ModelCheckpoint) or checkpoint.monitor is None:
            continue
        for path in list(checkpoint.best_k_models):
            trainer.strategy.remove_checkpoint(path)
        checkpoint.best_k_models = {}
        checkpoint.kth_best_model_path = ""
        checkpoint.best_model_path = ""
        checkpoint.best_model_score = None
        checkpoint.kth_value = torch.tensor(math.inf if checkpoint.mode == "min" else -math.inf)


__all__ = [
    "LATE_FINISH",
    "UNSETTLED_FINISH",
    "ExactFinish",
    "FinishedPenalty",
    "finish_epoch",
    "restart_best_checkpoints",
]
