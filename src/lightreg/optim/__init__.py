"""Optimizer-side math: proximal step sizes in each optimizer's metric."""

from lightreg.optim.prox_steps import ADAPTIVE, is_adaptive, prox_step, warmup_steps

__all__ = ["ADAPTIVE", "is_adaptive", "prox_step", "warmup_steps"]
