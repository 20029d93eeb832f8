"""Why adaptive proximal steps collapsed seed 001's network: the per-step prox threshold against the column norms
of ``net.fc1.weight`` in the first epochs, per optimizer.

Runs ``python -m train experiment=seed001_exact data.rule=<rule> optimizer=<opt>`` (the CLI's composed config,
built as the pipeline builds it; each optimizer at the defaults of ``conf/optimizer/*.yaml``) and records, after
every optimizer step: the prox threshold λ·η of the entries of the informative columns x0, x1 and of the noise
columns (median over the column's 6 entries; η from :func:`lightreg.solvers.prox_step`, exactly what the callback
uses), the data-gradient size of x0, x1 (‖g_col‖/√6, the per-entry figure to compare with λ), the norms of the
x0, x1 columns after the prox step and the number of input columns that are exactly zero.
``--warmup 0`` replays the rule without the warm-up bound (the metric threshold from the first step). The preset's λ ramp and
refit (``penalty.warmup_epochs``, ``penalty.refit_epochs``) are off here: the probe isolates the prox step at full λ.

    python -m benchmarks.studies.seed001_prox_threshold --rule ring
    python -m benchmarks.studies.seed001_prox_threshold --rule ring --warmup 0
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning as L
import torch

from benchmarks._common import build_run, cli_config, fit, input_support, seed_network_run, table
from lightreg.solvers import prox_step

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
SHOWN_STEPS = (1, 2, 3, 5, 8, 13, 26, 65, 130, 390, 391, 780)


class ThresholdProbe(L.Callback):
    """Records the threshold and column figures of ``net.fc1.weight`` around every prox step of ``reg``.

    Its step post-hook is registered before the regularizer's (callbacks start in list order), so it sees the
    weights after the optimizer step and before the prox; ``on_train_batch_end`` sees them after the prox.
    """

    def __init__(self, reg: Any, warmup: int | None) -> None:
        self.reg, self.warmup, self.rows = reg, warmup, []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weight = pl_module.net.fc1.weight
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(self._before_prox)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.warmup is not None:
            self.reg._prox_warmup = self.warmup  # replay another warm-up length through the real call site

    @torch.no_grad()
    def _before_prox(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        lam, w = self.reg._step_strength, self.weight
        group = next(g for g in optimizer.param_groups if any(p is w for p in g["params"]))
        t = prox_step(optimizer, group, w, self.reg.adaptive, floor=lam, scale=lam, warmup=self.reg._prox_warmup)
        t = t if isinstance(t, torch.Tensor) else torch.full_like(w, t)
        self.pending = (t.median(dim=0).values, w.grad.norm(dim=0) / w.shape[0] ** 0.5)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        threshold, grad = self.pending
        norms = self.weight.detach().norm(dim=0)
        self.rows.append(
            dict(
                step=trainer.global_step,
                epoch=trainer.current_epoch,
                t01=threshold[:2].tolist(),
                t_noise=threshold[2:].median().item(),
                g01=grad[:2].tolist(),
                w01=norms[:2].tolist(),
                zero=int((norms == 0).sum()),
            )
        )


def probe(optimizer: str, rule: str, seed: int, warmup: int | None) -> tuple[list[dict], float, tuple[int, int]]:
    cfg = cli_config(
        *seed_network_run(optimizer, rule, seed), "lambda=0.04", "penalty.warmup_epochs=0", "penalty.refit_epochs=0"
    )
    model, dm, penalties = build_run(cfg)
    recorder = ThresholdProbe(penalties[0], warmup)
    figures = fit(model, dm, [recorder, *penalties], int(cfg.trainer.max_epochs))
    return recorder.rows, figures["val/acc"], input_support(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="ring", choices=["linear", "clusters", "ring"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="steps with the threshold bounded by lr·λ (default: the callback's, half the run)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    for optimizer in args.optimizers.split(","):
        rows, acc, (noise_zero, kept) = probe(optimizer, args.rule, args.seed, args.warmup)
        shown = [r for r in rows if r["step"] in SHOWN_STEPS]
        print(
            f"\n{optimizer}, rule={args.rule}, seed={args.seed}, warm-up "
            f"{'default' if args.warmup is None else args.warmup} steps: final val/acc {acc:.3f}, "
            f"x0/x1 kept {kept}/2, noise columns zero {noise_zero}/8"
        )
        print(
            table(
                [
                    "step",
                    "epoch",
                    "λ·η x0 / x1",
                    "λ·η noise",
                    "‖g‖/√6 x0 / x1",
                    "‖w‖ x0 / x1 after prox",
                    "zero columns",
                ],
                [
                    [
                        r["step"],
                        r["epoch"],
                        f"{r['t01'][0]:.4f} / {r['t01'][1]:.4f}",
                        f"{r['t_noise']:.4f}",
                        f"{r['g01'][0]:.4f} / {r['g01'][1]:.4f}",
                        f"{r['w01'][0]:.3f} / {r['w01'][1]:.3f}",
                        r["zero"],
                    ]
                    for r in shown
                ],
            )
        )


if __name__ == "__main__":
    main()
