"""What a training loss is made of, read from its autograd graph: the terms of its top-level sum, which of them are
hand-written weight penalties, and whether they are added or subtracted.

Pure torch, no computation: a walk over ``grad_fn`` nodes, which also works after ``backward`` (the graph's
structure outlives its saved tensors). It lets a regularization callback in *any* LightningModule see the mistakes
of a hand-written penalty that it cannot see as a separate value: a penalty subtracted instead of added, or a norm of
weights the callback already penalizes (regularized twice). A term without gradient (a penalty built from ``.data``
or ``.item()``) is not one of them: the graph holds it as a constant, which ``0 + loss`` (Python's ``sum``, an
accumulator started at 0) also gives, so it cannot be told apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

SUM_NODES = ("AddBackward0", "AddBackward1", "SubBackward0", "SubBackward1")
SCALE_NODES = ("MulBackward0", "MulBackward1", "DivBackward0", "DivBackward1")
NORM_NODE = re.compile(r"^(Abs|Pow|Norm|LinalgVectorNorm|Sqrt|Square|Sgn)Backward")
DATA_NODE = re.compile(r"mm|conv|embedding|mv|dot|einsum|linear|attention|lstm|gru|rnn|index|gather", re.IGNORECASE)
"""Operations that mix weights with data (matrix products, convolutions, lookups): a term holding one is a data
term, whatever else it holds."""


@dataclass
class LossTerm:
    """One term of a loss's top-level sum with a graph: ``sign`` (+1 added, -1 subtracted) and, for a term made of
    weights alone through norms, the parameters it penalizes (``penalized``, by ``id``)."""

    sign: int
    penalized: set[int] = field(default_factory=set)

    @property
    def is_penalty(self) -> bool:
        return bool(self.penalized)


def loss_terms(loss: Tensor) -> list[LossTerm]:
    """The terms of ``loss``'s top-level sum: ``a + b - c`` gives three; a constant factor (``0.5 * t``, ``t / n``)
    keeps the term it scales; constants are left out. ``[]`` for a loss without a graph."""
    if loss.grad_fn is None:
        return []
    terms: list[LossTerm] = []
    stack: list[tuple[Any, int]] = [(loss.grad_fn, 1)]
    while stack:
        node, sign = stack.pop()
        if node is None:  # a constant
            continue
        name = type(node).__name__
        children = [child for child, _ in node.next_functions]
        if name in SUM_NODES:
            subtracted = name.startswith("Sub")
            stack.extend((child, -sign if subtracted and i == 1 else sign) for i, child in enumerate(children))
        elif name in SCALE_NODES and sum(child is not None for child in children) == 1:
            stack.append((next(child for child in children if child is not None), sign))
        else:
            terms.append(LossTerm(sign, _weight_norm_leaves(node)))
    return terms


def _weight_norm_leaves(root: Any) -> set[int]:
    """The ``id`` of every leaf tensor under ``root`` when the subgraph is a norm of weights alone (a norm-like node,
    no operation that mixes in data); empty otherwise."""
    leaves: set[int] = set()
    has_norm = False
    for node in graph_nodes(root):
        name = type(node).__name__
        if DATA_NODE.search(name):
            return set()
        has_norm = has_norm or bool(NORM_NODE.match(name))
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf tensor
        if variable is not None:
            leaves.add(id(variable))
    return leaves if has_norm else set()


def graph_nodes(root: Any, expand: Callable[[Any], bool] = lambda node: True) -> Iterator[Any]:
    """Each ``grad_fn`` node under ``root`` once, depth first; a node's inputs are visited when ``expand(node)``."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        yield node
        if expand(node):
            stack.extend(child for child, _ in node.next_functions)


__all__ = ["LossTerm", "graph_nodes", "loss_terms"]
