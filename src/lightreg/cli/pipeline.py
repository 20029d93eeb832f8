"""The one run pipeline: from a composed Hydra config to data, model, callbacks, loggers and trainer; fit; report.

Every run is built here: the single run (:func:`train`), each point of a λ path
(:mod:`lightreg.lambda_path.runner`), and the benchmarks. The pieces, in the order a run needs them:

- :func:`build_data` — the ``data`` group, prepared and set up for fitting;
- :func:`build_model` — the ``model`` group sized by the data and holding its units (classes, target scale);
- :func:`build_run_callbacks` — the ``callbacks`` group, one penalty callback per configured penalty, the sparsity
  monitor, and the guard (divergence);
- :func:`build_trainer` — the ``trainer`` group with those callbacks;
- :func:`fit` — ``trainer.fit`` in the run's thread setting, returning the run's status.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.accelerators import CPUAccelerator
from omegaconf import DictConfig, OmegaConf

from lightreg import run_folder
from lightreg.callbacks import ExactFinish, RegularizationCallback, SparsityMonitor
from lightreg.cli.build import build, build_callbacks
from lightreg.cli.checks import check_config
from lightreg.cli.guard import guard_callbacks, resume_callbacks, run_facts
from lightreg.cli.tracking import trackers
from lightreg.compact.run import compact_in_run
from lightreg.models import LightregModule, LogisticRegression
from lightreg.report import write_report
from lightreg.solvers import full_batch
from lightreg.solvers.kkt import kkt_report
from lightreg.solvers.threads import training_threads

log = logging.getLogger(__name__)


def build_data(cfg: DictConfig) -> L.LightningDataModule:
    """The ``data`` group's datamodule, prepared and set up for fitting (its split and units are fixed here)."""
    datamodule = build(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, datamodule: Any, **options: Any) -> LightregModule:
    """The ``model`` group sized by ``datamodule`` (``input_shape``, ``num_classes``, ``task``) with the
    ``optimizer`` group as its optimizer factory, holding the data's units from the start
    (:meth:`~lightreg.models.LightregModule.use_units_of`): the null model, λ_max and every full-batch figure are
    then computed in the units training uses. ``options`` go to the model's constructor."""
    model = build(
        cfg.model,
        "model",
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
        task=datamodule.task,
        optimizer=build(cfg.optimizer, "optimizer"),
        **options,
    )
    if isinstance(model, LightregModule):
        model.use_units_of(datamodule)
    return model


def build_run_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The ``callbacks`` group, one penalty callback per configured penalty, the sparsity monitor, the guard, and
    for a resume with ``resume.allow_changes=true`` the callback that applies the new optimizer settings."""
    return [*build_callbacks(cfg), *guard_callbacks(), *resume_callbacks(cfg)]


def build_trainer(
    cfg: DictConfig, callbacks: list[L.Callback], loggers: list[Any] | None = None, **options: Any
) -> L.Trainer:
    """The ``trainer`` group with ``callbacks`` and ``loggers`` (none: no logger); ``options`` override the group."""
    return build(cfg.trainer, "trainer", callbacks=callbacks, **{"logger": loggers or False, **options})


def build_loggers(cfg: DictConfig) -> list[Any]:
    """The ``logger`` group, each given the resolved config as its hyperparameters."""
    loggers = [build(node, f"logger.{name}") for name, node in (cfg.get("logger") or {}).items()]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # MLflowTracker flattens to dotted keys
    return loggers


def mark_status(exc: BaseException) -> str:
    """The status a run that ``exc`` ended has, set on ``exc`` as ``exc.status`` for whoever reports it:
    its own (``"diverged"``), ``"interrupted"`` for Ctrl-C (a ``KeyboardInterrupt``, or the ``SystemExit`` Lightning
    ends an interrupted fit with), else ``"failed"``."""
    if not hasattr(exc, "status"):
        exc.status = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed"  # type: ignore[attr-defined]
    return exc.status  # type: ignore[attr-defined]


def fit(
    cfg: DictConfig, trainer: L.Trainer, model: L.LightningModule, datamodule: Any, ckpt_path: str | None = None
) -> str:
    """``trainer.fit`` under the run's CPU thread rule (``num_threads``); returns ``"completed"`` or
    ``"interrupted"``. An exception propagates with its status set on it (:func:`mark_status`)."""
    try:
        on_cpu = isinstance(trainer.accelerator, CPUAccelerator)
        with training_threads(cfg.get("num_threads", "auto"), model, on_cpu):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except BaseException as exc:
        mark_status(exc)
        raise
    return "interrupted" if trainer.interrupted else "completed"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by ``cfg`` (checked first) and return the figures written to
    ``metrics.json``. A λ path (``+path=...``) goes through :func:`lightreg.cli.job.run`."""
    check_config(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_data(cfg)
    model = build_model(cfg, datamodule)
    callbacks = build_run_callbacks(cfg)
    loggers = build_loggers(cfg)
    trainer = build_trainer(cfg, callbacks, loggers)

    started = time.perf_counter()
    status = "failed"
    try:
        status = fit(cfg, trainer, model, datamodule, ckpt_path=cfg.get("ckpt_path"))
    except BaseException as exc:
        status = mark_status(exc)
        raise
    finally:
        metrics = collect_metrics(trainer, cfg, status, time.perf_counter() - started)
        if trainer.is_global_zero:
            run_folder.write_metrics(out_dir, metrics)
    if cfg.get("compact") and status == "completed" and trainer.is_global_zero:
        best = out_dir / run_folder.CHECKPOINTS / "best.ckpt"  # compact.pt is made from the best model
        metrics.update(compact_in_run(model, out_dir, datamodule, cfg.seed, best))
        run_folder.write_metrics(out_dir, metrics)
    monitored = any(isinstance(cb, SparsityMonitor) for cb in callbacks)
    if trainer.is_global_zero and monitored and (out_dir / run_folder.SPARSITY_FILE).is_file():
        write_report(out_dir)  # console table + out_dir/plots/*.png
    if trainer.is_global_zero:
        for tracker in trackers(loggers):
            tracker.log_run_files()  # metrics.json, plots, config and model as MLflow artifacts
    return metrics


def collect_metrics(trainer: L.Trainer, cfg: DictConfig, status: str, seconds: float) -> dict[str, Any]:
    """Final epoch-level figures (``train/*``, ``val/*``, penalties, sparsity) plus run facts."""
    figures: dict[str, Any] = run_folder.final_figures(trainer.callback_metrics)
    figures.update(
        status=status,
        epochs=trainer.current_epoch,
        global_step=trainer.global_step,
        seed=cfg.seed,
        fit_seconds=round(seconds, 3),
    )
    regs = RegularizationCallback.all_in(trainer)
    finisher = ExactFinish.of(trainer)
    if finisher is not None and finisher.report is not None:  # also after an early stop (no exact/* logged then)
        figures.update({f"exact/{key}": value for key, value in finisher.report.items()})
    figures.update(run_facts(trainer))  # classes (the original labels of the class indices)
    if status == "completed":
        figures.update(kkt_figures(trainer, regs))
    return figures


def kkt_figures(trainer: L.Trainer, regs: list[RegularizationCallback]) -> dict[str, float]:
    """``kkt_violation``, ``full_objective`` and ``full_loss`` of a finished fit (:func:`lightreg.solvers.kkt.kkt_report`):
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


__all__ = [
    "build_data",
    "build_loggers",
    "build_model",
    "build_run_callbacks",
    "build_trainer",
    "collect_metrics",
    "fit",
    "mark_status",
    "train",
]
