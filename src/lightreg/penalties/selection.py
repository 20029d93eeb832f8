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


CONV_GROUPS = ("filters", "channels")


def conv_weights(
    named: list[tuple[str, nn.Parameter]], groups: str, explicit: bool, model: str
) -> list[tuple[str, nn.Parameter]]:
    """The selection for group lasso with ``groups=filters|channels``: conv weights (``ndim >= 3``) only, unless
    the parameters were chosen explicitly (``explicit``, through ``include``); a selection without any conv weight
    is a :class:`UserError` (``filters`` on an MLP is almost surely meant as ``rows``)."""
    convs = [(n, p) for n, p in named if p.ndim >= 3]
    if not convs:
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in named)
        raise UserError(
            f"penalty.groups={groups} groups the {groups} of conv layers, but {model} has no conv weight among the "
            f"penalized parameters ({shapes}); use penalty.groups="
            + ("rows (hidden units)" if groups == "filters" else "columns (input features)")
            + " or a model with conv layers"
        )
    return named if explicit else convs
