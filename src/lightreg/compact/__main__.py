"""``python -m lightreg.compact RUN_DIR [--checkpoint last|best|PATH] [--no-eval]``: compact a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightreg.errors import UserError, report_user_error


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
        from lightreg.compact.run import TABLE_FILE, compact_run

        figures = compact_run(args.run_dir, args.checkpoint, evaluate_data=not args.no_eval, batch_size=args.batch_size)
    except UserError as exc:
        return report_user_error(exc)
    print((Path(args.run_dir) / TABLE_FILE).read_text())
    for key, value in figures.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
