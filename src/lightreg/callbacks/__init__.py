"""Lightning callbacks: regularization (gradient, proximal or exact), the full-batch exact finish, activity
regularization, sparsity monitoring and batch-norm statistics refreshed before validation."""

from lightreg.callbacks.activity import ActivityRegularization
from lightreg.callbacks.batchnorm_refresh import BatchNormRefresh
from lightreg.callbacks.channel_pruning import ChannelPruning
from lightreg.callbacks.checkpoint import InterruptCheckpoint, LastCheckpoint
from lightreg.callbacks.exact_finish import ExactFinish
from lightreg.callbacks.penalty_factory import regularizer
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.callbacks.sparsity import SparsityMonitor

__all__ = [
    "ActivityRegularization",
    "BatchNormRefresh",
    "ChannelPruning",
    "ExactFinish",
    "InterruptCheckpoint",
    "LastCheckpoint",
    "RegularizationCallback",
    "SparsityMonitor",
    "regularizer",
]
