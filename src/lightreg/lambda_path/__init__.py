"""Regularization paths: one model trained along a decreasing λ grid with warm starts (``+path=geometric``).

``config`` (checks, grid), ``selection`` and ``report`` are light and Lightning-free; the training itself is
:func:`lightreg.lambda_path.runner.train_path`, which the pipeline calls.
"""

from lightreg.lambda_path.config import check_path, geometric_grid
from lightreg.lambda_path.rules import best_index, one_se_index

__all__ = ["best_index", "check_path", "geometric_grid", "one_se_index"]
