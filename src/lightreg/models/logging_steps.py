"""When Lightning hands a training step's ``on_step`` figures to the loggers (no Lightning import: duck-typed)."""

from __future__ import annotations

from typing import Any


def logs_this_step(trainer: Any) -> bool:
    """True when the coming training step's ``self.log(..., on_step=True)`` values reach a logger: the trainer has a
    logger and Lightning's own rule (every ``trainer.log_every_n_steps`` optimizer steps, and when stopping) says so.

    ``self.log`` costs its full price (result bookkeeping, device moves) on every call, flushed or not, so per-step
    figures are only worth logging on these steps; epoch figures are accumulated separately and stay exact.
    """
    if trainer is None or not trainer.loggers:
        return False
    connector = getattr(trainer, "_logger_connector", None)
    return bool(connector.should_update_logs) if connector is not None else True


__all__ = ["logs_this_step"]
