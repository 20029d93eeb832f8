"""Command line entry point: ``python -m train [overrides]`` (Hydra)."""

from __future__ import annotations

import logging
import warnings

import hydra
from omegaconf import DictConfig

from lightreg.errors import LightregWarning
from lightreg.job import run_job

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
    return run_job(cfg)  # checks, resume guard, train.log, one-line errors (exit 2), the final block


if __name__ == "__main__":
    main()
