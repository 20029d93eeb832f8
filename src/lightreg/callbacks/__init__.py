"""Lightning callbacks: regularization (gradient or proximal) and sparsity reporting."""

from lightreg.callbacks.exact_support import ProximalFinish
from lightreg.callbacks.regularization import RegularizationCallback, regularizer
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = ["ProximalFinish", "RegularizationCallback", "SparsityMonitor", "regularizer"]
