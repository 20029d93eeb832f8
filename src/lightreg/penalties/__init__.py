"""Regularizers as unit-strength penalties R (value, gradient, in-place prox, KKT threshold) and parameter selection.

Lightning-free: the callbacks scale each penalty by a strength λ and loop over the selected tensors.
"""

from lightreg.penalties.base import Penalty, Step
from lightreg.penalties.elementwise import L1, L2, ElasticNet
from lightreg.penalties.functional import soft_threshold_
from lightreg.penalties.group import GroupLasso
from lightreg.penalties.registry import PENALTIES, make_penalty
from lightreg.penalties.selection import select_parameters

__all__ = ["Penalty", "L1", "L2", "ElasticNet", "GroupLasso", "select_parameters", "soft_threshold_", "Step", "PENALTIES", "make_penalty"]
