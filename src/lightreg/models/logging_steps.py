"""When Lightning hands a training step's ``on_step`` figures to the loggers (no Lightning import: duck-typed).

Lightning's rule (``_LoggerConnector.should_update_logs``, which its ``LearningRateMonitor`` reads too): batch
``k = _batches_that_stepped + 1`` of a fit logs when ``k % log_every_n_steps == 0``, or when the trainer stops. It is
read here, in one place, from the same counter, so that a callback can also ask it one batch ahead (a proximal
optimizer reads the penalty's value in the step before a logging step).
"""

from __future__ import annotations

from typing import Any


def logging_step(trainer: Any, ahead: int = 0) -> bool:
    """Whether the training batch ``ahead`` batches after the coming one (``0``: the coming one; ask before its
    optimizer step for the one after it with ``ahead=1``) is one whose ``on_step`` figures Lightning logs, logger or
    not: every ``trainer.log_every_n_steps`` optimizer steps (never when it is 0), and the coming one when the trainer
    stops."""
    every = trainer.log_every_n_steps
    if every == 0:
        return False
    batch = trainer.fit_loop.epoch_loop._batches_that_stepped + 1 + ahead
    return batch % every == 0 or (ahead == 0 and bool(trainer.should_stop))


def logs_this_step(trainer: Any) -> bool:
    """True when the coming training step's ``self.log(..., on_step=True)`` values reach a logger: the trainer has a
    logger and :func:`logging_step` says so.

    ``self.log`` costs its full price (result bookkeeping, device moves) on every call, flushed or not, so per-step
    figures are only worth logging on these steps; epoch figures are accumulated separately and stay exact.
    """
    return trainer is not None and bool(trainer.loggers) and logging_step(trainer)


__all__ = ["logging_step", "logs_this_step"]
