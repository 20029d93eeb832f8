"""Hold a support fixed: the entries that are zero when it is frozen stay exactly zero through further training.

The refit of a relaxed lasso (Meinshausen 2007) trains the kept weights without the penalty that chose them. Masking
the gradient alone is not enough: momentum, an adaptive optimizer's state and decoupled weight decay move an entry
whose gradient is zero. So the gradient is masked before each optimizer step and the weights are re-zeroed after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.optim import Optimizer
from typing_extensions import override

from lightreg.callbacks.step_hooks import StepHookCallback


class SupportMask:
    """``mask[name] = 1`` where ``params[name]`` is non-zero when the mask is taken, else 0 (same dtype)."""

    def __init__(self, params: Mapping[str, Tensor]) -> None:
        with torch.no_grad():
            self.masks = {name: (p != 0).to(p.dtype) for name, p in params.items()}

    def mask_grads_(self, params: Mapping[str, Tensor]) -> None:
        """``∇w ← ∇w ⊙ mask`` (before the optimizer step)."""
        for name, p in params.items():
            if p.grad is not None:
                p.grad.mul_(self.masks[name])

    @torch.no_grad()
    def apply_(self, params: Mapping[str, Tensor]) -> None:
        """``w ← w ⊙ mask`` (after the optimizer step)."""
        for name, p in params.items():
            p.mul_(self.masks[name])


class HoldSupport(StepHookCallback):
    """For one fit: keep the zeros that ``params`` have at its start (e.g. the λ path's refit of each point).

    Args:
        params: the parameters whose zeros are held, by name (the same tensors the model trains).
    """

    def __init__(self, params: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.params = dict(params)
        self.mask: SupportMask | None = None

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.mask = SupportMask(self.params)
        for optimizer in trainer.optimizers:
            self.hook_optimizer(optimizer, self._after_optimizer_step)

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.mask is not None:
            self.mask.mask_grads_(self.params)

    def _after_optimizer_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self.mask is not None:
            self.mask.apply_(self.params)


__all__ = ["HoldSupport", "SupportMask"]
