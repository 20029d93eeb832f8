"""Proximal optimizers: torch's optimizers with the penalty's gradient or prox inside their own step
(:mod:`lightreg.optim.proximal`, per-tensor maths in :mod:`lightreg.optim.updates`)."""

from lightreg.optim.proximal import (
    AUTO_MIN_PARAMETERS,
    AUTO_MIN_WORK,
    COMPILE_MODES,
    FusedPenalty,
    ProxAdagrad,
    ProxAdam,
    ProxAdamW,
    ProximalOptimizer,
    ProxRMSprop,
    ProxSGD,
    should_compile,
)

__all__ = [
    "AUTO_MIN_PARAMETERS",
    "AUTO_MIN_WORK",
    "COMPILE_MODES",
    "FusedPenalty",
    "ProxAdagrad",
    "ProxAdam",
    "ProxAdamW",
    "ProxRMSprop",
    "ProxSGD",
    "ProximalOptimizer",
    "should_compile",
]
