"""Command line entry point: ``python -m train [overrides]`` (Hydra)."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hydra
from omegaconf import DictConfig

from lightreg.cli.job import EXIT_INTERRUPTED, run_job
from lightreg.cli.quiet import UNACTIONABLE
from lightreg.errors import LightregWarning


def _not_a_tip(record: logging.LogRecord) -> bool:
    """Lightning advertises a cloud logger at every start."""
    return "Tip:" not in record.getMessage()


@contextmanager
def cli_console() -> Iterator[None]:
    """For one CLI run: lightreg's warnings as one line (``lightreg: WARNING: ...``, no source line) and Lightning's
    noise left out. Everything is restored on exit: importing this module changes nothing process-wide."""
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with warnings.catch_warnings():  # restores the filters and showwarning
        for pattern in UNACTIONABLE:
            warnings.filterwarnings("ignore", message=pattern)
        plain = warnings.showwarning

        def show(
            message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
        ) -> None:
            if issubclass(category, LightregWarning):
                print(f"lightreg: WARNING: {message}", file=file or sys.stderr)
            else:
                plain(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        lightning_log.addFilter(_not_a_tip)
        try:
            yield
        finally:
            lightning_log.removeFilter(_not_a_tip)


@hydra.main(version_base="1.3", config_path="pkg://lightreg.conf", config_name="train")
def train_job(cfg: DictConfig) -> float | None:
    """Train one model; returns the final ``val/loss`` so Hydra sweepers can optimize it."""
    with cli_console():
        return run_job(cfg)  # checks, resume guard, train.log, one-line errors (exit 2), the final block


def main() -> None:
    """``python -m train [overrides]``. Ctrl-C inside the job is handled there (``metrics.json``, ``last.ckpt``); one
    that lands in Hydra's own set-up, before the job, is the same one line and exit code, with nothing to save."""
    try:
        train_job()
    except KeyboardInterrupt:
        print("lightreg: interrupted before training started", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
