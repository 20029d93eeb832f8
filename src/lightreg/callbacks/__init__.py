"""Lightning callbacks: regularization (gradient or proximal), activity regularization and sparsity reporting."""

from lightreg.callbacks.activity import ActivityRegularization
from lightreg.callbacks.exact_support import ProximalFinish
from lightreg.callbacks.regularization import RegularizationCallback, regularizer
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = ["ActivityRegularization", "ProximalFinish", "RegularizationCallback", "SparsityMonitor", "regularizer"]
