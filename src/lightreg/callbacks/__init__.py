"""Lightning callbacks: regularization (gradient, proximal or exact), the full-batch exact finish, activity
regularization and sparsity monitoring."""

from lightreg.callbacks.activity import ActivityRegularization
from lightreg.callbacks.channel_pruning import ChannelPruning
from lightreg.callbacks.checkpoint import InterruptCheckpoint, LastCheckpoint
from lightreg.callbacks.exact_finish import ExactFinish
from lightreg.callbacks.penalty_factory import regularizer
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = [
    "ActivityRegularization",
    "ChannelPruning",
    "ExactFinish",
    "InterruptCheckpoint",
    "LastCheckpoint",
    "RegularizationCallback",
    "SparsityMonitor",
    "regularizer",
]
