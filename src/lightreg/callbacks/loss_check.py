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


def log_objective(pl_module: L.LightningModule, outputs: Any, batch: Any, penalties: Sequence[Tensor]) -> None:
    """Log ``train/penalty`` (Σ λ·R at the step's start) and ``train/objective`` (the loss ``training_step`` returned
    + that sum) as epoch means weighted by the batch size, the figures a :class:`~lightreg.models.LightregModule`
    logs itself."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    penalty = torch.stack([p.detach().float() for p in penalties]).sum()
    options = {"on_step": False, "on_epoch": True, "batch_size": _batch_size(batch), "sync_dist": True}
    pl_module.log("train/penalty", penalty, **options)
    if isinstance(loss, Tensor):
        pl_module.log("train/objective", loss.detach().float() + penalty.to(loss.device), **options)


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
