"""Checks of a ``path`` config and the λ grid: no Lightning import, so bad input fails at once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from omegaconf import DictConfig

from lightreg.errors import UserError

CHECKPOINTS = ("all", "chosen", "none")
FINISHES = ("auto", "exact", "none")
"""``path.finish``: ``exact`` ends every point with the full-batch proximal finish (``penalty.mode=exact``);
``auto`` does so for a linear model with a proximal penalty (a convex problem, whose optimum the finish reaches);
``none`` keeps ``penalty.mode`` as configured."""
MONITORS = {"val/loss": "min", "val/acc": "max", "val/mae": "min"}
"""Selection metrics with a per-sample standard error, and their direction."""


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _count(path: DictConfig, key: str, low: int) -> None:
    value = path.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"path.{key} must be an integer >= {low}, got {value!r}")


def check_path(cfg: DictConfig) -> None:
    """Reject a path config that cannot run or that would silently run something else than asked."""
    path = cfg.get("path")
    if path is None:
        return
    penalties = [cfg.get("penalty")] if cfg.get("penalty") is not None else []
    if not penalties:
        raise UserError(
            "a path runs along λ of a penalty, and none is configured: add one, e.g. `+penalty=l1 +path=geometric`"
        )
    for name, node in (cfg.get("extra_penalties") or {}).items():
        if not node.get("strength"):  # e.g. strength: ${lambda}, which a path leaves at 0
            raise UserError(
                f"extra_penalties.{name} has strength {node.get('strength')!r}: a path scales `penalty` only and keeps "
                f"extra penalties at their own fixed strength; set extra_penalties.{name}.strength=..."
            )
    if cfg.get("lambda", 0.0) != 0:
        raise UserError(
            f"lambda={cfg['lambda']} and +path: the path sets λ itself (from lambda_max down to min_ratio * lambda_max). "
            "Drop lambda=..., or start the grid at a value of your choice with path.lambda_max=..."
        )
    ratio = path.get("min_ratio")
    if not _number(ratio) or not 0 < ratio < 1:
        raise UserError(f"path.min_ratio must be a number in (0, 1) (smallest λ / λ_max), got {ratio!r}")
    _count(path, "num", 2)
    _count(path, "epochs_per_lambda", 1)
    _count(path, "patience", 0)
    _count(path, "bisect_steps", 0)
    _count(path, "refit_epochs", 0)
    lam_max = path.get("lambda_max")
    if lam_max is not None and (not _number(lam_max) or lam_max <= 0):
        raise UserError(f"path.lambda_max must be a number > 0 or null (from the data), got {lam_max!r}")
    if path.get("monitor") not in MONITORS:
        raise UserError(f"path.monitor must be one of {sorted(MONITORS)}, got {path.get('monitor')!r}")
    if path.get("finish", "auto") not in FINISHES:
        raise UserError(f"path.finish must be one of {FINISHES}, got {path.get('finish')!r}")
    if path.get("checkpoints") not in CHECKPOINTS:
        raise UserError(f"path.checkpoints must be one of {CHECKPOINTS}, got {path.get('checkpoints')!r}")
    name = cfg.penalty.get("penalty")
    if name == "l2" and lam_max is None:
        raise UserError(
            "an L2 penalty never zeroes weights, so it has no lambda_max: give path.lambda_max=... or use l1"
        )


def geometric_grid(lambda_max: float, num: int, min_ratio: float) -> np.ndarray:
    """``λ_k = λ_max · min_ratio^(k/(num−1))``, ``k = 0 … num−1``: decreasing, first ``λ_max``, last ``min_ratio·λ_max``."""
    return lambda_max * min_ratio ** (np.arange(num) / (num - 1))


__all__ = ["CHECKPOINTS", "FINISHES", "MONITORS", "check_path", "geometric_grid"]
