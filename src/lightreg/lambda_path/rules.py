"""Choosing λ on a path: the best validation figure, and the one-standard-error rule. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def best_index(lambdas: Sequence[float], values: Sequence[float], mode: str) -> int:
    """Index of the best ``values`` (``mode`` min or max); among ties, the largest λ (the sparsest model)."""
    v = np.asarray(values, dtype=float) * (1.0 if mode == "min" else -1.0)
    ties = np.flatnonzero(v == np.nanmin(v))
    return int(ties[np.argmax(np.asarray(lambdas, dtype=float)[ties])])


def one_se_index(lambdas: Sequence[float], values: Sequence[float], errors: Sequence[float], mode: str) -> int:
    """The one-standard-error rule (Breiman et al. 1984; glmnet's ``lambda.1se``): the largest λ whose figure is
    within one standard error of the best one, ``v ≤ v_best + se_best`` (``≥ v_best − se_best`` for ``max``)."""
    best = best_index(lambdas, values, mode)
    v = np.asarray(values, dtype=float) * (1.0 if mode == "min" else -1.0)
    ok = np.flatnonzero(v <= v[best] + float(errors[best]))
    return int(ok[np.argmax(np.asarray(lambdas, dtype=float)[ok])])


def standard_error(per_sample: np.ndarray) -> float:
    """Standard error of a mean over samples: ``std(x, ddof=1) / √n``."""
    n = per_sample.size
    return float(per_sample.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0


__all__ = ["best_index", "one_se_index", "standard_error"]
