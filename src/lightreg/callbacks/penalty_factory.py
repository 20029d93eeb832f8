"""The flat constructor that penalty configs target: ``_target_: lightreg.callbacks.regularizer``."""

from __future__ import annotations

from typing import Any

from lightreg.callbacks.coupled_regularization import CoupledRegularizationCallback
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.errors import UserError
from lightreg.penalties import at_strength, make_penalty
from lightreg.penalties.coupled import CoupledGroupLasso


def regularizer(
    penalty: str,
    strength: float,
    l1_ratio: float | None = None,
    groups: str | None = None,
    gamma: float | None = None,
    eps: float | None = None,
    group_weight: str = "sqrt_size",
    **callback_options: Any,
) -> RegularizationCallback:
    """Flat constructor for configs: ``regularizer("elastic_net", 1e-3, l1_ratio=0.7, mode="prox")``.

    ``l1_ratio``, ``groups``, ``gamma`` (MCP, SCAD: their knee γλ is placed at this ``strength``) and ``eps``
    (log-sum) go to the penalty; everything else to :class:`RegularizationCallback`. ``groups="coupled"`` (group lasso, sparse group lasso) builds a
    :class:`~lightreg.callbacks.coupled_regularization.CoupledRegularizationCallback` over Torch-Pruning's coupled
    channel groups, weighted by ``group_weight`` (``sqrt_size`` | ``macs``; other groups take ``sqrt_size`` only).
    """
    if groups == "coupled":
        if penalty not in ("group_lasso", "sparse_group_lasso"):
            raise UserError(f"groups=coupled applies to group_lasso and sparse_group_lasso, got penalty={penalty!r}")
        ratio = 0.0 if penalty == "group_lasso" else (0.5 if l1_ratio is None else l1_ratio)
        return CoupledRegularizationCallback(
            CoupledGroupLasso(ratio, group_weight=group_weight), strength, **callback_options
        )
    if group_weight != "sqrt_size":
        raise UserError(
            f"group_weight={group_weight!r} needs groups=coupled, got groups={groups!r}: set penalty.groups=coupled"
        )
    options = {"l1_ratio": l1_ratio, "groups": groups, "gamma": gamma, "eps": eps}
    return RegularizationCallback(at_strength(make_penalty(penalty, **options), strength), strength, **callback_options)


__all__ = ["regularizer"]
