"""Proximal optimizers: torch's SGD, Adam, AdamW, Adagrad and RMSprop with a penalty applied inside their own step.
Pure torch; no Lightning.

A :class:`FusedPenalty` attached to one of these optimizers (the regularization callback does it) is applied in the
same per-parameter pass as the update (:mod:`lightreg.optim.updates`): its gradient (``mode="grad"``) or its
proximal step in the optimizer's own metric (``mode="prox"``, the step of :func:`lightreg.solvers.prox_step`,
warm-up bound included). Without a penalty the step equals the torch optimizer's; the state and ``state_dict`` are
the torch optimizer's (an instance is also an instance of the torch class), so checkpoints load either way.

``compile``: ``"off"`` runs the eager update through two scratch buffers shared by all parameters (no weight-sized
temporary), a tensor larger than them in chunks (flat views; every update is elementwise, so the result is the same),
which bounds that scratch by :data:`SCRATCH_FRACTION` of the parameters (or :data:`SCRATCH_MIN` entries); ``"on"`` runs it through :func:`torch.compile` (one graph over the whole parameter group; Inductor fuses
each tensor's chain into one loop, and every scalar that changes between steps is a tensor input, so a learning-rate
schedule never recompiles); ``"auto"`` compiles when the run is long and large enough to pay back the first compile
(:func:`should_compile`).
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

from lightreg.errors import UserError
from lightreg.optim import updates
from lightreg.optim.updates import Elementwise
from lightreg.penalties import ElementwisePenalty, Penalty

COMPILE_MODES = ("auto", "on", "off")
AUTO_MIN_PARAMETERS = 1_000_000
"""``compile="auto"``: parameters (entries) below which the compiled step is not worth its first compile."""
AUTO_MIN_WORK = 1.2e10
"""``compile="auto"``: entry-steps (optimizer steps × parameters) from which the compiled step pays back its first
compile: a cold compile costs up to ~90 s on one busy CPU core and saves ~7.5 ns per entry and step against the eager
fused step (Adam + L1 prox, ``benchmarks/speed/fused_penalty.py``): 2.7 M weights break even after ~4 500 steps."""
UNSUPPORTED_FLAGS = ("maximize", "capturable", "differentiable", "fused")
SCRATCH_FRACTION = 0.01
"""Eager steps: the two scratch buffers together hold at most this fraction of the optimizer's entries of their dtype
and device (the penalty's extra memory, ``benchmarks/speed/fused_penalty.py --parts memory``) ..."""
SCRATCH_MIN = 1 << 16
"""... or this many entries per buffer (256 KiB in float32), whichever is more: each chunk costs a dispatch per
operation, which on chunks of a few thousand entries made the eager step 1.6-1.8x slower (a model of 256x256 layers
updated in 5 chunks a tensor); from ~13 M parameters on, the 1 % bound is the larger. A group penalty's adaptive prox
needs its per-entry step over the whole tensor: its tensors are updated whole, through buffers of their size."""


def should_compile(mode: str, parameters: int, steps: float) -> bool:
    """Whether ``compile=mode`` compiles a run of ``steps`` optimizer steps over ``parameters`` entries (``auto``: at
    least :data:`AUTO_MIN_PARAMETERS` entries and ``steps · parameters ≥`` :data:`AUTO_MIN_WORK`; an unknown length
    counts as long)."""
    if mode == "auto":
        return parameters >= AUTO_MIN_PARAMETERS and steps * parameters >= AUTO_MIN_WORK
    return mode == "on"


def elementwise_value(p: Tensor, pen: Elementwise | None) -> Tensor | None:
    """``a‖p‖₁ + b/2 ‖p‖²`` (unit strength) of an elementwise penalty part, read without a weight-sized temporary while
    ``p`` is still in cache from its update; ``None`` without one."""
    if pen is None or (pen.a == 0 and pen.b == 0):
        return None
    l1 = torch.linalg.vector_norm(p, 1) * pen.a if pen.a > 0 else None
    if pen.b == 0:
        return l1
    l2 = torch.linalg.vector_norm(p, 2).square() * (pen.b / 2)
    return l2 if l1 is None else l1 + l2


READ_OPTIONS = {"realize_reads_threshold": 1, "realize_cpu_opcount_threshold": 5}
"""Inductor options of the graph that also reads the value: the updated tensor is stored once and the reduction reads
it back, where by default the reduction recomputes the whole update chain in a loop of its own (Adam: 3× less time
for the value on the deep MLP, ``benchmarks/speed/fused_penalty.py``)."""
_COMPILED: dict[tuple[Callable[..., Any], bool], Callable[..., Any]] = {}


def compiled_update(update: Callable[..., Any], read: bool) -> Callable[..., Any]:
    """``update`` over a whole parameter group as one :func:`torch.compile` graph (``(calls, pens, returns)`` ->
    the steps that ``returns`` asks for, and, when ``read``, the value of each tensor's penalty part), one per update
    kind and ``read`` in the process: a new optimizer over tensors of the same shapes reuses the graph, so only a
    process's first compiled step pays the compile. Each gets a code object of its own: Dynamo keeps its graphs (and
    its limit of 8 recompiles) per code object, and one kind alone needs up to 6 (no penalty / grad / prox, each on a
    first and a later SGD step)."""
    if (update, read) not in _COMPILED:

        def group_update(
            calls: list[list[Any]], pens: list[Elementwise | None], returns: tuple[bool, ...]
        ) -> tuple[list, list]:
            steps, values = [], []
            for args, pen, wanted in zip(calls, pens, returns):
                step = update(*args, pen, None, None)
                steps.append(step if wanted else None)
                values.append(elementwise_value(args[0], pen) if read and not wanted else None)
            return steps, values

        name = f"group_update_{update.__name__}{'_read' if read else ''}"
        code = group_update.__code__.replace(co_name=name)
        own = types.FunctionType(code, group_update.__globals__, name, None, group_update.__closure__)
        _COMPILED[update, read] = torch.compile(own, options=READ_OPTIONS if read else None)
    return _COMPILED[update, read]


@dataclass(eq=False)
class FusedPenalty:
    """``strength · penalty`` on ``params``, applied by ``mode`` (``grad`` | ``prox``) inside the optimizer step.

    ``strength`` may change between steps (the callback's λ warm-up); ``adaptive`` uses the optimizer's metric for the
    prox (else ``lr·λ``); ``warmup``: optimizer steps during which that metric step is bounded by ``lr``.
    """

    penalty: Penalty
    strength: float
    mode: str
    params: list[Tensor]
    adaptive: bool = True
    warmup: int = 0
    read_value: bool = True
    """Whether the following steps read :attr:`value`; off, a step leaves it ``None`` and costs no extra reduction
    (the owner switches it on for the steps whose value it logs)."""
    ids: set[int] = field(init=False)
    value: Tensor | None = field(default=None, init=False)
    """``R(params)`` (unit strength) after the optimizer's last step that read it, as a 0-dim tensor (no host sync),
    read in the step's own pass where it can: what the callback logs instead of reading every weight once more."""

    def __post_init__(self) -> None:
        if self.mode not in ("grad", "prox"):
            raise UserError(f"a fused penalty's mode must be 'grad' or 'prox', got {self.mode!r}")
        self.ids = {id(p) for p in self.params}


class ProximalOptimizer(Optimizer, ABC):
    """Mixin before a torch optimizer class: the fused step over :attr:`update_fn`, penalty attachment, scratch
    buffers and the compiled path. ``Prox*(params, compile="off", **torch_optimizer_arguments)``."""

    update_fn: Callable[..., Any]
    varying: tuple[int, ...]
    """Positions of the update's arguments that change between steps (learning rate, step count)."""

    def __init__(self, params: Iterable[nn.Parameter] | Iterable[dict], compile: str | bool = "off", **kw: Any) -> None:
        super().__init__(params, **kw)  # the torch optimizer's own __init__ (next in the MRO)
        mode = {True: "on", False: "off"}.get(compile, compile) if isinstance(compile, bool) else compile
        if mode not in COMPILE_MODES:
            raise UserError(f"compile must be one of {COMPILE_MODES} (or true/false), got {compile!r}")
        for group in self.param_groups:
            bad = [flag for flag in UNSUPPORTED_FLAGS if group.get(flag)]
            if bad:
                raise UserError(f"{type(self).__name__} does not support {bad[0]}=True; use torch.optim's optimizer")
        self.compile = mode
        self.penalties: list[FusedPenalty] = []
        self._by_param: dict[int, FusedPenalty] = {}
        self._scratch: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        self._views: dict[tuple[torch.dtype, torch.device, torch.Size], tuple[Tensor, Tensor]] = {}  # of _scratch
        self._chunks: dict[tuple[torch.dtype, torch.device], int] = {}  # entries per scratch buffer (_chunk)
        self._compiled: bool | None = None  # None: not decided yet (the first step after plan())
        self._expected_steps = 0.0  # unknown until plan(): compile="auto" stays eager

    # -- attachment ---------------------------------------------------------------------------------------------------
    def can_fuse(self, penalty: object, params: Iterable[Tensor]) -> bool:
        """Whether :meth:`attach` takes ``penalty`` on ``params``: a per-tensor penalty on parameters no other fused
        penalty holds."""
        return isinstance(penalty, Penalty) and not any(id(p) in self._by_param for p in params)

    def attach(self, fused: FusedPenalty) -> None:
        """Apply ``fused`` inside every following step (its parameters that this optimizer updates)."""
        if not self.can_fuse(fused.penalty, fused.params):
            raise UserError(f"{type(self).__name__}: {fused.penalty!r} overlaps a penalty fused already")
        self.penalties.append(fused)
        self._by_param.update({id(p): fused for p in fused.params})

    def detach(self, fused: FusedPenalty) -> None:
        """Stop applying ``fused``."""
        self.penalties = [f for f in self.penalties if f is not fused]
        self._by_param = {key: f for key, f in self._by_param.items() if f is not fused}

    def plan(self, steps: float) -> None:
        """The run's optimizer steps (``inf``: no set length), for ``compile="auto"`` (the regularization callback
        passes Lightning's ``estimated_stepping_batches``; without it ``auto`` stays eager)."""
        self._expected_steps = steps
        self._compiled = None

    def compiles(self) -> bool:
        """Whether steps run through the compiled update."""
        numel = sum(p.numel() for g in self.param_groups for p in g["params"])
        return should_compile(self.compile, numel, self._expected_steps)

    # -- the step -----------------------------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._chunks = {}  # the chunk size follows the optimizer's entries (torch's __init__ comes here first)

    def _chunk(self, p: Tensor) -> int:
        """Entries per scratch buffer for ``p``'s dtype and device: :data:`SCRATCH_FRACTION` / 2 of the optimizer's
        entries of that dtype and device, at least :data:`SCRATCH_MIN`."""
        key = (p.dtype, p.device)
        if key not in self._chunks:
            entries = sum(q.numel() for g in self.param_groups for q in g["params"] if (q.dtype, q.device) == key)
            self._chunks[key] = max(SCRATCH_MIN, int(entries * SCRATCH_FRACTION / 2))
        return self._chunks[key]

    def _buffers(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """Two scratch views shaped like ``like`` out of one buffer per dtype/device (grown when a tensor needs more;
        at first as large as one chunk, or as the largest tensor when that is smaller). The views of each shape are
        made once (slicing and viewing cost more per call than many small tensors' updates)."""
        views = self._views.get((like.dtype, like.device, like.shape))
        if views is not None:
            return views
        key, n = (like.dtype, like.device), like.numel()
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < 2 * n:
            largest = max(q.numel() for g in self.param_groups for q in g["params"] if (q.dtype, q.device) == key)
            size = max(n, min(largest, self._chunk(like)))
            buf = self._scratch[key] = torch.empty(2 * size, dtype=like.dtype, device=like.device)
            self._views = {k: v for k, v in self._views.items() if k[:2] != key}  # views of the old buffer go with it
        views = self._views[(*key, like.shape)] = (buf[:n].view_as(like), buf[n : 2 * n].view_as(like))
        return views

    def _penalty_of(self, p: Tensor, state: dict[str, Any], factor: float) -> tuple[FusedPenalty, Elementwise] | None:
        """The fused penalty of ``p`` and the part the update applies (``None`` without one or at λ = 0)."""
        fused = self._by_param.get(id(p))
        if fused is None or fused.strength == 0:
            return None
        lam = fused.strength
        penalty = fused.penalty
        a, b = (penalty.l1_weight, 1 - penalty.l1_weight) if isinstance(penalty, ElementwisePenalty) else (0.0, 0.0)
        step = float(state["step"]) if "step" in state else 0.0
        floor = max(lam, factor) if step <= fused.warmup else lam
        return fused, Elementwise(fused.mode, lam, a, b, fused.adaptive, floor)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._compiled is None:  # decided at the first step after plan()
            self._compiled = self.compiles()
        values: dict[int, Tensor] = {}  # id(p) -> R(p) read in the update's pass
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise UserError(f"{type(self).__name__} does not support sparse gradients")
            if not self._compiled:
                for p in params:
                    self._step_param(p, group, values)
            else:
                self._step_group_compiled(params, group, values)
        for fused in self.penalties:
            if not fused.read_value:
                fused.value = None
                continue
            parts = [values[id(p)] if id(p) in values else fused.penalty.value(p) for p in fused.params]
            fused.value = torch.stack(parts).sum() if parts else None
        return loss

    def _prepare(self, p: Tensor, group: dict[str, Any]) -> tuple[list[Any], Elementwise | None, FusedPenalty | None]:
        """The update's arguments for ``p``, the penalty part it applies, and the fused penalty whose prox the caller
        applies from the returned step (a group penalty; its gradient is added here)."""
        state = self.state[p]
        args, factor = self._arguments(p, group, state)
        found = self._penalty_of(p, state, factor)
        if found is None:
            return args, None, None
        fused, pen = found
        if isinstance(fused.penalty, ElementwisePenalty):
            return args, pen, None
        if pen.mode == "grad":
            p.grad.add_(fused.penalty.grad(p), alpha=pen.lam)
            return args, None, None
        return args, pen, fused

    def _step_param(self, p: Tensor, group: dict[str, Any], values: dict[int, Tensor]) -> None:
        args, pen, group_penalty = self._prepare(p, group)
        update = type(self).update_fn
        chunk = self._chunk(p)
        shaped = [isinstance(a, Tensor) and a.shape == p.shape for a in args]  # p, its gradient and state
        if (
            group_penalty is not None
            or p.numel() <= chunk
            or not all(a.is_contiguous() for a, s in zip(args, shaped) if s)
        ):
            step = update(*args, pen, *self._buffers(p))
        else:  # in chunks: flat views of every tensor shaped like p, the scalars as they are
            flat = [a.view(-1) if s else a for a, s in zip(args, shaped)]
            for start in range(0, p.numel(), chunk):
                part = [a[start : start + chunk] if s else a for a, s in zip(flat, shaped)]
                update(*part, pen, *self._buffers(part[0]))
        if group_penalty is not None:
            group_penalty.penalty.prox_(p, step)
        elif pen is not None and self._by_param[id(p)].read_value and (value := elementwise_value(p, pen)) is not None:
            values[id(p)] = value

    def _step_group_compiled(self, params: list[Tensor], group: dict[str, Any], values: dict[int, Tensor]) -> None:
        """One compiled call over the group: every scalar that changes between steps (learning rate, step count, λ,
        floor) is a 0-dim tensor input, one per distinct value, so a new value never recompiles."""
        scalars: dict[tuple[Any, float], Tensor] = {}
        dtype = params[0].dtype if params else torch.float32  # a float64 scalar would turn Inductor's loops to float64

        def scalar(role: Any, x: float) -> Tensor:
            key = (role, x)
            if key not in scalars:  # one tensor per distinct value, not one per parameter
                scalars[key] = torch.tensor(x, dtype=dtype)
            return scalars[key]

        calls, pens, owners = [], [], []
        for p in params:
            args, pen, group_penalty = self._prepare(p, group)
            for i in self.varying:
                args[i] = scalar(i, args[i])
            if pen is not None:
                lam, floor = scalar("lam", pen.lam), scalar("floor", pen.floor)
                pen = Elementwise(pen.mode, lam, pen.a, pen.b, pen.adaptive, floor)  # type: ignore[arg-type]
            calls.append(args)
            pens.append(pen)
            owners.append(group_penalty)
        reading = any(f.read_value for f in self.penalties)
        update = compiled_update(type(self).update_fn, reading)
        steps, read = update(calls, pens, tuple(o is not None for o in owners))
        for p, owner, step, value in zip(params, owners, steps, read):
            if owner is not None:
                owner.penalty.prox_(p, step)
            elif value is not None:
                values[id(p)] = value

    @abstractmethod
    def _arguments(self, p: Tensor, group: dict[str, Any], state: dict[str, Any]) -> tuple[list[Any], float]:
        """The update's positional arguments up to the penalty (the optimizer's state initialized and its step counted),
        and the learning-rate factor of the prox floor."""


def _count(state: dict[str, Any]) -> float:
    state["step"] += 1
    return float(state["step"])


class ProxSGD(ProximalOptimizer, SGD):
    """:class:`torch.optim.SGD` (momentum, dampening, Nesterov, weight decay) with a fused penalty (prox step lr·λ)."""

    update_fn = staticmethod(updates.sgd_)
    varying = (4,)

    def _arguments(self, p: Tensor, group: dict[str, Any], state: dict[str, Any]) -> tuple[list[Any], float]:
        momentum = group["momentum"]
        buf, first = None, False
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = torch.empty_like(p)
                first = True
        args = [p, p.grad, buf, first, group["lr"], momentum, group["dampening"], group["nesterov"]]
        return [*args, group["weight_decay"]], 1.0


class ProxAdam(ProximalOptimizer, Adam):
    """:class:`torch.optim.Adam` (amsgrad, weight decay) with a fused penalty; the prox step is
    ``λ·lr/max(√v̂ + ε, floor)``, the denominator of the update itself."""

    update_fn = staticmethod(updates.adam_)
    varying = (5, 6)

    def _arguments(self, p: Tensor, group: dict[str, Any], state: dict[str, Any]) -> tuple[list[Any], float]:
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = _count(state)
        beta1, beta2 = group["betas"]
        decoupled = bool(group.get("decoupled_weight_decay", False))
        args = [p, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"), step, group["lr"]]
        return [*args, beta1, beta2, group["eps"], group["weight_decay"], decoupled], 1.0


class ProxAdamW(ProxAdam, AdamW):
    """:class:`torch.optim.AdamW` (decoupled weight decay) with a fused penalty, as :class:`ProxAdam`."""


class ProxAdagrad(ProximalOptimizer, Adagrad):
    """:class:`torch.optim.Adagrad` with a fused penalty; prox step ``λ·lr·c/max(√G + ε, floor)``,
    ``c = 1/(1 + (t − 1)·lr_decay)``."""

    update_fn = staticmethod(updates.adagrad_)
    varying = (3, 4)

    def _arguments(self, p: Tensor, group: dict[str, Any], state: dict[str, Any]) -> tuple[list[Any], float]:
        step = _count(state)
        factor = 1 / (1 + (step - 1) * group["lr_decay"])
        args = [p, p.grad, state["sum"], step, group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]]
        return args, factor


class ProxRMSprop(ProximalOptimizer, RMSprop):
    """:class:`torch.optim.RMSprop` (centered, momentum) with a fused penalty; prox step
    ``λ·lr/max(√(v − ḡ²) + ε, floor)``."""

    update_fn = staticmethod(updates.rmsprop_)
    varying = (5,)

    def _arguments(self, p: Tensor, group: dict[str, Any], state: dict[str, Any]) -> tuple[list[Any], float]:
        if not state:
            state["step"] = torch.tensor(0.0)
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        _count(state)
        args = [p, p.grad, state["square_avg"], state.get("grad_avg"), state.get("momentum_buffer"), group["lr"]]
        return [*args, group["alpha"], group["eps"], group["momentum"], group["weight_decay"]], 1.0


__all__ = [
    "AUTO_MIN_PARAMETERS",
    "AUTO_MIN_WORK",
    "COMPILE_MODES",
    "FusedPenalty",
    "ProxAdagrad",
    "ProxAdam",
    "ProxAdamW",
    "ProxRMSprop",
    "ProxSGD",
    "ProximalOptimizer",
    "should_compile",
]
