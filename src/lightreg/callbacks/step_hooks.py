"""A callback base for optimizer step post-hooks that never outlive the fit that registered them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch.optim import Optimizer
from typing_extensions import override


class StepHookCallback(Callback):
    """Subclasses call :meth:`hook_optimizer` (usually in ``on_fit_start``) to run a hook after every
    ``optimizer.step()``; the hooks are removed at the end of the fit or when it fails, so a model and optimizer reused
    by another Trainer (a λ path, a test) carry none of them."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def hook_optimizer(self, optimizer: Optimizer, hook: Callable[[Optimizer, Any, Any], None]) -> None:
        """Run ``hook(optimizer, args, kwargs)`` after each ``optimizer.step()`` until the fit ends."""
        self._handles.append(optimizer.register_step_post_hook(hook))

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()


__all__ = ["StepHookCallback"]
