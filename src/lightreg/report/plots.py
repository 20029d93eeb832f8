"""Matplotlib figures of a run (or of several runs), built from ``sparsity.json`` alone and saved as PNG.

Uses :class:`matplotlib.figure.Figure` directly (no pyplot): no GUI backend, no global state, safe in notebooks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

from lightreg.report.run_data import RunData

MAX_HISTOGRAMS = 12
MAX_LABELLED_INPUTS = 40
SELECTED, DROPPED, ZERO = "tab:blue", "tab:gray", "tab:red"
LOSS_KEYS = ("train/loss", "val/loss", "train/objective", "train/penalty")


def _epochs(history: Sequence[dict[str, Any]]) -> list[int]:
    return [record["epoch"] for record in history]


def _marker(n: int) -> str | None:
    return "o" if n <= 30 else None


def _tick_style(count: int) -> dict[str, Any]:
    """Input names on an x axis: level when few, slanted and right-aligned under their tick when many."""
    return {"rotation": 45, "ha": "right", "rotation_mode": "anchor", "fontsize": 8} if count > 12 else {}


def _integer_epochs(ax: Axes, epochs: Sequence[int] = ()) -> None:
    """Whole epochs on the x axis; at least one epoch wide (one epoch alone would get a ±0.05 axis)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs and max(epochs) - min(epochs) < 1:
        ax.set_xlim(min(epochs) - 1, max(epochs) + 1)


def sparsity_over_epochs(run: RunData) -> Figure:
    """Fraction of exact zeros per monitored tensor (thin lines) and in total (black), and the total fraction with
    ``|w| <= atol`` (dashed), at each epoch end, in percent."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    history = run.history
    epochs = _epochs(history)
    layers = list(history[-1]["layers"]) if history else []
    for name in layers:
        ax.plot(
            epochs,
            [100 * r["layers"].get(name, {}).get("zero_fraction", np.nan) for r in history],
            lw=1,
            alpha=0.8,
            marker=_marker(len(epochs)),
            ms=3,
            label=name if len(layers) <= 10 else None,
        )
    ax.plot(epochs, [100 * r["total"]["zero_fraction"] for r in history], color="black", lw=2.5, label="total (= 0)")
    ax.plot(
        epochs,
        [100 * r["total"]["near_zero_fraction"] for r in history],
        color="black",
        lw=1.5,
        ls="--",
        label=f"total (|w| <= {run.sparsity['atol']:g})",
    )
    ax.set(
        xlabel="epoch",
        ylabel="% of entries",
        ylim=(-2, 102),
        title=f"Sparsity over epochs ({len(layers)} monitored tensors)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _integer_epochs(ax, epochs)
    return fig


def _histogram_panel(ax: Axes, name: str, hist: dict[str, Any], atol: float) -> None:
    total = sum(hist["counts"]) + hist["zeros"]
    ax.set_xscale("log")
    if hist["counts"]:
        ax.stairs(hist["counts"], hist["edges"], fill=True, color=SELECTED, alpha=0.8)
        low, high = min(hist["edges"][0], atol), max(hist["edges"][-1], atol)
    else:
        low, high = atol, atol
    ax.set_xlim(low / 2, high * 2)  # the atol line always in view
    ax.axvline(atol, color="black", ls="--", lw=1, label=f"atol = {atol:g}")
    ax.xaxis.set_major_locator(LogLocator(numticks=4))  # at most ~4 decades labelled: no overlapping labels
    ax.xaxis.set_minor_formatter(NullFormatter())
    share = 100 * hist["zeros"] / total if total else 0.0
    ax.text(
        0.02,
        0.95,
        f"exact zeros: {hist['zeros']} ({share:.1f}%)",
        transform=ax.transAxes,
        va="top",
        fontsize=8,
        color=ZERO,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": ZERO},
    )
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("|w| (log scale)", fontsize=8)
    ax.set_ylabel("entries", fontsize=8)
    ax.tick_params(which="both", labelsize=7)


def weight_histograms(run: RunData) -> Figure:
    """Histogram of non-zero ``|w|`` on a log axis per monitored tensor (at most 12, evenly spread), the count of
    exact zeros written in red, and the ``atol`` tolerance as a dashed line."""
    hists: dict[str, Any] = run.sparsity["histograms"]
    names = list(hists)
    if len(names) > MAX_HISTOGRAMS:
        names = [names[i] for i in np.linspace(0, len(names) - 1, MAX_HISTOGRAMS).round().astype(int)]
    cols = min(3, len(names)) or 1
    rows = math.ceil(len(names) / cols) or 1
    fig = Figure(figsize=(max(4 * cols, 6.5), 3 * rows + 0.4), layout="constrained")  # room for the title
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax, name in zip(axes, names):
        _histogram_panel(ax, name, hists[name], run.sparsity["atol"])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    shown = f"{len(names)} of {len(hists)}" if len(names) < len(hists) else f"{len(hists)}"
    fig.suptitle(f"|w| at the end, {shown} monitored tensor(s); dashed: atol = {run.sparsity['atol']:g}", fontsize=10)
    return fig


def _image_shape(features: dict[str, Any]) -> tuple[int, int] | None:
    """``(rows, cols)`` to draw the inputs as an image: when they are the flattened pixels of an input shape such as
    ``(1, 28, 28)`` (leading dimensions stacked vertically); ``None`` for tabular or channel inputs."""
    shape = features.get("input_shape") or []
    if len(shape) >= 2 and math.prod(shape) == features["count"]:
        return int(math.prod(shape[:-1])), int(shape[-1])
    return None


def feature_importance(run: RunData) -> Figure:
    """First-layer column norms ``‖w[:, j]‖₂`` per input: selected inputs (non-zero column) in blue, dropped ones
    as grey crosses at zero; an image-shaped input is drawn as a heat map with dropped pixels blank."""
    features = run.features
    image = _image_shape(features) if features else None
    fig = Figure(figsize=(6, 5) if image else (9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if not features:
        ax.text(0.5, 0.5, "no input layer with ndim >= 2", ha="center", transform=ax.transAxes)
        return fig
    importance = np.asarray(features["importance"], dtype=float)
    selected = np.zeros(len(importance), dtype=bool)
    selected[features["selected"]] = True
    title = f"Input importance ({selected.sum()} of {len(importance)} inputs selected; columns of {features['layer']})"
    if image is not None:
        shown = ax.imshow(np.ma.masked_where(~selected, importance).reshape(image), cmap="viridis")
        fig.colorbar(shown, ax=ax, label="column L2 norm (blank: dropped)")
        ax.set(xticks=[], yticks=[])
        ax.set_title(title, fontsize=9)
        return fig
    x = np.arange(len(importance))
    ax.bar(x[selected], importance[selected], color=SELECTED, label="selected (non-zero column)")
    ax.scatter(
        x[~selected],
        np.zeros((~selected).sum()),
        marker="x",
        color=DROPPED,
        zorder=3,
        label="dropped (column exactly zero)",
    )
    if len(importance) <= MAX_LABELLED_INPUTS:
        labels = features["names"] or [f"#{j}" for j in x]
        ax.set_xticks(x, labels, **_tick_style(len(importance)))
    ax.set(xlabel="input feature", ylabel="column L2 norm ‖w[:, j]‖₂", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def losses(run: RunData) -> Figure:
    """Left: train data loss, validation loss, the penalty term λ·R and the training objective (loss + penalty)
    per epoch. Right: the other epoch metrics (accuracy, ...), when there are any."""
    history = [r for r in run.history if r.get("metrics")]
    epochs = _epochs(history)
    others = sorted({k for r in history for k in r["metrics"] if k not in LOSS_KEYS})
    fig = Figure(figsize=(11 if others else 7, 4.5), layout="constrained")
    axes = fig.subplots(1, 2 if others else 1, squeeze=False).flatten()
    styles = {"train/loss": "-", "val/loss": "-", "train/objective": ":", "train/penalty": "--"}
    for key, style in styles.items():
        if any(key in r["metrics"] for r in history):
            axes[0].plot(
                epochs,
                [r["metrics"].get(key, np.nan) for r in history],
                ls=style,
                marker=_marker(len(epochs)),
                ms=3,
                label=key,
            )
    axes[0].set(xlabel="epoch", ylabel="value", title="Loss and penalty (val/loss never includes the penalty)")
    for key in others:
        axes[1].plot(
            epochs, [r["metrics"].get(key, np.nan) for r in history], marker=_marker(len(epochs)), ms=3, label=key
        )
    if others:
        axes[1].set(xlabel="epoch", title="Other metrics")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _integer_epochs(ax, epochs)
    return fig


RUN_FIGURES = {
    "sparsity_over_epochs": sparsity_over_epochs,
    "weight_histograms": weight_histograms,
    "feature_importance": feature_importance,
    "losses": losses,
}


def compare_sparsity(runs: Sequence[RunData]) -> Figure:
    """Total fraction of exact zeros per epoch, one line per run."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for run in runs:
        epochs = _epochs(run.history)
        ax.plot(
            epochs,
            [100 * r["total"]["zero_fraction"] for r in run.history],
            marker=_marker(len(epochs)),
            ms=3,
            label=run.label,
        )
    ax.set(xlabel="epoch", ylabel="% exact zeros (total)", ylim=(-2, 102), title="Sparsity over epochs")
    _integer_epochs(ax, [e for run in runs for e in _epochs(run.history)])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def compare_features(runs: Sequence[RunData]) -> Figure:
    """Runs × inputs heat map of first-layer column norms, each run scaled by its largest; dropped inputs blank
    (with an ×). Needs the same inputs in every run."""
    feats = [r.features for r in runs]
    long_names = max((len(n) for f in feats if f for n in (f["names"] or [])), default=0)
    fig = Figure(figsize=(10, 1.5 + 0.45 * len(runs) + 0.07 * long_names), layout="constrained")
    ax = fig.add_subplot()
    counts = {f["count"] for f in feats if f}
    if None in feats or len(counts) != 1:
        ax.text(0.5, 0.5, "runs have different inputs: no common feature map", ha="center", transform=ax.transAxes)
        return fig
    grid = np.asarray([f["importance"] for f in feats], dtype=float)  # type: ignore[index]
    scaled = grid / np.maximum(grid.max(axis=1, keepdims=True), 1e-300)
    shown = ax.imshow(np.ma.masked_where(grid == 0, scaled), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    count = counts.pop()
    if count <= MAX_LABELLED_INPUTS:
        names = feats[0]["names"] or [f"#{j}" for j in range(count)]  # type: ignore[index]
        ax.set_xticks(range(count), names, **_tick_style(count))
    rows, cols = np.nonzero(grid == 0)
    ax.scatter(
        cols,
        rows,
        marker="x",
        s=60 if count <= MAX_LABELLED_INPUTS else 12,
        color=ZERO,
        linewidths=1.5,
        label="dropped (column exactly zero)",
    )
    ax.set_yticks(range(len(runs)), [r.label for r in runs], fontsize=8)
    fig.colorbar(shown, ax=ax, label="norm / run's max")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12 - 0.07 * bool(count > 12)), frameon=False)
    ax.set_title("Input importance per run (× = dropped: column exactly zero)")
    return fig


def compare_tradeoff(runs: Sequence[RunData]) -> Figure:
    """Each final validation figure against the total fraction of exact zeros: one point per run, told apart by
    colour and marker and named in one legend below the panels (labels next to points overlap when runs agree)."""
    keys = sorted({k for r in runs for k in r.metrics if k.startswith("val/")}) or ["val/loss"]
    fig = Figure(figsize=(max(6, 4.5 * len(keys)), 4 + 0.22 * len(runs)), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False).flatten()
    markers = "osD^vP*Xh<>p"
    for ax, key in zip(axes, keys):
        for i, run in enumerate(runs):
            x, y = 100 * run.sparsity["total"]["zero_fraction"], run.metrics.get(key, np.nan)
            ax.scatter(
                [x], [y], marker=markers[i % len(markers)], color=f"C{i % 10}", s=40, alpha=0.85, label=run.label
            )
        ax.set(xlabel="% exact zeros (total)", ylabel=key, title=f"{key} vs sparsity")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=1 if len(runs) > 4 else len(runs), fontsize=8, frameon=False
    )
    return fig


COMPARE_FIGURES = {
    "compare_sparsity": compare_sparsity,
    "compare_features": compare_features,
    "compare_tradeoff": compare_tradeoff,
}


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG (110 dpi) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
