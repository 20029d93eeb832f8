"""lightreg: regularized, sparse models in PyTorch Lightning.

Layers, each importing only those before it: ``penalties`` ← ``solvers`` ← ``models``, ``callbacks``, ``data`` ←
``cli`` (the run pipeline) ← ``train`` (the CLI). The layer map is in docs/development.md (the layer test reads it).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["compact", "kkt_violation"]


def __getattr__(name: str) -> Any:
    """``lightreg.kkt_violation`` (the KKT residual of a model: how far from optimal), imported on first use so
    that ``import lightreg`` stays light (the CLI checks its config before paying for torch and Lightning)."""
    if name == "kkt_violation":
        from lightreg.solvers.kkt import kkt_violation

        return kkt_violation
    if name == "compact":  # lightreg.compact(model) -> (smaller_model, report); the module is callable
        import lightreg.compact

        return lightreg.compact
    raise AttributeError(f"module 'lightreg' has no attribute {name!r}")
