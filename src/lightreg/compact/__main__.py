"""``python -m lightreg.compact RUN_DIR [--checkpoint best|last|one_se|PATH] [--no-eval]``: compact a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lightreg.errors import UserError, report_user_error


def compact_run(
    run_dir: Path, which: str | None = None, evaluate_data: bool = True, batch_size: int = 64
) -> dict[str, Any]:
    """Compact the model of a finished run from its checkpoint (``which``: default ``best`` when the run has one,
    else ``last``; :func:`lightreg.cli.trained.checkpoint_path`) and its saved Hydra config."""
    from omegaconf import OmegaConf

    from lightreg.cli.pipeline import build_data
    from lightreg.cli.trained import check_status, checkpoint_path, load_module
    from lightreg.compact.run import compact_model

    run_dir = Path(run_dir)
    ckpt = checkpoint_path(run_dir, which)
    if ckpt.suffix != ".ckpt":
        raise UserError(f"--checkpoint {which!r}: compaction starts from a training checkpoint (.ckpt), got {ckpt}")
    check_status(run_dir, which, ckpt, use="compacting")
    model = load_module(run_dir, ckpt)
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = None
    if evaluate_data:
        datamodule = build_data(cfg)  # the run's own data, split and scaled as in training
    return compact_model(model, run_dir, datamodule=datamodule, batch_size=batch_size, seed=int(cfg.get("seed", 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightreg.compact",
        description="Remove the units, filters, inputs and coupled channel groups a structured penalty zeroed; write "
        "compact.pt, compact.md (the table and parameters, MACs and CPU latency before/after) and compact.json into "
        "RUN_DIR.",
    )
    parser.add_argument("run_dir", help="a run dir of python -m train (outputs/<date>/<time>)")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="best | last | one_se | a .ckpt path (default: best if the run has it, else last)",
    )
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
