"""``lightreg.compact(model) -> (smaller_model, report)``, ``lightreg.compact.load("compact.pt")`` and
``python -m lightreg.compact RUN_DIR``.

The module itself is callable, so that ``lightreg.compact(model)`` works whether or not ``lightreg.compact`` was
imported as a module first (``python -m lightreg.compact`` imports it).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from lightreg.compact.core import CompactionReport, LayerRow, compact, compact_sequential
from lightreg.compact.saved import load

__all__ = ["CompactionReport", "LayerRow", "compact", "compact_sequential", "load"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return compact(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
