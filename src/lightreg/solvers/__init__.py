"""Solvers and optimizer-side math: proximal step sizes in each optimizer's metric, full-batch FISTA with a
KKT-checked thresholding, and the full-batch proximal finish. Depends on :mod:`lightreg.penalties` only."""

from lightreg.solvers import kernels
from lightreg.solvers.finish import ProximalFinish
from lightreg.solvers.prox_steps import ADAPTIVE, is_adaptive, prox_step, warmup_steps

__all__ = ["ADAPTIVE", "ProximalFinish", "is_adaptive", "kernels", "prox_step", "warmup_steps"]
