"""Activity regularization (Keras' ``activity_regularizer``): a penalty on the outputs of chosen layers."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from typing_extensions import override

from lightreg.errors import UserError

NORMS = ("l1", "l2")


class ActivityRegularization(Callback):
    """Add ``λ · (1/B) Σ_b Σ_j |a_bj|`` (``norm="l1"``) or ``λ · (1/B) Σ_b Σ_j a_bj²`` (``norm="l2"``) to the
    training loss, for the output ``a`` (batch of ``B``) of every module whose name matches a glob of ``modules``.

    Units: a sum over the units of a sample (every channel and position of a conv output), averaged over the
    batch, times λ: the same as Keras' ``activity_regularizer=L1(λ)`` / ``L2(λ)`` (Keras divides the summed
    activity by the batch size). Module outputs are taken by forward hooks during ``training_step`` only (never
    in validation), added to the loss through :meth:`LightregModule.add_loss_term` (so they back-propagate like
    the data loss) and logged as ``train/penalty/<name>`` (default ``activity``) and in ``train/penalty``.

    Args:
        strength: λ >= 0 (finite).
        modules: fnmatch globs over ``named_modules()`` names, e.g. ``["net.act*"]``; each must match a module.
        norm: ``l1`` (sparse activations) | ``l2``.
        name: label of the term in the logs.
    """

    def __init__(self, strength: float, modules: str | list[str], norm: str = "l1", name: str = "activity") -> None:
        if (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not math.isfinite(strength)
            or strength < 0
        ):
            raise UserError(f"activity strength (lambda) must be a finite number >= 0, got {strength!r}")
        patterns = [modules] if isinstance(modules, str) else list(modules or [])
        if not patterns:
            raise UserError("ActivityRegularization needs modules=<glob(s)> over module names, e.g. modules=[net.act*]")
        if norm not in NORMS:
            raise UserError(f"activity norm must be one of {NORMS}, got {norm!r}")
        self.strength = float(strength)
        self.patterns = patterns
        self.norm = norm
        self.name = name
        self._handles: list[Any] = []
        self._recording = False

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name, modules=self.patterns)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "add_loss_term"):
            raise UserError(
                f"ActivityRegularization needs a lightreg.models.LightregModule, got {type(pl_module).__name__}"
            )
        named = [(n, m) for n, m in pl_module.named_modules() if n]
        for pattern in self.patterns:
            if not any(fnmatchcase(n, pattern) for n, _ in named):
                available = ", ".join(n for n, _ in named)
                raise UserError(f"activity modules pattern {pattern!r} matches no module; available: {available}")
        self._remove_hooks()
        self.modules = {n: m for n, m in named if any(fnmatchcase(n, p) for p in self.patterns)}
        for module in self.modules.values():
            self._handles.append(module.register_forward_hook(self._hook(pl_module)))

    def _hook(self, pl_module: L.LightningModule) -> Any:
        def record(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if self._recording and module.training and self.strength > 0:
                pl_module.add_loss_term(self.name, self.strength * activity(output, self.norm))

        return record

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._recording = True

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._recording = False

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._remove_hooks()


def activity(output: Tensor, norm: str = "l1") -> Tensor:
    """``(1/B) Σ_b Σ_j |a_bj|`` (``l1``) or ``(1/B) Σ_b Σ_j a_bj²`` (``l2``) of a batch ``output`` (first dim = B)."""
    values = output.abs() if norm == "l1" else output.square()
    return values.sum() / output.shape[0]
