"""Checks of a composed config that need no Lightning import, so bad values fail in well under a second."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig

from lightreg.errors import UserError
from lightreg.lambda_path.config import check_path


def check_config(cfg: DictConfig) -> None:
    """Reject values that would silently train something else than asked, before any work starts."""
    strength = cfg.get("lambda", 0.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise UserError(f"lambda must be a number, got {strength!r}")
    if not math.isfinite(strength) or strength < 0:
        raise UserError(
            f"lambda must be a finite number >= 0, got {strength}: a penalty is added to the loss, never subtracted"
        )
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs < -1:
        raise UserError(f"trainer.max_epochs must be >= 0 (or -1 for no limit), got {max_epochs}")
    check_path(cfg)  # +path=...: lightreg.lambda_path
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path {ckpt_path!r} is not a file; point it at a checkpoint such as <run dir>/checkpoints/last.ckpt")
