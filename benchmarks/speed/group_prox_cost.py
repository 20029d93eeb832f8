"""Cost of one group-lasso prox with a per-entry step (adaptive optimizers): exact metric prox vs group-min rule.

Column groups, float32, one CPU thread, median of ``--repeats`` calls; an Adam step on the same tensor for scale.

    python -m benchmarks.speed.group_prox_cost
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from benchmarks._common import table, time_calls
from lightreg.penalties import GroupLasso
from lightreg.penalties.functional import block_soft_threshold_, group_min


def _median_ms(fn, repeats: int) -> float:
    """Median of ``repeats`` timed calls after one untimed call, in milliseconds."""
    return 1e3 * statistics.median(time_calls({"fn": fn}, repeats, warmup=1)["fn"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for shape in [(6, 10), (50, 10), (512, 784)]:
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(*shape, generator=gen) * 0.05
        step = (torch.rand(*shape, generator=gen) * 0.01 + 1e-3) * 0.02
        penalty, size = GroupLasso("columns"), shape[0]
        work = w.clone()
        param = torch.nn.Parameter(w.clone())
        param.grad = torch.randn_like(w)
        adam = torch.optim.Adam([param], lr=1e-3)

        def metric(penalty=penalty, work=work, w=w, step=step) -> None:
            penalty.prox_(work.copy_(w), step)

        def minimum(work=work, w=w, step=step, size=size) -> None:
            block_soft_threshold_(work.copy_(w), group_min(step, work, 1) * math.sqrt(size), 1)

        rows.append(
            [
                f"{shape[0]}x{shape[1]}",
                f"{_median_ms(metric, args.repeats):.3f}",
                f"{_median_ms(minimum, args.repeats):.3f}",
                f"{_median_ms(adam.step, args.repeats):.3f}",
            ]
        )
    print(table(["weight", "metric prox ms", "group-min prox ms", "Adam step ms"], rows))


if __name__ == "__main__":
    main()
