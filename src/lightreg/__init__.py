"""lightreg: regularized, sparse models in PyTorch Lightning."""

__version__ = "0.1.0"
