"""``train(cfg)``: instantiate data, model, callbacks, loggers and trainer from a Hydra config; fit; report."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.accelerators import CPUAccelerator
from omegaconf import DictConfig, OmegaConf

from lightreg import full_batch
from lightreg.building import build, build_callbacks
from lightreg.callbacks import RegularizationCallback, SparsityMonitor
from lightreg.compact.run import compact_model
from lightreg.config_checks import check_config
from lightreg.kkt import kkt_report
from lightreg.lambda_path.runner import train_path
from lightreg.models import LogisticRegression
from lightreg.report import write_report
from lightreg.report.rundir import SPARSITY_FILE
from lightreg.run_guard import guard_callbacks, run_facts
from lightreg.threads import training_threads

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by ``cfg`` and return the figures written to ``metrics.json``."""
    check_config(cfg)
    if cfg.get("path") is not None:  # +path=geometric: a warm-started λ path (lightreg.lambda_path)
        return train_path(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build(
        cfg.model,
        "model",
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
        task=datamodule.task,
        optimizer=build(cfg.optimizer, "optimizer"),
    )
    callbacks = [*build_callbacks(cfg), *guard_callbacks(cfg)]
    loggers = [build(node, f"logger.{name}") for name, node in (cfg.get("logger") or {}).items()]
    trainer: L.Trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    started = time.perf_counter()
    status = "failed"
    try:
        on_cpu = isinstance(trainer.accelerator, CPUAccelerator)
        with training_threads(cfg.get("num_threads", "auto"), model, on_cpu):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        status = "interrupted" if trainer.interrupted else "completed"
    except Exception as exc:
        status = getattr(exc, "status", status)  # "diverged" (lightreg.run_guard.Diverged), else "failed"
        raise
    finally:
        metrics = collect_metrics(trainer, cfg, status, time.perf_counter() - started)
        if trainer.is_global_zero:
            (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if cfg.get("compact") and status == "completed" and trainer.is_global_zero:
        metrics.update(compact_model(model, out_dir, datamodule=datamodule, seed=cfg.seed))
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    monitored = any(isinstance(cb, SparsityMonitor) for cb in callbacks)
    if trainer.is_global_zero and monitored and (out_dir / SPARSITY_FILE).is_file():
        write_report(out_dir)  # console table + out_dir/plots/*.png
    return metrics


def collect_metrics(trainer: L.Trainer, cfg: DictConfig, status: str, seconds: float) -> dict[str, Any]:
    """Final epoch-level figures (``train/*``, ``val/*``, penalties, sparsity) plus run facts."""
    figures: dict[str, Any] = {
        name: float(value)
        for name, value in trainer.callback_metrics.items()
        if not name.endswith("_step") and "/penalty/" not in name and value.numel() == 1
    }
    figures.update(
        status=status,
        epochs=trainer.current_epoch,
        global_step=trainer.global_step,
        seed=cfg.seed,
        fit_seconds=round(seconds, 3),
    )
    regs = RegularizationCallback.all_in(trainer)
    for cb in regs:
        if cb.finish_report is not None:  # also when the finish ran after an early stop (no exact/* logged then)
            figures.update({f"exact/{key}": value for key, value in cb.finish_report.items()})
    figures.update(run_facts(trainer))  # classes (the original labels of the class indices)
    if status == "completed":
        figures.update(kkt_figures(trainer, regs))
    return figures


def kkt_figures(trainer: L.Trainer, regs: list[RegularizationCallback]) -> dict[str, float]:
    """``kkt_violation``, ``full_objective`` and ``full_loss`` of a finished fit (:func:`lightreg.kkt.kkt_report`):
    for convex models (:class:`~lightreg.models.LogisticRegression`) and runs with a ``mode: exact`` penalty, in a
    single process (each DDP rank only sees its shard); empty otherwise, and after a ``refit_epochs`` refit, which
    leaves the penalized optimum on purpose (``exact/kkt_violation`` is the residual before it). Penalties at their
    final strength; one extra pass over the training set."""
    model, datamodule = trainer.lightning_module, trainer.datamodule
    if datamodule is None or trainer.world_size > 1 or any(cb.support is not None for cb in regs):
        return {}
    if not (isinstance(model, LogisticRegression) or any(cb.mode == "exact" for cb in regs)):
        return {}
    terms = [cb.as_term(trainer.current_epoch) for cb in regs]
    batches = full_batch.materialize(datamodule.train_dataloader(), next(model.parameters()))
    return kkt_report(model, batches, terms)
