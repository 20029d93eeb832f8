"""The guard rails of one penalty against a collapsing fit: every penalized weight exactly zero, or a penalty that
dwarfs the data loss. Each warning is given once per penalty; plain torch and Python, fed by the penalty callback.

What the "every penalized weight is zero" guard says about a network (several weight matrices):

For a linear model λ_max = max_g ‖∇_g f(0)‖/√size is the smallest λ at which zero is optimal, and the guard
quotes it. For a network it is no guide: zero is a stationary point of a ReLU network (its gradient at the
origin is ≈ 0, λ_max 0.0063 on seed 001's ring data), yet λ = 0.04 keeps x0, x1 when the network first learns.
What a user can act on is when the layer died, at which λ, and whether the optimizer's first steps or λ did it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightreg.errors import warn

DWARF_RATIO = 10.0
"""A penalty more than this many times the data loss is said to dwarf it."""
ALL_ZERO = r".*every penalized weight is exactly zero"
"""The all-zero guard's warning (linear models and networks): a regex for filters."""
DWARFS = r".*: the penalty \(.*\) is more than .*x the data loss"
"""The dwarf guard's warning (:meth:`CollapseWatch.check_dwarf`): a regex for filters."""


class CollapseWatch:
    """The epoch sums of one penalty's value and the data loss, and the two collapse warnings, each given once.

    The penalty's mean is over the batches that read its value (the callback's logging steps and each epoch's last
    batch: :func:`lightreg.callbacks.regularization.samples_value`), the data loss's over every batch.

    Args:
        name: the penalty's name, which starts every message.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._warned: set[str] = set()
        self._first_loss: float | None = None
        self._sums = torch.zeros(4)  # Σ n·penalty, Σ n over the batches that read it; Σ n·data_loss, Σ n over all

    def start_fit(self) -> None:
        """A new fit: the first epoch's data loss is measured again."""
        self._first_loss = None

    def start_epoch(self, device: torch.device) -> None:
        self._sums = torch.zeros(4, dtype=torch.float64, device=device)

    def add_batch(self, penalty: Tensor | None, data_loss: Tensor, n: int) -> None:
        """One training batch of ``n`` samples: its penalty value λ·R (``None`` on a batch that read none) and its data
        loss (device tensors, no sync)."""
        ones = self._sums.new_ones(())
        self._sums[2:] += torch.stack((data_loss.detach().to(self._sums), ones)) * n
        if penalty is not None:
            self._sums[:2] += torch.stack((penalty.to(self._sums), ones)) * n

    def check_dwarf(self, epoch: int, strength: float) -> None:
        """Warn once when the epoch's mean penalty exceeds :data:`DWARF_RATIO` × the larger of this epoch's and the
        first epoch's data loss (a well-fit model's small loss, 0.03 on digits, is no sign that λ is too large).

        For a penalty applied as a gradient (``mode="grad"``): its gradient then enters every step beside the data
        loss's, and one that dwarfs the loss drives the weights. A proximal step is no such sign: its threshold per
        step, ``lr·λ·c_g``, not the value ``λ·R``, sets how fast weights go, and ``R`` of a group lasso grows with the
        network (ResNet-18's coupled groups: ``λ·R`` ≈ 2.5e4 at λ = 0.03 in a fit that keeps 97 % accuracy); there
        the all-zero guard says when layers die."""
        penalty_sum, sampled, loss_sum, n = self._sums.tolist()
        if n == 0 or sampled == 0:
            return
        penalty, loss = penalty_sum / sampled, loss_sum / n
        if self._first_loss is None:
            self._first_loss = loss
        if penalty > DWARF_RATIO * max(loss, self._first_loss):
            self.warn_once(
                "dwarf",
                f"{self.name}: the penalty ({penalty:.4g}) is more than {DWARF_RATIO:g}x the data loss "
                f"({loss:.4g}; {self._first_loss:.4g} after the first epoch) at epoch {epoch}: "
                f"lambda={strength:g} is likely too large and will freeze training; try a value 10-100x smaller",
            )

    def warn_once(self, kind: str, message: str) -> None:
        """Give ``message`` unless a warning of this ``kind`` was given already."""
        if kind not in self._warned:
            self._warned.add(kind)
            warn(message)


def linear_all_zero_message(name: str, epoch: int, lam: float, lam_max: float | None) -> str:
    """The guard's warning for a linear model whose weights are all zero at ``lam`` (with λ_max when known)."""
    message = (
        f"{name}: every penalized weight is exactly zero after epoch {epoch}: "
        f"lambda={lam:g} is at or above lambda_max, the model predicts from biases only."
    )
    if lam_max is not None:
        message += f" lambda_max = {lam_max:.4g} for this data; use a smaller lambda (e.g. {lam_max / 10:.2g})."
    return message


def is_network(module: nn.Module) -> bool:
    """More than one trainable weight with ``ndim >= 2`` (a linear model has exactly one)."""
    return sum(1 for p in module.parameters() if p.requires_grad and p.ndim >= 2) > 1


def network_all_zero_message(
    name: str,
    layers: list[str],
    epoch: int,
    steps: int,
    lam: float,
    strength: float,
    metric_steps: bool | None,
    by_finish: bool = False,
) -> str:
    """The guard's warning for a network whose penalized ``layers`` are all zero after ``epoch`` (``steps``
    optimizer steps so far), at the λ in force then (``lam``; ``strength`` the full λ). ``metric_steps``: True
    when the prox already used an adaptive optimizer's metric, False while it was bounded by SGD's lr·λ,
    None for SGD-like optimizers. ``by_finish``: the ``mode=exact`` full-batch finish emptied layers the
    minibatch steps had kept, so the regularized optimum near this network is empty at ``lam``."""
    if by_finish:
        return (
            f"{name}: every penalized weight is exactly zero after epoch {epoch} ({', '.join(layers)}): the network "
            f"predicts from biases only. The minibatch steps had kept some, but the mode=exact full-batch finish, "
            f"which solves f + lambda·R on the whole training set, emptied them: at lambda={lam:g} the regularized "
            f"optimum near this network is empty. Use a lambda below {lam:g} (e.g. {lam / 4:.2g}), or choose it on "
            "a path (+path=geometric)."
        )
    when = (
        f"within the first {steps} optimizer steps (epoch 0), before the network had learned: the data gradient of a "
        "fresh network is small, and"
        if epoch == 0
        else f"at epoch {epoch} ({steps} optimizer steps):"
    )
    at = f"lambda={lam:g}" + (f" (warm-up; {strength:g} in full)" if lam < strength else "")
    cause = {
        None: "",
        False: " The adaptive prox threshold was still bounded by SGD's lr·lambda then, so lambda itself did it.",
        True: " The prox threshold was in the optimizer's metric (lr·lambda/sqrt(v)) by then.",
    }[metric_steps]
    return (
        f"{name}: every penalized weight is exactly zero after epoch {epoch} ({', '.join(layers)}): the network "
        f"predicts from biases only. It died {when} {at} outweighed it.{cause} lambda_max at the origin is a "
        "linear-model quantity and no guide for a network (zero is a stationary point of a ReLU network). Use a "
        f"lambda below {lam:g} (e.g. {lam / 4:.2g}), or let the network learn first: penalty.warmup_epochs=N ramps "
        "lambda from 0 over N epochs."
    )


__all__ = [
    "ALL_ZERO",
    "DWARF_RATIO",
    "CollapseWatch",
    "is_network",
    "linear_all_zero_message",
    "network_all_zero_message",
]
