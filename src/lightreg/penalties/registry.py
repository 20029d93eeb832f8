"""Penalties by name, for configs: ``make_penalty("elastic_net", l1_ratio=0.7)``.

A new penalty is one class (a :class:`~lightreg.penalties.Penalty` subclass with its own maths) added to
:data:`PENALTIES`, plus one YAML file in ``conf/penalty/``; the tests parametrized over this registry cover it.
"""

from __future__ import annotations

from typing import Any

from lightreg.errors import UserError
from lightreg.penalties.elementwise import L1, L2, ElasticNet
from lightreg.penalties.group import GroupLasso, SparseGroupLasso
from lightreg.penalties.group_nonconvex import GroupMCP, GroupSCAD
from lightreg.penalties.nonconvex import L0, MCP, SCAD, LogSum
from lightreg.penalties.penalty import Penalty

PENALTIES: dict[str, type[Penalty]] = {
    cls.name: cls
    for cls in (L1, L2, ElasticNet, GroupLasso, SparseGroupLasso, MCP, SCAD, LogSum, L0, GroupMCP, GroupSCAD)
}


def make_penalty(name: str, **options: Any) -> Penalty:
    """Build the penalty called ``name`` with its own options; options set to ``None`` are ignored."""
    if name not in PENALTIES:
        raise UserError(f"unknown penalty {name!r}; available: {', '.join(PENALTIES)}")
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return PENALTIES[name](**given)
    except TypeError:
        raise UserError(f"penalty {name!r} takes no option(s) {sorted(given)}") from None
