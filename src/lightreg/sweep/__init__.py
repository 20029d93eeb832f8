"""Sweeps: the end-of-multirun summary (a Hydra callback) and the table and plot it writes."""

from lightreg.sweep.callback import SweepSummary

__all__ = ["SweepSummary"]
