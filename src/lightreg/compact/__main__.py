"""``python -m lightreg.compact RUN_DIR [--checkpoint last|best|PATH] [--no-eval]``: compact a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lightreg import run_folder
from lightreg.errors import UserError, report_user_error


def checkpoint_of(run_dir: Path, which: str = "last") -> Path:
    """``<run_dir>/checkpoints/<which>.ckpt`` (or ``which`` itself when it is a file), else a one-line error."""
    if Path(which).is_file():
        return Path(which)
    path = Path(run_dir) / run_folder.CHECKPOINTS / f"{which}.ckpt"
    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a run dir such as outputs/<date>/<time>")
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no checkpoint {path.relative_to(run_dir)} (a run with callbacks=none saves none): "
            "train with the default callbacks, or train with compact=true, or pass --checkpoint PATH"
        )
    return path


def compact_run(run_dir: Path, which: str = "last", evaluate_data: bool = True, batch_size: int = 64) -> dict[str, Any]:
    """Compact the model of a finished run from its checkpoint and its saved Hydra config."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from lightreg.cli.pipeline import build_data
    from lightreg.compact.run import compact_model

    run_dir = Path(run_dir)
    ckpt = checkpoint_of(run_dir, which)
    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        raise UserError(f"{run_dir} has no .hydra/config.yaml: compact reads the run's model and data from it")
    cfg = OmegaConf.load(config)
    model = get_class(cfg.model._target_).load_from_checkpoint(ckpt, map_location="cpu")
    datamodule = None
    if evaluate_data:
        datamodule = build_data(cfg)  # the run's own data, split and scaled as in training
    return compact_model(model, run_dir, datamodule=datamodule, batch_size=batch_size, seed=int(cfg.get("seed", 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightreg.compact",
        description="Remove the units, filters and inputs a structured penalty zeroed; write compact.pt, "
        "compact.md (parameters and CPU latency per layer, before/after) and compact.json into RUN_DIR.",
    )
    parser.add_argument("run_dir", help="a run dir of python -m train (outputs/<date>/<time>)")
    parser.add_argument("--checkpoint", default="last", help="last | best | a .ckpt path (default: last)")
    parser.add_argument("--no-eval", action="store_true", help="skip the validation figures (no data needed)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch of the latency and output checks")
    args = parser.parse_args(argv)
    try:
        from lightreg.compact.run import TABLE_FILE

        figures = compact_run(args.run_dir, args.checkpoint, evaluate_data=not args.no_eval, batch_size=args.batch_size)
    except UserError as exc:
        return report_user_error(exc)
    print((Path(args.run_dir) / TABLE_FILE).read_text())
    for key, value in figures.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
