"""Regularization paths: one model trained along a decreasing λ grid with warm starts (``+path=geometric``).

``config`` (checks, grid) and ``selection`` are light; :func:`train_path` (Lightning) is imported on use.
"""

from typing import Any

from lightreg.lambda_path.config import check_path, geometric_grid
from lightreg.lambda_path.selection import best_index, one_se_index


def train_path(cfg: Any) -> dict[str, Any]:
    """Run the path described by ``cfg`` (see :mod:`lightreg.lambda_path.runner`)."""
    from lightreg.lambda_path.runner import train_path as run

    return run(cfg)


__all__ = ["best_index", "check_path", "geometric_grid", "one_se_index", "train_path"]
