"""Models: the base module and its subclasses (each only builds ``self.net``)."""

from lightreg.models.base import LightregModule
from lightreg.models.linear import LogisticRegression
from lightreg.models.mlp import MLP

__all__ = ["LightregModule", "LogisticRegression", "MLP"]
