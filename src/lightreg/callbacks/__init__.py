"""Lightning callbacks: regularization (gradient or proximal) and sparsity reporting."""

from lightreg.callbacks.regularization import RegularizationCallback, regularizer

__all__ = ["RegularizationCallback", "regularizer"]
