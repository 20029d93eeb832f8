"""Models: the base module and its subclasses (each only builds ``self.net``)."""

from lightreg.models.base import LightregModule
from lightreg.models.cnn import CNN
from lightreg.models.linear import LogisticRegression
from lightreg.models.mlp import MLP
from lightreg.models.resnet import ResNet

__all__ = ["CNN", "MLP", "LightregModule", "LogisticRegression", "ResNet"]
