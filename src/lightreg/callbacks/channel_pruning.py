"""Channel pruning to a ratio during training, with Torch-Pruning's pruner (``callbacks=prune``).

At the end of each scheduled epoch the least important coupled channel groups (:mod:`lightreg.compact.coupling`) are
removed for good, and training goes on with the smaller model (its optimizers and schedulers rebuilt from
``configure_optimizers``, so their state restarts). After step ``k`` of ``steps`` the model has lost the fraction
``ratio·k/steps`` of its prunable channels (``target=channels``, Torch-Pruning's linear schedule) or of its MACs
(``target=macs``, fine channel steps until the MACs reach ``(1 − ratio·k/steps)·MACs₀``).

Importance of a channel group: ``magnitude`` = the ℓ1 norm of the root layer's filter (Li et al. 2017);
``group_norm`` = the ℓ2 norm over every coupled slice (DepGraph, Fang et al. 2023); ``taylor`` = ``|w·∇L|`` summed
over the group, the gradient of one training batch (Molchanov et al. 2019).

Logged: ``prune/params_before``, ``prune/params``, ``prune/macs_before``, ``prune/macs`` (Torch-Pruning's counter on
one sample). The checkpoints written after a step carry the pruned layer shapes
(:mod:`lightreg.models.pruned_shapes`), so ``load_from_checkpoint`` (and ``lightreg predict``/``export``) rebuilds
the smaller model. A run resumed after its last step trains on; one resumed between two steps is refused (the
pruner's schedule starts from the model it is built on). A penalty callback in the same run is refused (it holds
the tensors that pruning replaces).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch_pruning as tp
from torch import Tensor
from typing_extensions import override

from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.compact.coupling import eval_mode, output_layers
from lightreg.errors import UserError
from lightreg.models.pruned_shapes import CHECKPOINT_KEY, shapes_of

IMPORTANCES = ("magnitude", "group_norm", "taylor")
TARGETS = ("channels", "macs")
MACS_STEPS = 200
"""Channel steps of the pruner behind ``target=macs`` (each removes at most 1/200 of the channels)."""
MAX_RATIO = 0.95
"""No layer loses more than this fraction of its channels under ``target=macs``."""


def _importance(name: str) -> tp.importance.Importance:
    if name == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first")
    if name == "group_norm":
        return tp.importance.GroupMagnitudeImportance(p=2)
    return tp.importance.GroupTaylorImportance()


class ChannelPruning(L.Callback):
    """Remove the least important channel groups of the model on a schedule, until ``ratio`` is reached.

    Args:
        ratio: fraction in (0, 1) of the channels (``target=channels``) or of the MACs (``target=macs``) removed.
        target: ``channels`` | ``macs``.
        importance: ``magnitude`` | ``group_norm`` | ``taylor``.
        steps: number of pruning steps (>= 1), one at the end of every ``every`` epochs from ``start_epoch``.
        start_epoch: first epoch (0-based) at whose end a step happens.
        every: epochs between steps.
    """

    def __init__(
        self,
        ratio: float = 0.5,
        target: str = "channels",
        importance: str = "group_norm",
        steps: int = 1,
        start_epoch: int = 0,
        every: int = 1,
    ) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise UserError(f"ratio must be a number in (0, 1) (the fraction removed), got {ratio!r}")
        if target not in TARGETS:
            raise UserError(f"target must be one of {TARGETS}, got {target!r}")
        if importance not in IMPORTANCES:
            raise UserError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
        for key, value, low in (("steps", steps, 1), ("start_epoch", start_epoch, 0), ("every", every, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{key} must be an integer >= {low}, got {value!r}")
        self.ratio, self.target, self.importance = float(ratio), target, importance
        self.steps, self.start_epoch, self.every = steps, start_epoch, every
        self.done = 0
        self._pruner: tp.pruner.BasePruner | None = None
        self._example: Tensor | None = None
        self._before: tuple[int, int] | None = None

    def step_epochs(self) -> list[int]:
        """The epochs at whose end a pruning step happens."""
        return [self.start_epoch + k * self.every for k in range(self.steps)]

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if RegularizationCallback.all_in(trainer):
            raise UserError(
                "callbacks=prune replaces the model's tensors while a penalty callback holds them: train with the "
                "penalty first, or prune without +penalty"
            )
        shape = getattr(pl_module, "input_shape", None)
        if shape is None:
            raise UserError(
                f"callbacks=prune traces the model on an example input; {type(pl_module).__name__} has no input_shape"
            )
        last = self.step_epochs()[-1]
        if trainer.max_epochs is not None and trainer.max_epochs >= 0 and last >= trainer.max_epochs:
            raise UserError(
                f"the pruning schedule ends at epoch {last} but trainer.max_epochs={trainer.max_epochs}: "
                f"lower steps/every/start_epoch or raise max_epochs"
            )
        reference = next(pl_module.parameters())
        self._example = torch.randn(1, *shape, device=reference.device, dtype=reference.dtype)
        if self.done >= self.steps:  # resumed after the last step: nothing left to prune
            return
        if self.done > 0:
            raise UserError(
                f"this run was saved after pruning step {self.done} of {self.steps}; resuming between steps is not "
                "supported: resume from a checkpoint written after the last step, or train again"
            )
        self._before = self._count(pl_module)
        with eval_mode(pl_module):
            ignored = output_layers(pl_module, self._example)
            self._pruner = tp.pruner.BasePruner(
                pl_module,
                self._example,
                importance=_importance(self.importance),
                pruning_ratio=self.ratio if self.target == "channels" else MAX_RATIO,
                iterative_steps=self.steps if self.target == "channels" else MACS_STEPS,
                ignored_layers=ignored,
                global_pruning=False,
            )

    def _count(self, pl_module: L.LightningModule) -> tuple[int, int]:
        with eval_mode(pl_module), torch.no_grad():
            macs, params = tp.utils.count_ops_and_params(pl_module, self._example)
        return int(params), int(macs)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch not in self.step_epochs() or self._pruner is None:
            return
        self.done += 1
        with eval_mode(pl_module):
            if self.target == "channels":
                self._taylor_gradients(trainer, pl_module)
                self._pruner.step()
            else:
                goal = (1 - self.ratio * self.done / self.steps) * self._before[1]
                while self._count(pl_module)[1] > goal and self._pruner.current_step < MACS_STEPS:
                    self._taylor_gradients(trainer, pl_module)
                    self._pruner.step()
        trainer.strategy.setup_optimizers(trainer)  # the tensors changed: new optimizers over the new ones
        params, macs = self._count(pl_module)
        figures = {"prune/params_before": self._before[0], "prune/params": params,
                   "prune/macs_before": self._before[1], "prune/macs": macs}  # fmt: skip
        for key, value in figures.items():
            pl_module.log(key, float(value))

    def _taylor_gradients(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """``taylor`` needs ``∇L``: the gradient of one training batch, left in ``.grad``."""
        if self.importance != "taylor":
            return
        if not hasattr(pl_module, "batch_loss"):
            raise UserError("importance=taylor needs a LightregModule (its batch_loss gives the gradient)")
        x, y = (t.to(self._example.device) for t in next(iter(trainer.train_dataloader))[:2])
        pl_module.zero_grad()
        with torch.enable_grad():
            _, loss, _ = pl_module.batch_loss((x, y))
        loss.backward()

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.done > 0:
            checkpoint[CHECKPOINT_KEY] = shapes_of(pl_module)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done = int(state_dict.get("done", 0))


__all__ = ["IMPORTANCES", "TARGETS", "ChannelPruning"]
