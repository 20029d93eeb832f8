"""Command line: ``python -m lightreg.report RUN_DIR [--compare RUN_DIR ...] [--out DIR]``, also ``lightreg report``;
``lightreg predict RUN_DIR DATA -o OUT.csv`` and ``lightreg export RUN_DIR --format onnx|torchscript -o FILE``."""

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


CHECKPOINT_HELP = (
    "best | last | one_se | compact (the run's compact.pt) | a checkpoint path (default: best if the run has it, "
    "else last)"
)


def add_predict_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("run_dir", help="a finished run directory, e.g. outputs/<date>/<time>")
    parser.add_argument(
        "data",
        help="a CSV (the training feature columns by name, any order; other columns are copied), an .npy, or for an "
        "image model a folder of images",
    )
    parser.add_argument("-o", "--out", required=True, help="the CSV to write: DATA's columns + prediction (+ proba:*)")
    parser.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    parser.add_argument(
        "--delimiter",
        default=None,
        help="the CSV's delimiter: one character or tab|comma|semicolon|pipe|space (default: sniffed among , ; TAB |)",
    )
    return parser


def predict(args: argparse.Namespace) -> int:
    """Write the predictions; print one line."""
    from lightreg.cli.predict import predict as predict_file

    rows = predict_file(args.run_dir, args.data, args.out, args.checkpoint, args.delimiter)
    print(f"wrote {rows} rows to {args.out}")
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("run_dir", help="a finished run directory, e.g. outputs/<date>/<time>")
    parser.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="the file format")
    parser.add_argument("-o", "--out", required=True, help="the file to write (model.onnx, model.pt)")
    parser.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    return parser


def export(args: argparse.Namespace) -> int:
    """Export, check against PyTorch, print one line."""
    from lightreg.cli.export import export as export_model

    diff, rows = export_model(args.run_dir, args.format, args.out, args.checkpoint)
    print(f"wrote {args.out} ({args.format}); max abs diff from PyTorch on {rows}: {diff:.3g}")
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
    """The ``lightreg`` console script: ``predict``, ``export`` and ``report``; ``report`` is ``python -m lightreg.report`` (and the default:
    ``lightreg RUN_DIR`` = ``lightreg report RUN_DIR``)."""
    parser = argparse.ArgumentParser(prog="lightreg", description="lightreg tools (training itself: python -m train).")
    commands = parser.add_subparsers(dest="command", required=True)
    add_report_arguments(commands.add_parser("report", help="sparsity table and plots of finished runs")).set_defaults(
        action=report
    )
    predict_parser = commands.add_parser("predict", help="predictions of a trained run on a CSV or .npy")
    add_predict_arguments(predict_parser).set_defaults(action=predict)
    export_parser = commands.add_parser("export", help="a trained run as ONNX or TorchScript (checked against PyTorch)")
    add_export_arguments(export_parser).set_defaults(action=export)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in commands.choices:
        argv.insert(0, "report")  # `lightreg RUN_DIR ...` is short for `lightreg report RUN_DIR ...`
    args = parser.parse_args(argv)
    return _run(args.action, args)
