"""The sparsity monitor: how many weights are exactly zero, which units died and which inputs are still used."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from typing_extensions import override

from lightreg import run_folder
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.errors import UserError
from lightreg.penalties import select_parameters
from lightreg.weight_stats import (
    SCHEMA_VERSION,
    TensorSparsity,
    feature_selection,
    input_weight,
    magnitude_histogram,
    measure,
    totals,
)


class SparsityMonitor(Callback):
    """Measure the sparsity of the penalized weights at every training-epoch end, log it, and write ``sparsity.json``.

    Monitored tensors: ``include``/``exclude`` globs when given, else the union of the parameters of every
    :class:`~lightreg.callbacks.RegularizationCallback` in the trainer, else every weight with ``ndim >= 2``.
    Logged through ``pl_module.log`` (so every Lightning logger and ``metrics.json`` get them), per epoch:

    - ``sparsity/total``: ``Σ #{w == 0} / Σ numel`` over the monitored tensors; ``sparsity/<param>`` per tensor;
    - ``sparsity/near_zero``: ``Σ #{|w| <= atol} / Σ numel``; ``sparsity/nnz``: number of non-zero entries;
    - ``sparsity/dead_units`` (all-zero rows / conv filters), ``sparsity/dropped_inputs`` (all-zero columns / input
      channels), summed over tensors;
    - ``sparsity/churn``: entries whose zero / non-zero status changed since the previous epoch end (from epoch 1);
    - ``features/selected``: inputs of the first layer with a non-zero column (:func:`lightreg.weight_stats.input_weight`).

    Weights are identical on every rank (DDP), so every rank computes the same figures without a collective. The
    cost is a few reads of the monitored weights once per epoch, none per step unless ``every_n_steps`` asks for
    ``sparsity/total_step`` every n optimizer steps. At the end of training, rank zero writes ``filename`` into
    ``output_dir`` (default: the first logger's folder, ``trainer.log_dir``, beside its ``metrics.csv`` or event
    files; ``trainer.default_root_dir`` without a logger): the final per-layer figures, the selected features
    (with the datamodule's ``feature_names``), log-binned ``|w|`` histograms, and the per-epoch history (sparsity
    and the epoch's ``train/*`` and ``val/*`` figures). :mod:`lightreg.report` renders it: ``lightreg report FOLDER``.

    Args:
        atol: tolerance of ``near_zero`` (``|w| <= atol``), >= 0, in weight units.
        include: glob patterns over ``named_parameters()`` names to monitor instead of the penalized ones.
        exclude: glob patterns removed from ``include``'s selection.
        input_layer: name of the weight whose columns are the input features (default: the first weight).
        every_n_steps: also log ``sparsity/total_step`` every n optimizer steps (0 = epoch ends only).
        histogram_bins: number of log-spaced bins of the final ``|w|`` histograms.
        filename: file written at the end of training; ``None`` writes nothing.
        output_dir: folder of ``filename``; ``None`` = ``trainer.log_dir`` (the logger's folder, so each run keeps
            its own), or ``trainer.default_root_dir`` without a logger.
    """

    def __init__(
        self,
        atol: float = 1e-4,
        include: str | list[str] | None = None,
        exclude: str | list[str] | None = None,
        input_layer: str | None = None,
        every_n_steps: int = 0,
        histogram_bins: int = 40,
        filename: str | None = run_folder.SPARSITY_FILE,
        output_dir: str | Path | None = None,
    ) -> None:
        if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
            raise UserError(f"atol must be a finite number >= 0 (a tolerance on |w|), got {atol!r}")
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 0:
            raise UserError(f"every_n_steps must be an integer >= 0 (0 = epoch ends only), got {every_n_steps!r}")
        if isinstance(histogram_bins, bool) or not isinstance(histogram_bins, int) or histogram_bins < 1:
            raise UserError(f"histogram_bins must be a positive integer, got {histogram_bins!r}")
        if exclude is not None and include is None:
            raise UserError(
                f"exclude={exclude!r} needs include (e.g. include='*weight'): without include the monitor watches "
                "the penalized weights"
            )
        self.atol = float(atol)
        self.include = include
        self.exclude = exclude
        self.input_layer = input_layer
        self.every_n_steps = every_n_steps
        self.histogram_bins = histogram_bins
        self.filename = filename
        self.output_dir = output_dir
        self.params: dict[str, nn.Parameter] = {}
        self.history: list[dict[str, Any]] = []
        self._masks: dict[str, Tensor] = {}
        self._input: tuple[str, nn.Parameter] | None = None
        self._last_step_logged = -1

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(include=self.include, exclude=self.exclude)

    # -- what to watch -----------------------------------------------------------------------------------------
    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        named = list(pl_module.named_parameters())
        if self.include is not None:
            chosen = dict(select_parameters(pl_module, self.include, self.exclude))
        else:
            penalized = {id(p) for cb in RegularizationCallback.all_in(trainer) for p in cb.params.values()}
            chosen = {n: p for n, p in named if id(p) in penalized} or dict(select_parameters(pl_module))
        self.params = chosen
        by_name = dict(named)
        layer = self.input_layer or input_weight(named)
        if layer is not None and layer not in by_name:
            raise UserError(f"input_layer {layer!r} is not a parameter name; available: {', '.join(by_name)}")
        self._input = (layer, by_name[layer]) if layer is not None and by_name[layer].ndim >= 2 else None
        self._masks = {}

    # -- figures -------------------------------------------------------------------------------------------------
    def measure(self) -> tuple[list[TensorSparsity], dict[str, Any]]:
        """Per-tensor figures and totals now (the churn against the previous call), plus ``features_selected``."""
        stats, self._masks = measure(self.params, self.atol, self._masks)
        total: dict[str, Any] = totals(stats)
        if self._input is not None:
            total["features_selected"] = len(feature_selection(*self._input).selected)
        return stats, total

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._complete_last_record(trainer)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        stats, total = self.measure()
        logged = {
            "sparsity/total": total["zero_fraction"],
            "sparsity/near_zero": total["near_zero_fraction"],
            "sparsity/nnz": total["nnz"],
            "sparsity/dead_units": total["dead_units"],
            "sparsity/dropped_inputs": total["dropped_inputs"],
            **{f"sparsity/{s.name}": s.zero_fraction for s in stats},
        }
        if total["churn"] is not None:
            logged["sparsity/churn"] = total["churn"]
        if "features_selected" in total:
            logged["features/selected"] = total["features_selected"]
        for key, value in logged.items():  # the same on every DDP rank (replicated weights): the sync only quiets DDP
            pl_module.log(key, float(value), on_step=False, on_epoch=True, sync_dist=True)
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                "step": trainer.global_step,
                "total": total,
                "layers": {
                    s.name: {"zero_fraction": s.zero_fraction, "near_zero_fraction": s.near_zero_fraction}
                    for s in stats
                },
                "metrics": {},
            }
        )

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and step != self._last_step_logged:
            self._last_step_logged = step
            stats, _ = measure(self.params, 0.0)
            pl_module.log("sparsity/total_step", totals(stats)["zero_fraction"], on_step=True, on_epoch=False)

    def _complete_last_record(self, trainer: L.Trainer) -> None:
        """Attach the epoch-level ``train/*`` and ``val/*`` figures to the last epoch's record (called at the next
        epoch's start and at the end): the module logs ``train/*`` in its own ``on_train_epoch_end``, which Lightning
        runs after the callbacks'."""
        if self.history and not self.history[-1]["metrics"]:
            self.history[-1]["metrics"] = run_folder.final_figures(trainer.callback_metrics, ("train/", "val/"))

    # -- the end-of-run file ------------------------------------------------------------------------------------------
    def summary(self, trainer: L.Trainer) -> dict[str, Any]:
        """Everything ``sparsity.json`` holds (see the class docstring)."""
        stats, total = self.measure()
        names = getattr(trainer.datamodule, "feature_names", None) if trainer.datamodule is not None else None
        features = feature_selection(*self._input, names=names).as_dict() if self._input is not None else None
        if features is not None and trainer.lightning_module is not None:
            features["input_shape"] = list(getattr(trainer.lightning_module, "input_shape", ()) or ())
        return {
            "version": SCHEMA_VERSION,
            "atol": self.atol,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "penalties": [_describe(cb) for cb in RegularizationCallback.all_in(trainer)],
            "total": total,
            "layers": [s.as_dict() for s in stats],
            "features": features,
            "histograms": {n: magnitude_histogram(p, self.histogram_bins).as_dict() for n, p in self.params.items()},
            "history": self.history,
        }

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._complete_last_record(trainer)
        if self.filename is None or not self.params:
            return
        summary = self.summary(trainer)
        if trainer.is_global_zero:
            folder = Path(self.output_dir or (trainer.log_dir if trainer.loggers else None) or trainer.default_root_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / self.filename).write_text(json.dumps(summary, indent=1) + "\n")

    # -- checkpointing ------------------------------------------------------------------------------------------------
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Complete the last epoch's record before it is saved (Lightning takes ``state_dict()`` just before this
        hook), so that a run resumed from this checkpoint keeps that epoch's losses in its history."""
        self._complete_last_record(trainer)
        checkpoint.setdefault("callbacks", {})[self.state_key] = self.state_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def _describe(callback: RegularizationCallback) -> dict[str, Any]:
    """Name, penalty, strength, mode and parameter names of a regularization callback."""
    return {
        "name": callback.name,
        "penalty": repr(callback.penalty),
        "strength": callback.strength,
        "mode": callback.mode,
        "params": list(callback.params),
    }
