"""Lightning callbacks: regularization (gradient, proximal or exact) and sparsity monitoring."""

from lightreg.callbacks.checkpoint import LastCheckpoint
from lightreg.callbacks.regularization import RegularizationCallback, regularizer
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = ["LastCheckpoint", "RegularizationCallback", "SparsityMonitor", "regularizer"]
