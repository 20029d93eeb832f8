"""Command line entry point: ``python -m train [overrides]`` (Hydra)."""

from __future__ import annotations

import logging
import sys
import warnings

import hydra
from omegaconf import DictConfig

from lightreg import console
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
    out_dir = cfg.paths.output_dir
    with console.session(out_dir):  # the console, copied into <run dir>/train.log
        try:
            check_config(cfg)  # before the slow Lightning import below
            from lightreg.pipeline import train
            from lightreg.run_guard import NothingToDo, check_resume

            try:
                check_resume(cfg)
            except NothingToDo as notice:
                print(f"lightreg: {notice}")
                metrics = None
            else:
                metrics = train(cfg)
                console.print_final_block(out_dir, metrics)
        except UserError as exc:
            print(f"lightreg: error: {exc}", file=sys.stderr)
            sys.exit(2)
    if metrics is None:
        console.discard_new_folder(out_dir)  # the resume had nothing to do: no new files
        return None
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
