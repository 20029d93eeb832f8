"""Compact a trained run: load its checkpoint, compact the model, check it, time it, write ``compact.pt``.

Files written into the run dir: ``compact.pt`` (``torch.load(path, weights_only=False)``: the compact ``net``, which
predicts in the target's units for regression, its ``input_shape``, ``kept_inputs`` and ``feature_names``, the report), ``compact.md`` (the per-layer table)
and ``compact.json`` (the report and the validation figures before/after).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightreg import run_folder
from lightreg.compact.core import CompactionReport, compact
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
def evaluate(model: nn.Module, batches: Any, kept: list[int] | None) -> dict[str, float]:
    """Validation loss (the model's own ``batch_loss``: standardized MSE for regression, as ``val/loss``) and accuracy
    (classification) or MAE in the target's units (regression) of a lightreg ``model`` in eval mode."""
    from lightreg.models import tasks

    model.eval()
    task = model.task
    n, loss_sum, hit_sum = 0, 0.0, 0.0
    for x, y in batches:
        out, loss, y = model.batch_loss((x if kept is None else x[:, kept], y))
        loss_sum += float(loss) * len(y)
        pred = tasks.predictions(task, out)
        target = tasks.target_for_metrics(task, y)
        hit_sum += float((pred == target).float().sum() if task != "regression" else (pred - target).abs().sum())
        n += len(y)
    return {"loss": loss_sum / n, ("mae" if task == "regression" else "acc"): hit_sum / n}


def in_target_units(model: nn.Module) -> nn.Module:
    """``model.net``, followed for regression by ``target_units``, a ``Linear(1, 1)`` holding ``y = out·std + mean``:
    a plain-torch network whose output is the prediction itself (the net alone predicts the standardized target)."""
    if getattr(model, "task", None) != "regression":
        return model.net
    units = nn.Linear(1, 1)
    with torch.no_grad():
        units.weight.fill_(float(model.target_std))
        units.bias.fill_(float(model.target_mean))
    return nn.Sequential(OrderedDict(net=model.net, target_units=units))


def compact_model(
    model: nn.Module, out_dir: Path, datamodule: Any = None, batch_size: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Compact a trained lightreg ``model`` and write the files into ``out_dir``; returns the summary figures
    (``compact/params_before``, ``compact/params_after``, ``compact/max_abs_diff`` on random inputs, and the
    validation figures before/after when a set-up ``datamodule`` is given)."""
    model = model.cpu().eval()
    names = getattr(datamodule, "feature_names", None) if datamodule is not None else None
    small, report = compact(model, feature_names=names)
    kept = report.kept_inputs
    x = torch.randn(batch_size, *model.input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        diff = float((model(x) - small(x if kept is None else x[:, kept])).abs().max())
    add_latency(report, model.net, small.net, x, kept)
    figures: dict[str, Any] = {
        "compact/params_before": report.params_before,
        "compact/params_after": report.params_after,
        "compact/max_abs_diff": diff,
    }
    if datamodule is not None:
        for label, module, k in (("before", model, None), ("after", small, kept)):
            for key, value in evaluate(module, datamodule.val_dataloader(), k).items():
                figures[f"compact/val_{key}_{label}"] = value
    out_dir = Path(out_dir)
    torch.save(
        {
            "net": in_target_units(small),
            "input_shape": tuple(small.input_shape),
            "kept_inputs": kept,
            "feature_names": report.feature_names if kept is not None else names,
            "task": model.task,
            "report": report.to_dict(),
        },
        out_dir / COMPACT_FILE,
    )
    (out_dir / TABLE_FILE).write_text(report.table() + "\n")
    (out_dir / REPORT_FILE).write_text(json.dumps({"figures": figures, **report.to_dict()}, indent=2) + "\n")
    return figures
