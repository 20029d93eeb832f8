"""Lightning callbacks: regularization (gradient or proximal) and sparsity reporting."""

from lightreg.callbacks.regularization import RegularizationCallback, regularizer
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = ["RegularizationCallback", "SparsityMonitor", "regularizer"]
