"""The one-line epoch summary a model prints (``Epoch 3/20  loss 0.2788/0.1887 ...``): plain text, no Lightning."""

from __future__ import annotations

import re
from collections.abc import Mapping

WIDTH = 80
"""Console width the epoch line keeps within."""


def epoch_line(epoch: int, max_epochs: int | None, figures: Mapping[str, float]) -> str:
    """``Epoch 3/20  loss 0.2788/0.1887  acc 0.9278/0.95  penalty 0.0821``: each figure as train/val, 4 significant
    digits (3 where 4 would pass 80 columns)."""
    total = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    width = len(str(max_epochs)) if total else 1
    names = dict.fromkeys(k.split("/", 1)[1] for k in figures if k.startswith(("train/", "val/")))
    names.pop("objective", None)  # = loss + penalty
    for digits in (4, 3):
        parts = [f"Epoch {epoch + 1:>{width}}{total}"]
        for name in names:
            pair = [figures.get(f"{split}/{name}") for split in ("train", "val")]
            if name == "penalty":
                parts.append(f"penalty {format_number(pair[0], digits)}")
            else:
                parts.append(f"{name} " + "/".join(format_number(v, digits) for v in pair))
        line = "  ".join(parts)
        if len(line) <= WIDTH:
            break
    return line


def format_number(value: float | None, digits: int = 4) -> str:
    """``0.7265``, ``150.2``, ``1.235e4``: ``digits`` significant digits, a compact exponent."""
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 10:
        return f"{value:.{digits}f}"
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{'-' if m[1] == '-' else ''}{m[2]}", f"{value:.{digits}g}")


__all__ = ["epoch_line", "format_number"]
