"""A restoring context that silences Lightning's start-up banners and data-loader advice (for many short fits)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_NOISE = (
    r".*does not have many workers",
    r".*smaller than the logging interval",
    r"GPU available but not used",
    r".*isinstance\(treespec, LeafSpec\)",
)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines (``GPU available``, ``max_epochs reached``) and advice warnings off for the block;
    the logger level and the warning filters are restored after. lightreg's own warnings still show."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = rank_zero.level
    rank_zero.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _NOISE:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        rank_zero.setLevel(level)


__all__ = ["quiet_lightning"]
