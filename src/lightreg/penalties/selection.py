"""Choosing which parameters of a module a penalty applies to."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn

from lightreg.errors import UserError


def _patterns(patterns: str | Sequence[str] | None) -> list[str] | None:
    """None stays None; a single string becomes a one-element list."""
    if patterns is None:
        return None
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def select_parameters(
    module: nn.Module,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> list[tuple[str, nn.Parameter]]:
    """Trainable parameters of ``module`` to regularize, as ``(name, parameter)`` in ``named_parameters()`` order.

    ``include=None`` selects every trainable parameter with ``ndim >= 2`` (weights; not biases or norm scales).
    ``include`` otherwise is a list of fnmatch globs over the names (it may pick 1-D parameters too); each
    pattern must match something, to catch typos. ``exclude`` globs then drop names. A single string counts
    as a one-element list. Raises ``UserError`` (a ``ValueError``) on an empty selection or unmatched pattern.
    """
    includes, excludes = _patterns(include), _patterns(exclude)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    available = ", ".join(n for n, _ in named) or "(none)"
    if includes is None:
        chosen = [(n, p) for n, p in named if p.ndim >= 2]
    else:
        for pattern in includes:
            if not any(_matches(n, [pattern]) for n, _ in named):
                raise UserError(f"include pattern {pattern!r} matches no trainable parameter; available: {available}")
        chosen = [(n, p) for n, p in named if _matches(n, includes)]
    if excludes is not None:
        chosen = [(n, p) for n, p in chosen if not _matches(n, excludes)]
    if not chosen:
        raise UserError(f"no parameter matches include={includes!r} exclude={excludes!r}; available: {available}")
    return chosen
