"""One training epoch of in-memory tensors: lightreg's TensorBatches vs torch's DataLoader.

(a) ``lightreg.data.TensorBatches(x, y, batch_size=..., shuffle=True)``: one ``index_select`` per tensor per batch.
(b) ``torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=..., shuffle=True)``: ``batch_size`` calls to
    ``__getitem__`` plus the default collate (``torch.stack``) per batch.

Both iterate a full epoch (every batch materialized, short last batch included) on the CPU, in this process
(``num_workers=0``, the right choice for data that already sits in memory). Times are the median of
``--repeats`` epochs after one warm-up epoch; ratio = (b) / (a), > 1 means TensorBatches is faster.

    python -m benchmarks.speed.loader_speed [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import time_calls
from lightreg.data import TensorBatches

SIZES = {"digits 1797x64": 1797, "100k x 64": 100_000}
FEATURES = 64
BATCH_SIZES = (64, 256)


def _epoch(loader: Iterable, expected: int) -> Callable[[], None]:
    """One full epoch over ``loader`` (every batch materialized), checked to see ``expected`` rows."""

    def epoch() -> None:
        seen = 0
        for x, _ in loader:
            seen += x.shape[0]
        assert seen == expected, (seen, expected)

    return epoch


def _median_epoch(loader: Iterable, n: int, repeats: int) -> float:
    """Median seconds of ``repeats`` epochs after one warm-up epoch (allocator, first permutation)."""
    return statistics.median(time_calls({"epoch": _epoch(loader, n)}, repeats, warmup=1)["epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads; median of {args.repeats} epochs, CPU, num_workers=0"
    )
    header = (
        f"| {'data':<15} | {'batch':>5} | {'batches':>7} | {'(a) TensorBatches':>17} | {'(b) DataLoader':>14} "
        f"| {'b/a':>6} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    generator = torch.Generator().manual_seed(0)
    for label, n in SIZES.items():
        x = torch.randn(n, FEATURES, generator=generator)
        y = torch.randint(0, 10, (n,), generator=generator)
        for batch_size in BATCH_SIZES:
            ours = TensorBatches(x, y, batch_size=batch_size, shuffle=True, seed=0)
            theirs = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
            a = _median_epoch(ours, n, args.repeats)
            b = _median_epoch(theirs, n, args.repeats)
            print(
                f"| {label:<15} | {batch_size:>5} | {len(ours):>7} | {a * 1e3:>14.2f} ms | {b * 1e3:>11.2f} ms | "
                f"{b / a:>5.1f}x |"
            )


if __name__ == "__main__":
    main()
