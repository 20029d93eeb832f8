"""Command line: ``python -m lightreg.report RUN_DIR [--compare RUN_DIR ...] [--out DIR]``, also ``lightreg report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lightreg.errors import UserError, report_user_error
from lightreg.report import compare_runs, write_report


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("run_dir", help="a finished run directory (holds sparsity.json), e.g. outputs/<date>/<time>")
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="more run directories to put side by side with RUN_DIR (e.g. the jobs of a lambda sweep)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the PNGs (default: RUN_DIR/plots, and RUN_DIR/compare with --compare)",
    )
    return parser


def report(args: argparse.Namespace) -> int:
    """Print the table(s) and write the PNGs; returns the exit code."""
    written = write_report(args.run_dir, args.out)
    if args.compare:
        written += compare_runs([args.run_dir, *args.compare], args.out)
    for path in written:
        print(f"wrote {path}")
    return 0


def _run(action: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return action(args)
    except UserError as exc:
        return report_user_error(exc)


def report_main(argv: Sequence[str] | None = None) -> int:
    """``python -m lightreg.report``."""
    parser = add_report_arguments(
        argparse.ArgumentParser(
            prog="python -m lightreg.report", description="Sparsity report of finished lightreg runs."
        )
    )
    return _run(report, parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """The ``lightreg`` console script; its subcommand ``report`` is ``python -m lightreg.report`` (and the default:
    ``lightreg RUN_DIR`` = ``lightreg report RUN_DIR``)."""
    parser = argparse.ArgumentParser(prog="lightreg", description="lightreg tools (training itself: python -m train).")
    commands = parser.add_subparsers(dest="command", required=True)
    add_report_arguments(commands.add_parser("report", help="sparsity table and plots of finished runs")).set_defaults(
        action=report
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in commands.choices:
        argv.insert(0, "report")  # `lightreg RUN_DIR ...` is short for `lightreg report RUN_DIR ...`
    args = parser.parse_args(argv)
    return _run(args.action, args)
