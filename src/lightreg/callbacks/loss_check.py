"""The penalty callbacks in a LightningModule of the user's own: the objective they log there, and the check of the
loss for a hand-written penalty beside theirs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lightreg.errors import warn
from lightreg.loss_graph import loss_terms

SHOWN = 3


def _batch_size(batch: Any) -> int | None:
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    return len(first) if isinstance(first, Tensor) and first.ndim > 0 else None


class EpochObjective:
    """``train/penalty`` and ``train/objective`` of a LightningModule of the user's own, the figures a
    :class:`~lightreg.models.LightregModule` logs itself, as epoch means weighted by the batch size: ``train/penalty``
    = Σ λ·R at a batch's start over the batches that read it (:func:`lightreg.callbacks.regularization.samples_value`),
    ``train/objective`` = the loss ``training_step`` returned over every batch + that penalty. Device sums, no host
    sync per batch; one all-reduce and one log per epoch."""

    def __init__(self) -> None:
        self._sums = torch.zeros(4)  # Σ n·loss, Σ n (every batch); Σ n·penalty, Σ n (the batches that read it)

    def start_epoch(self, device: torch.device) -> None:
        self._sums = torch.zeros(4, dtype=torch.float64, device=device)

    def add_batch(self, outputs: Any, batch: Any, penalties: Sequence[Tensor] | None) -> None:
        """One training batch: its returned loss, and the penalties' values when this batch read them (else ``None``)."""
        n = _batch_size(batch) or 1
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, Tensor):
            self._sums[:2] += torch.stack((loss.detach().to(self._sums), self._sums.new_ones(()))) * n
        if penalties is not None:
            penalty = torch.stack([p.detach().to(self._sums) for p in penalties]).sum()
            self._sums[2:] += torch.stack((penalty, self._sums.new_ones(()))) * n

    def log(self, pl_module: L.LightningModule) -> None:
        """Log the epoch's figures (none of an epoch whose batches read no penalty; no objective without a loss)."""
        sums = self._sums
        trainer = pl_module.trainer
        if trainer.world_size > 1:
            sums = trainer.strategy.reduce(sums, reduce_op="sum")
        loss_sum, count, penalty_sum, sampled = sums.tolist()
        if sampled == 0:
            return
        penalty = penalty_sum / sampled
        pl_module.log("train/penalty", penalty, sync_dist=True)  # the same on every rank: the sync only quiets DDP
        if count > 0:
            pl_module.log("train/objective", loss_sum / count + penalty, sync_dist=True)


def _names(ids: set[int], module: nn.Module) -> str:
    names = [name for name, p in module.named_parameters() if id(p) in ids]
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_hand_written_penalties(loss: Tensor, module: nn.Module, penalized: Mapping[str, Mapping[str, Any]]) -> None:
    """Warn by name when ``loss`` (a training step's, before backward) holds a norm of weights alone
    (:func:`lightreg.loss_graph.loss_terms`) that is subtracted (it rewards large weights without bound), or that
    covers weights a penalty callback in ``penalized`` (callback name → its ``{name: parameter}``) already
    penalizes (regularized twice)."""
    owners = {id(p): name for name, params in penalized.items() for p in params.values()}
    where = f"the loss {type(module).__name__}.training_step returns"
    for term in loss_terms(loss):
        if not term.is_penalty:
            continue
        weights = _names(term.penalized, module)
        if term.sign < 0:
            warn(
                f"{where} SUBTRACTS a norm of {weights}: a subtracted penalty rewards large weights without bound. "
                "Add it (loss + λ·R), or drop it and let the penalty callback regularize"
            )
        twice = sorted({owners[i] for i in term.penalized if i in owners})
        if twice and term.sign > 0:
            warn(
                f"{where} already adds a norm of {weights}, which the {', '.join(twice)} callback penalizes too: "
                "those weights are regularized twice. Remove the hand-written term from training_step"
            )
