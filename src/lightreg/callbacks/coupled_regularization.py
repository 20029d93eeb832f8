"""The regularization callback for ``groups=coupled``: group lasso over Torch-Pruning's coupled channel groups.

Selection: a group is penalized when every weight slice of it (tensors with ``ndim >= 2``: the producer's filters
and the consumers' input slices) lies in a parameter chosen by ``include``/``exclude``; its bias and normalization
slices then come with it (selected or not), so that the whole group can reach zero together. A partly selected
group (``exclude=net.fc.*`` leaves the last conv's groups half chosen) is not penalized at all: excluding a layer
shields every channel coupled to it.

Group weights: ``penalty.group_weight=sqrt_size`` (``√size_g``) or ``macs`` (each group's multiply-accumulates per
sample, normalized as in :mod:`lightreg.penalties.coupled`), counted once here with Torch-Pruning's per-layer counter
on the same example input, over the penalized groups.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from typing_extensions import override

from lightreg.callbacks.regularization import SHARDING_STRATEGIES, RegularizationCallback
from lightreg.compact.coupling import coupled_layout, macs_per_entry
from lightreg.errors import UserError
from lightreg.penalties import PenaltyTerm, select_parameters
from lightreg.penalties.coupled import CoupledGroupLasso
from lightreg.solvers import prox_step

EXAMPLE_BATCH = 2
"""Rows of the example input traced once to find the groups (two, so batch norms see a batch)."""


class CoupledRegularizationCallback(RegularizationCallback):
    """:class:`RegularizationCallback` whose penalty is a :class:`~lightreg.penalties.coupled.CoupledGroupLasso`.

    The groups come from one forward pass of the model on an input of its ``input_shape`` (eval mode, the batch
    norms' statistics untouched), and so do their MACs for ``group_weight="macs"``. Modes ``prox`` (with
    ``refit_epochs``: the groups zero after the penalty phase stay zero in every tensor they span while the others are
    fine-tuned) and ``grad``; ``exact`` is refused (the full-batch finish works tensor by tensor).
    """

    def __init__(self, penalty: CoupledGroupLasso, strength: float, **options: Any) -> None:
        if not isinstance(penalty, CoupledGroupLasso):
            raise UserError(f"penalty must be a CoupledGroupLasso, got {penalty!r}")
        if options.get("mode") == "exact":
            raise UserError("groups=coupled supports mode=prox or mode=grad, got mode=exact: set penalty.mode=prox")
        super().__init__(penalty, strength, **options)
        self.coupled = penalty
        self.num_groups = 0
        self._bound_to: int | None = None  # id() of the module whose groups `coupled` holds

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(trainer.strategy, SHARDING_STRATEGIES):
            raise UserError(
                f"groups=coupled needs whole tensors but {type(trainer.strategy).__name__} shards parameters; "
                "use trainer.strategy=ddp"
            )
        if not self.bound_to(pl_module):
            self.bind(pl_module)
        self._finisher = None

    def bound_to(self, module: nn.Module) -> bool:
        """Whether the penalty holds the groups of ``module`` as it is now (the same parameter objects: a module pruned
        in place since gets new ones)."""
        named = dict(module.named_parameters())
        return self._bound_to == id(module) and all(named.get(n) is p for n, p in self.params.items())

    def bind(self, module: nn.Module, penalty: CoupledGroupLasso | None = None) -> None:
        """Penalize the coupled groups of ``module``: traced now (:func:`bind_coupled`), or those of ``penalty``, this
        callback's penalty already bound to this module's groups (a λ path traces once for all of its points)."""
        named = dict(module.named_parameters())
        if penalty is None:
            penalty = bind_coupled(self.coupled, module, self.include, self.exclude)
        elif repr(penalty) != repr(self.coupled) or any(
            n not in named or named[n].shape != shape for n, shape in penalty.groups.shapes.items()
        ):
            raise UserError(f"{penalty!r} is not bound to the groups of {type(module).__name__}: bind it to this model")
        self.penalty = self.coupled = penalty
        self.num_groups = penalty.groups.num_groups
        self.params = {n: named[n] for n in penalty.groups.names}
        self._param_ids = {id(p) for p in self.params.values()}
        self._bound_to = id(module)

    @override
    def as_term(self, epoch: int | None = None) -> PenaltyTerm:
        raise UserError(
            "groups=coupled has no per-tensor penalty term (KKT report, full-batch finish): use groups=rows|columns"
        )

    @override
    def lambda_max(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float | None:
        return None

    @override
    @torch.no_grad()
    def _penalty_value(self) -> Tensor:
        return self.coupled.value(self.params)

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.support is not None:  # the refit: zeroed groups get no gradient
            self.support.mask_grads_(self.params)
        if self.mode != "grad":
            return
        lam = self.current_strength(trainer.current_epoch)
        if lam == 0:
            return
        for name, grad in self.coupled.grad({n: p.detach() for n, p in self.params.items()}).items():
            param = self.params[name]
            if param.grad is not None:
                param.grad.add_(grad, alpha=lam)

    @torch.no_grad()
    def _after_optimizer_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self.support is not None:  # momentum and weight decay move masked entries too
            self.support.apply_(self.params)
        lam = self._step_strength
        if lam == 0:
            return
        steps: dict[str, float | Tensor] = {}
        by_id = {id(p): n for n, p in self.params.items()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) in by_id:
                    steps[by_id[id(p)]] = prox_step(
                        optimizer, group, p, self.adaptive, floor=lam, scale=lam, warmup=self._prox_warmup
                    )
        if len(steps) != len(self.params):  # a coupled tensor outside this optimizer: shrink nothing rather than part
            return
        self.coupled.prox_(self.params, steps)


def bind_coupled(
    penalty: CoupledGroupLasso, module: nn.Module, include: list[str] | None, exclude: list[str] | None
) -> CoupledGroupLasso:
    """``penalty`` bound to the coupled groups of ``module`` that ``include``/``exclude`` select (see the module
    docstring), with the ``macs`` group weights when ``penalty.group_weight`` asks for them: one trace of ``module`` on
    an example input of its ``input_shape`` (eval mode, the batch norms' statistics untouched)."""
    shape = getattr(module, "input_shape", None)
    if shape is None:
        raise UserError(
            f"groups=coupled traces the model once on an example input, but {type(module).__name__} has no "
            "input_shape attribute: set self.input_shape = (features,) or (C, H, W) in its __init__"
        )
    selected = {n for n, _ in select_parameters(module, include, exclude)}
    reference = next(module.parameters())
    example = torch.randn(EXAMPLE_BATCH, *shape, device=reference.device, dtype=reference.dtype)
    layout, _ = coupled_layout(module, example)
    groups = layout.restrict(selected, {n: p.shape for n, p in module.named_parameters()})
    if penalty.group_weight == "macs":
        groups = groups.weighted(groups.macs_weights(macs_per_entry(module, example, groups.names)))
    return penalty.bind(groups)


__all__ = ["CoupledRegularizationCallback", "bind_coupled"]
