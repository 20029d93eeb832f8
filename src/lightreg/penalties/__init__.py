"""Regularizers as unit-strength penalties R (value, gradient, in-place prox, λ_max, KKT pieces), penalty terms,
and parameter selection.

Lightning-free and solver-free: every other layer depends on this one, never the reverse.
"""

from lightreg.penalties.elementwise import L1, L2, ElasticNet, ElementwisePenalty
from lightreg.penalties.functional import soft_threshold_
from lightreg.penalties.group import GroupLasso, GroupPenalty, SparseGroupLasso
from lightreg.penalties.group_nonconvex import GroupMCP, GroupSCAD
from lightreg.penalties.nonconvex import L0, MCP, SCAD, LogSum, NonconvexPenalty, at_strength
from lightreg.penalties.penalty import Penalty, Step
from lightreg.penalties.registry import PENALTIES, make_penalty
from lightreg.penalties.selection import select_parameters
from lightreg.penalties.term import PenaltyTerm, penalty_value

__all__ = [
    "L0",
    "L1",
    "L2",
    "MCP",
    "PENALTIES",
    "SCAD",
    "ElasticNet",
    "ElementwisePenalty",
    "GroupLasso",
    "GroupMCP",
    "GroupPenalty",
    "GroupSCAD",
    "LogSum",
    "NonconvexPenalty",
    "Penalty",
    "PenaltyTerm",
    "SparseGroupLasso",
    "Step",
    "at_strength",
    "make_penalty",
    "penalty_value",
    "select_parameters",
    "soft_threshold_",
]
