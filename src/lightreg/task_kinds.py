"""The vocabulary of prediction tasks, shared by data modules and models (neither imports the other)."""

from __future__ import annotations

from lightreg.errors import UserError

TASKS = ("binary", "multiclass", "regression")
"""``binary``: one logit, BCE; ``multiclass``: C logits, cross entropy; ``regression``: one value, MSE."""


def check_task(task: object) -> str:
    """``task`` if it is one of :data:`TASKS`; a :class:`~lightreg.errors.UserError` (a ``ValueError``) naming it otherwise."""
    if task not in TASKS:
        raise UserError(f"task must be one of {TASKS}, got {task!r}")
    return task  # type: ignore[return-value]


__all__ = ["TASKS", "check_task"]
