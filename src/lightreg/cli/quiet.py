"""A restoring context that silences Lightning's start-up banners and data-loader advice (for many short fits)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

UNACTIONABLE = (
    # Lightning 2.6 on torch >= 2.10 warns about its own pytree use every run
    r".*isinstance\(treespec, LeafSpec\)",
    # a resume into a new run folder: lightreg always writes checkpoints into the current run's folder
    r".*The dirpath has changed from",
    # a resume in its own run folder (lightreg.cli.rerun refuses any other reuse of a folder that holds a run)
    r".*Checkpoint directory .* exists and is not empty",
    # the checkpoint's callbacks that this run does not have (a penalty dropped or renamed with resume.allow_changes)
    r".*Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",
    # torchmetrics dropping a NaN batch loss: lightreg.cli.guard stops the run and says so in one line
    r".*Encountered `nan` values in tensor",
)
"""Lightning warnings that no user can act on in a lightreg run (regexes): every CLI run silences them."""

SMALL_DATA_ADVICE = (
    r".*does not have many workers",
    r".*smaller than the logging interval",
    r"GPU available but not used",
)
"""Lightning's advice for large data sets, which does not apply to in-memory batches: silenced in unwatched fits."""


UNWATCHED_FIT: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}
"""Trainer options of a fit nobody watches line by line (a λ-path point, an estimator's fit, a benchmark): no logger,
checkpoints, progress bar, model summary or sanity validation."""


@contextmanager
def loggers_at(level: int, *names: str) -> Iterator[None]:
    """The named :mod:`logging` loggers set to ``level`` for the block; their own levels restored after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels, strict=True):
            lg.setLevel(old)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines (``GPU available``, ``max_epochs reached``) and advice warnings off for the block;
    the logger level and the warning filters are restored after. lightreg's own warnings still show."""
    with loggers_at(logging.WARNING, "lightning.pytorch.utilities.rank_zero"), warnings.catch_warnings():
        for pattern in (*UNACTIONABLE, *SMALL_DATA_ADVICE):
            warnings.filterwarnings("ignore", message=pattern)
        yield


__all__ = ["SMALL_DATA_ADVICE", "UNACTIONABLE", "UNWATCHED_FIT", "loggers_at", "quiet_lightning"]
