"""The pitfall doctor: catches the mistakes of hand-written penalties before they silently train something else.

A model that regularizes by hand returns named terms from :meth:`LightregModule.extra_loss_terms`; the base module
adds them to the training loss. :func:`check_terms` examines each term the first time its name appears (normally on
the first training step) and raises :class:`~lightreg.errors.UserError` naming the term when it

- is not a tensor (a Python number: a constant, or ``.item()``): zero gradient, nothing regularized;
- has no autograd graph (``.data``, ``.detach()``, ``torch.no_grad``): zero gradient again;
- has a graph that reaches none of the model's parameters (e.g. built from a fresh ``requires_grad`` tensor);
- is not a scalar, or not finite;
- is negative: a subtracted penalty rewards large weights without bound.

A penalty added to the validation loss cannot happen: ``extra_loss_terms`` and the
regularization callbacks only act in ``training_step``, and ``val/loss`` is the data loss alone, so validation
figures of runs with different λ compare the fit itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from weakref import WeakKeyDictionary

from torch import Tensor, nn

from lightreg.errors import UserError
from lightreg.loss_graph import graph_nodes

_checked: WeakKeyDictionary[nn.Module, set[str]] = WeakKeyDictionary()
EXAMPLE = "{'l1': lam * self.net.fc1.weight.abs().sum()}"


def check_terms(module: nn.Module, terms: Mapping[str, object]) -> None:
    """Diagnose every term of ``terms`` whose name ``module`` has not shown before (one check per name and module,
    so the per-step cost after the first step is a set lookup)."""
    seen = _checked.setdefault(module, set())
    for name, term in terms.items():
        if name not in seen:
            diagnose(name, term, module)
            seen.add(name)


def reaches_parameter(term: Tensor, module: nn.Module) -> bool:
    """True when the autograd graph of ``term`` leads to a parameter of ``module`` (a walk over ``grad_fn`` nodes,
    no computation)."""
    params = {id(p) for p in module.parameters()}
    if id(term) in params:
        return True
    for node in graph_nodes(term.grad_fn):
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf tensor
        if variable is not None and id(variable) in params:
            return True
    return False


def diagnose(name: str, term: object, module: nn.Module) -> None:
    """Raise :class:`UserError` if the extra loss term ``name`` cannot regularize ``module`` (see the module doc)."""
    where = f"{type(module).__name__}.extra_loss_terms()[{name!r}]"
    if not isinstance(term, Tensor):
        raise UserError(
            f"{where} is a {type(term).__name__} ({term!r}), not a tensor computed from the parameters: a constant "
            "has zero gradient, so it regularizes nothing (e.g. `loss + 0.5 * L1` with L1 = 0.2, "
            f"or a `.item()`). Compute it from the weights themselves, e.g. {EXAMPLE}"
        )
    if term.numel() != 1:
        raise UserError(f"{where} must be a scalar tensor, got shape {tuple(term.shape)}: reduce it, e.g. with .sum()")
    if term.grad_fn is None and not term.requires_grad:
        raise UserError(
            f"{where} has no autograd graph (grad_fn is None): it was computed from `.data`, `.detach()` or under "
            "torch.no_grad(), so its gradient is zero and it regularizes nothing (e.g. "
            f"torch.norm(layer.weight.data, p=1)). Use the parameter itself, e.g. {EXAMPLE}"
        )
    if not reaches_parameter(term, module):
        raise UserError(
            f"{where} depends on none of {type(module).__name__}'s parameters (its autograd graph reaches only "
            "tensors created elsewhere, e.g. torch.tensor(0.2, requires_grad=True)), so it regularizes nothing. "
            f"Compute it from the model's weights, e.g. {EXAMPLE}"
        )
    value = float(term.detach())
    if not math.isfinite(value):
        raise UserError(f"{where} is {value} at the first step: check its inputs and its strength")
    if value < 0:
        raise UserError(
            f"{where} is negative ({value:.4g}): a penalty is added to the loss, never subtracted; minimizing "
            "-λ·R grows the weights without bound (e.g. `loss - lam * L1`). Return +λ·R with "
            "λ >= 0, e.g. " + EXAMPLE
        )
