"""Lightning callbacks: regularization (gradient, proximal or exact), activity regularization and sparsity
monitoring."""

from lightreg.callbacks.activity import ActivityRegularization
from lightreg.callbacks.checkpoint import LastCheckpoint
from lightreg.callbacks.regularization import RegularizationCallback, regularizer
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = ["ActivityRegularization", "LastCheckpoint", "RegularizationCallback", "SparsityMonitor", "regularizer"]
