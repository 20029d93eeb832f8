"""Compact a trained run: load its checkpoint, compact the model, check it, time it, write ``compact.pt``.

Two ways, chosen by the model. A model whose ``forward`` is ``net(x)`` with an ``nn.Sequential`` ``net`` of
``torch.nn`` layers (``mlp``, ``cnn``, ``logistic``) goes through :func:`lightreg.compact.compact` (dead units,
filters and inputs removed, constant channels folded into the next bias) and is saved as a layer list. Any other
model (a ResNet, a skip path, a concatenation, a class that overrides ``forward``) is compacted whole:
:func:`~lightreg.compact.pruning.remove_zero_groups` removes its all-zero coupled channel groups, and ``compact.pt``
holds its class, hyperparameters and pruned tensors (:func:`lightreg.compact.saved.save_whole`). A model Torch-Pruning
cannot trace is refused in one line.

Files written into the run dir: ``compact.pt`` (the compact model with its preprocessing, a
:class:`~lightreg.models.standalone.StandaloneModel`: :func:`lightreg.compact.load`), ``compact.md`` (the table) and
``compact.json`` (the report and the figures, measured on the model loaded back from ``compact.pt``). ``compact.pt`` is
written only once the loaded model has given the original's outputs: never a model in part.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightreg import run_folder
from lightreg.compact.core import CompactionReport, compact
from lightreg.compact.pruning import OUTPUT_TOLERANCE, PruningReport, count, remove_zero_groups
from lightreg.compact.saved import describe, load, save, save_whole
from lightreg.errors import UserError, warn
from lightreg.models import tasks
from lightreg.models.standalone import StandaloneModel, forward_is_net
from lightreg.solvers.threads import intra_op_threads

TRACE_ROWS = 8
"""Rows of the input Torch-Pruning traces the model on (and checks the removal with; the reloaded model is checked on
the whole batch and on the validation data)."""
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


def forward_ms(
    before: nn.Module, after: nn.Module, x_before: Tensor, x_after: Tensor, repeats: int = 15
) -> tuple[float, float]:
    """CPU milliseconds per forward of ``before(x_before)`` and ``after(x_after)`` in one thread (the caller's thread
    count restored after), median of ``repeats``, the two timed in turn so that a busy machine slows both alike."""
    with intra_op_threads(1), torch.no_grad():
        before(x_before), after(x_after)  # warm-up
        samples: tuple[list[float], list[float]] = ([], [])
        for _ in range(repeats):
            for times, module, x in ((samples[0], before, x_before), (samples[1], after, x_after)):
                started = time.perf_counter()
                module(x)
                times.append(time.perf_counter() - started)
        return 1000 * statistics.median(samples[0]), 1000 * statistics.median(samples[1])


def evaluate(outputs: Tensor, y: Tensor, task: str, target_scale: tuple[float, float]) -> dict[str, float]:
    """Validation loss (as ``val/loss``: the data loss, standardized MSE for regression) and accuracy
    (classification) or MAE in the target's units (regression) of ``outputs`` (logits, or predictions in target
    units) for the data module's targets ``y``."""
    mean, std = target_scale
    if task == "regression":
        loss = tasks.data_loss(task, (outputs - mean) / std, (y - mean) / std)
    else:
        loss = tasks.data_loss(task, outputs, y)
    pred, target = tasks.predictions(task, outputs), tasks.target_for_metrics(task, y)
    hits = (pred == target).float() if task != "regression" else (pred - target).abs()
    return {"loss": float(loss), ("mae" if task == "regression" else "acc"): float(hits.mean())}


@torch.no_grad()
def validation_outputs(outputs_of: Callable[[Tensor], Tensor], batches: Any) -> tuple[Tensor, Tensor]:
    """``outputs_of(x)`` over the data module's (standardized) validation ``batches``, and their targets."""
    pairs = [(outputs_of(x), y) for x, y in batches]
    return torch.cat([o for o, _ in pairs]), torch.cat([y for _, y in pairs])


def layer_list(model: nn.Module) -> bool:
    """Whether ``model`` is compacted as a layer list: its ``forward`` is ``net(x)`` and ``net`` an
    ``nn.Sequential`` of ``torch.nn`` layers."""
    if not forward_is_net(model) or not isinstance(getattr(model, "net", None), nn.Sequential):
        return False
    try:
        describe(model.net)
    except UserError:
        return False
    return True


def pruning_table(report: PruningReport) -> str:
    """A Markdown table of the channels per root layer before → after (the layers that lost some first)."""
    rows = sorted(report.channels.items(), key=lambda item: (item[1][0] == item[1][1], item[0]))
    lines = ["| layer | channels before | channels after |", "| --- | ---: | ---: |"]
    lines += [f"| {name or '(model)'} | {before} | {after} |" for name, (before, after) in rows]
    lines.append(f"\n{report.removed_groups} zero channel(s) removed")
    return "\n".join(lines)


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


def _compact_layers(model: nn.Module, x: Tensor, path: Path) -> tuple[list[int] | None, str, dict[str, Any]]:
    """The layer-list way: compact ``net``, write ``path``; the kept inputs, the table and the report."""
    small, report = compact(model, feature_names=model.feature_names)
    kept = report.kept_inputs
    add_latency(report, model.net, small.net, x, kept)
    save(compact_standalone(model, small, kept), path, report.to_dict())
    return kept, report.table(), {"method": "layers", **report.to_dict()}


def _compact_whole(model: nn.Module, x: Tensor, path: Path) -> tuple[None, str, dict[str, Any]]:
    """The whole-model way: remove the all-zero coupled channel groups, write ``path``; the table and report."""
    pruned, report = remove_zero_groups(model, x[:TRACE_ROWS])
    save_whole(pruned, path, report.as_dict())
    return None, pruning_table(report), {"method": "coupled_groups", **report.as_dict()}


def compact_model(
    model: nn.Module, out_dir: Path, datamodule: Any = None, batch_size: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Compact a trained lightreg ``model``, write the files into ``out_dir`` and return the figures, all measured on
    the model loaded back from ``compact.pt`` (raw inputs), against the original's
    :class:`~lightreg.models.standalone.StandaloneModel`: ``compact/params_before|after``, ``compact/macs_before|after``
    (multiply-accumulates per sample, Torch-Pruning's counter), ``compact/latency_ms_before|after`` (CPU, one thread,
    a batch of ``batch_size``), ``compact/max_abs_diff`` (largest output difference on ``batch_size`` random rows around
    the training means) and, with a set-up ``datamodule``, ``compact/val_max_abs_diff`` and the validation figures
    before/after. A model that cannot be compacted whole and right is a ``UserError``; nothing is written then."""
    model = model.cpu().eval()
    if model.feature_names is None and getattr(datamodule, "feature_names", None) is not None:
        names = list(datamodule.feature_names)
        model.feature_names = names if len(names) == model.num_inputs else None
    full = StandaloneModel.of(model)
    x = torch.randn(batch_size, *model.input_shape, generator=torch.Generator().manual_seed(seed))
    raw = x * full.feature_std + full.feature_mean
    out_dir = Path(out_dir)
    path, partial = out_dir / COMPACT_FILE, out_dir / f"{COMPACT_FILE}.partial"
    try:
        kept, table, details = (_compact_layers if layer_list(model) else _compact_whole)(model, x, partial)
        loaded = load(partial)
        with torch.no_grad():
            reference, output = full(raw), loaded(raw if kept is None else raw[:, kept])
        diff = float((reference - output).abs().max())
        if diff > OUTPUT_TOLERANCE * (1 + float(reference.abs().max())):
            raise UserError(f"the compact model reloaded from compact.pt differs from the trained one by {diff:.3g}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    raw_kept = raw if kept is None else raw[:, kept]
    params_before, macs_before = count(full, raw[:1])
    params_after, macs_after = count(loaded, raw_kept[:1])
    ms_before, ms_after = forward_ms(full, loaded, raw, raw_kept)
    figures: dict[str, Any] = {
        "compact/method": details["method"],
        "compact/params_before": params_before,
        "compact/params_after": params_after,
        "compact/macs_before": macs_before,
        "compact/macs_after": macs_after,
        "compact/latency_ms_before": ms_before,
        "compact/latency_ms_after": ms_after,
        "compact/max_abs_diff": diff,
    }
    if datamodule is not None:
        scale = (float(model.target_mean), float(model.target_std))

        def compact_outputs(x: Tensor) -> Tensor:
            raw = x * full.feature_std + full.feature_mean
            return loaded(raw if kept is None else raw[:, kept])

        before, y = validation_outputs(model, datamodule.val_dataloader())
        after, _ = validation_outputs(compact_outputs, datamodule.val_dataloader())
        figures["compact/val_max_abs_diff"] = float((before - after).abs().max())
        for label, outputs in (("before", before), ("after", after)):
            for key, value in evaluate(outputs, y, model.task, scale).items():
                figures[f"compact/val_{key}_{label}"] = value
    os.replace(partial, path)  # checked: only now does compact.pt appear
    summary = (
        f"\nparameters {params_before} → {params_after}, MACs per sample {macs_before} → {macs_after}, "
        f"CPU ms per batch of {batch_size} (one thread) {ms_before:.3f} → {ms_after:.3f}"
    )
    (out_dir / TABLE_FILE).write_text(table + "\n" + summary + "\n")
    (out_dir / REPORT_FILE).write_text(json.dumps({"figures": figures, **details}, indent=2) + "\n")
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
