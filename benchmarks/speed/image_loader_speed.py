"""One epoch over a generated MNIST-sized set (60000 × 1 × 28 × 28 uint8, 10 classes): which loader to use for images.

(a) ``TensorBatches`` over the set normalized once into one float tensor: one ``index_select`` per batch
    (what ``data=mnist`` / ``fashion_mnist`` / ``cifar10`` without augmentation use).
(b) ``DataLoader(TensorDataset(x_float, y))``, ``num_workers=0``: per-sample indexing plus collate.
(c) ``DataLoader`` over a per-sample dataset (uint8 image → ``transforms.v2`` ToDtype + Normalize, torchvision's
    usual pipeline), ``num_workers=0``.
(d) as (c) with ``num_workers=W``, ``persistent_workers=True``, ``pin_memory`` when CUDA is available
    (what ``data.augment=true`` uses).

Times are the median of ``--repeats`` epochs after one warm-up epoch, batch 128, shuffled, in seconds.

    python -m benchmarks.speed.image_loader_speed [--repeats 3] [--workers 2] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import time_calls
from lightreg.data import TensorBatches
from lightreg.data.images import _AugmentedImages

MEAN, STD = (0.1307,), (0.3081,)


def _epoch(loader: Iterable, n: int) -> Callable[[], None]:
    """One full epoch over ``loader``, checked to see ``n`` images."""

    def epoch() -> None:
        seen = 0
        for x, _ in loader:
            seen += x.shape[0]
        assert seen == n, (seen, n)

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="one timed epoch per option")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    n = 60_000
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    x = (images.float() / 255 - MEAN[0]) / STD[0]
    bs, pin = args.batch_size, torch.cuda.is_available()
    options = {
        "(a) TensorBatches, in-memory float tensor": TensorBatches(x, labels, batch_size=bs, shuffle=True),
        "(b) DataLoader(TensorDataset), 0 workers": DataLoader(TensorDataset(x, labels), batch_size=bs, shuffle=True),
        "(c) DataLoader, per-sample v2 transforms, 0 workers": DataLoader(
            _AugmentedImages(images, labels, MEAN, STD, augment=False), batch_size=bs, shuffle=True
        ),
        f"(d) as (c), {args.workers} workers, persistent{', pin_memory' if pin else ''}": DataLoader(
            _AugmentedImages(images, labels, MEAN, STD, augment=False),
            batch_size=bs,
            shuffle=True,
            num_workers=args.workers,
            persistent_workers=args.workers > 0,
            pin_memory=pin,
        ),
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, 60000x1x28x28, batch {bs}, median of {repeats}"
    )
    print("| loader | epoch (s) | vs (a) |\n| --- | ---: | ---: |")
    base = None
    for name, loader in options.items():
        # one warm-up epoch first: first permutation, worker start-up
        seconds = statistics.median(time_calls({"epoch": _epoch(loader, n)}, repeats, warmup=1)["epoch"])
        base = base or seconds
        print(f"| {name} | {seconds:.3f} | {seconds / base:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
