"""Command line entry point: ``python -m train [overrides]`` (Hydra)."""

from __future__ import annotations

import logging
import sys
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lightreg.config_checks import check_config
from lightreg.errors import LightregWarning, UserError

# Lightning 2.6 on torch >= 2.10 warns about its own pytree use on every run; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=Warning)
# ... and advertises a cloud logger at every start.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "Tip:" not in record.getMessage())

_plain_format = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """lightreg's own warnings as one readable line, without the source line that raised them."""
    if issubclass(category, LightregWarning):
        return f"lightreg: WARNING: {message}\n"
    return _plain_format(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning


@hydra.main(version_base="1.3", config_path="pkg://lightreg.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one model; returns the final ``val/loss`` so Hydra sweepers can optimize it."""
    try:
        check_config(cfg)  # before the slow Lightning import below
        from lightreg.pipeline import train

        metrics = train(cfg)
    except UserError as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # one job of a sweep: recorded as a failed row by lightreg.sweep.SweepSummary, the sweep goes on
        print(f"lightreg: error: {exc}", file=sys.stderr)
        sys.exit(2)
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
