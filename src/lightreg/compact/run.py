"""Compact a trained run: load its checkpoint, compact the model, check it, time it, write ``compact.pt``.

Files written into the run dir: ``compact.pt`` (the compact model with its preprocessing, a
:class:`~lightreg.models.standalone.StandaloneModel` of the kept inputs: :func:`lightreg.compact.load`),
``compact.md`` (the per-layer table) and ``compact.json`` (the report and the validation figures before/after, measured
on the model loaded back from ``compact.pt``). Only a model whose ``forward`` is ``net(x)`` is compacted; another one is
refused in one line.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightreg import run_folder
from lightreg.compact.core import CompactionReport, compact
from lightreg.compact.saved import load, save
from lightreg.errors import UserError, warn
from lightreg.models import tasks
from lightreg.models.standalone import StandaloneModel, forward_is_net, forward_owner
from lightreg.solvers.threads import intra_op_threads

COMPACT_FILE, TABLE_FILE, REPORT_FILE = run_folder.COMPACT_MODEL, run_folder.COMPACT_TABLE, run_folder.COMPACT_REPORT


def layer_latency(net: nn.Module, x: Tensor, repeats: int = 20) -> dict[str, float]:
    """CPU milliseconds per forward of each child of ``net`` on its own input for batch ``x`` (median of
    ``repeats``), in one thread; ``{"": ms}`` for a network that is not an ``nn.Sequential``."""
    with intra_op_threads(1), torch.no_grad():
        stages = list(net.named_children()) if isinstance(net, nn.Sequential) else [("", net)]
        times: dict[str, float] = {}
        for name, module in stages:
            module(x)  # warm-up
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                out = module(x)
                samples.append(time.perf_counter() - started)
            times[name] = 1000 * statistics.median(samples)
            x = out
        return times


def add_latency(
    report: CompactionReport, before: nn.Module, after: nn.Module, x: Tensor, kept: list[int] | None
) -> None:
    """Fill the report's ``ms_before`` / ``ms_after`` columns (batch ``x``, CPU, one thread)."""
    t_before = layer_latency(before, x)
    t_after = layer_latency(after, x if kept is None else x[:, kept])
    for row in report.layers:
        key = row.name.removeprefix("net.") if row.name != "model" else ""
        row.ms_before, row.ms_after = t_before.get(key), t_after.get(key)


@torch.no_grad()
def evaluate(
    outputs_of: Callable[[Tensor], Tensor], task: str, target_scale: tuple[float, float], batches: Any
) -> dict[str, float]:
    """Validation loss (as ``val/loss``: the data loss, standardized MSE for regression) and accuracy
    (classification) or MAE in the target's units (regression) of the outputs ``outputs_of(x)`` (logits, or
    predictions in target units) over ``batches`` of the data module's (standardized) ``(x, y)``."""
    mean, std = target_scale
    n, loss_sum, hit_sum = 0, 0.0, 0.0
    for x, y in batches:
        out = outputs_of(x)
        if task == "regression":
            loss = tasks.data_loss(task, (out - mean) / std, (y - mean) / std)
        else:
            loss = tasks.data_loss(task, out, y)
        loss_sum += float(loss) * len(y)
        pred = tasks.predictions(task, out)
        target = tasks.target_for_metrics(task, y)
        hit_sum += float((pred == target).float().sum() if task != "regression" else (pred - target).abs().sum())
        n += len(y)
    return {"loss": loss_sum / n, ("mae" if task == "regression" else "acc"): hit_sum / n}


def refuse_whole(model: nn.Module) -> None:
    """One-line refusal for a model whose class overrides ``forward``: its output depends on more than ``net``, so
    a compact ``net`` would not be the model."""
    if not forward_is_net(model):
        owner = forward_owner(model)
        raise UserError(
            f"compaction handles models whose forward is net(x); {owner.__qualname__}.forward uses more: "
            f"{type(model).__name__} overrides it in {owner.__module__}; use lightreg predict/export on the whole model, "
            "or compact a plain nn.Sequential yourself with lightreg.compact(net, input_shape=...)"
        )


def compact_standalone(model: nn.Module, small: nn.Module, kept: list[int] | None) -> StandaloneModel:
    """The compact model with its preprocessing: ``small.net`` reading the kept inputs (features, or input
    channels of a convolution) with their training means and standard deviations."""
    full = StandaloneModel.of(model)
    mean, std, names = full.feature_mean, full.feature_std, full.feature_names
    if kept is not None:
        mean, std = mean[kept], std[kept]
        names = [names[i] for i in kept] if names is not None else None
    return StandaloneModel(
        small.net, full.task, tuple(small.input_shape), mean, std, float(model.target_mean), float(model.target_std),
        full.classes, names,
    ).eval()  # fmt: skip


def compact_model(
    model: nn.Module, out_dir: Path, datamodule: Any = None, batch_size: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Compact a trained lightreg ``model``, write the files into ``out_dir`` and return the summary figures, all
    measured on the model loaded back from ``compact.pt`` (raw inputs): ``compact/params_before``,
    ``compact/params_after``, ``compact/max_abs_diff`` (largest output difference on random rows around the training
    means) and, with a set-up ``datamodule``, the validation figures before/after. A model whose ``forward`` is more
    than ``net(x)`` is refused (``UserError``)."""
    refuse_whole(model)
    model = model.cpu().eval()
    if model.feature_names is None and getattr(datamodule, "feature_names", None) is not None:
        names = list(datamodule.feature_names)
        model.feature_names = names if len(names) == model.num_inputs else None
    small, report = compact(model, feature_names=model.feature_names)
    kept = report.kept_inputs
    out_dir = Path(out_dir)
    path = save(compact_standalone(model, small, kept), out_dir / COMPACT_FILE, report.to_dict())
    loaded = load(path)
    full = StandaloneModel.of(model)
    x = torch.randn(batch_size, *model.input_shape, generator=torch.Generator().manual_seed(seed))
    raw = x * full.feature_std + full.feature_mean
    with torch.no_grad():
        diff = float((full(raw) - loaded(raw if kept is None else raw[:, kept])).abs().max())
    add_latency(report, model.net, small.net, x, kept)
    figures: dict[str, Any] = {
        "compact/params_before": report.params_before,
        "compact/params_after": sum(p.numel() for p in loaded.parameters()),
        "compact/max_abs_diff": diff,
    }
    if datamodule is not None:
        scale = (float(model.target_mean), float(model.target_std))

        def compact_outputs(x: Tensor) -> Tensor:
            raw = x * full.feature_std + full.feature_mean
            return loaded(raw if kept is None else raw[:, kept])

        for label, outputs_of in (("before", model), ("after", compact_outputs)):
            for key, value in evaluate(outputs_of, model.task, scale, datamodule.val_dataloader()).items():
                figures[f"compact/val_{key}_{label}"] = value
    (out_dir / TABLE_FILE).write_text(report.table() + "\n")
    (out_dir / REPORT_FILE).write_text(json.dumps({"figures": figures, **report.to_dict()}, indent=2) + "\n")
    return figures


def compact_in_run(model: nn.Module, out_dir: Path, datamodule: Any, seed: int, best: Path | None) -> dict[str, Any]:
    """``compact=true`` at the end of a run: compact the best checkpoint's model (``best``, when the run saved one;
    else ``model``, the final one). A refusal does not fail the run: it is said in one line and recorded as
    ``compact/status``; otherwise ``compact/status`` is ``done`` and ``compact/source`` says which model."""
    source = "final"
    if best is not None and Path(best).is_file():
        model, source = type(model).load_from_checkpoint(best, map_location="cpu"), "best"
    try:
        figures = compact_model(model, out_dir, datamodule=datamodule, seed=seed)
    except UserError as exc:
        warn(f"compact=true: not compacted: {exc}")
        return {"compact/status": f"refused: {exc}"}
    return {"compact/status": "done", "compact/source": source, **figures}
