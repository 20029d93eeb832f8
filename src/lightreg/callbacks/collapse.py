"""What the "every penalized weight is zero" guard says about a network (several weight matrices).

For a linear model λ_max = max_g ‖∇_g f(0)‖/√size is the smallest λ at which zero is optimal, and the guard
quotes it. For a network it is no guide: zero is a stationary point of a ReLU network (its gradient at the
origin is ≈ 0, λ_max 0.0063 on seed 001's ring data), yet λ = 0.04 keeps x0, x1 when the network first learns.
What a user can act on is when the layer died, at which λ, and whether the optimizer's first steps or λ did it.
"""

from __future__ import annotations

from torch import nn


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


__all__ = ["is_network", "network_all_zero_message"]
