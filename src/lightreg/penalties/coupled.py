"""Group lasso over *coupled* groups: each group is every tensor slice tied to one prunable channel. Pure torch.

A coupled group ``g`` is a set of slices ``w.select(dim, k)`` of several tensors (a conv filter, its bias entry, the
BatchNorm scale and shift of that channel, the input slices of every consumer, the channels tied to it by a residual
add or a concatenation). Torch-Pruning's dependency graph finds them (:mod:`lightreg.compact.coupling`); this module
only does the maths over them, given for each tensor and dimension the group of every position along it
(:class:`Slices`, ``-1`` = in no group).

``R(w) = ρ Σ |w| + (1 − ρ) Σ_g c_g ‖w_g‖₂`` with ``‖w_g‖₂`` taken over all of the group's slices, ``size_g`` their
total number of entries and the group weight ``c_g`` (:data:`GROUP_WEIGHTS`) one of

- ``sqrt_size`` (default): ``c_g = √size_g``, the usual group lasso weight;
- ``macs``: ``c_g = MACs_g / (m̄ √size_g)``, with ``MACs_g`` the multiply-accumulates per sample of the group's
  slices (each slice's entries times its layer's MACs per parameter, from Torch-Pruning's per-layer counter) and
  ``m̄ = Σ_h MACs_h / Σ_h size_h`` the groups' mean MACs per parameter.

Why ``macs`` has this form: ``c_g ‖w_g‖`` stands for ``cost_g · [w_g ≠ 0]`` with the typical norm of a live group,
``∝ √size_g``, divided out: ``c_g = cost_g / √size_g``. The cost ``size_g`` (parameters) gives ``√size_g``; the cost
``MACs_g / m̄`` (MACs counted in the model's parameter-equivalents) gives the ``macs`` weight. So λ keeps its units:
``c_g = √size_g · m_g / m̄`` with ``m_g = MACs_g / size_g``, the parameter-weighted mean of ``c_g / √size_g`` is 1, and
where every parameter is used once per sample (a Linear network) ``macs`` equals ``sqrt_size``. A group on a large
feature map (a ResNet's early stages on small images) weighs more than ``√size_g``, one on a 1×1 map less.

ρ = 0 is group lasso, 0 < ρ < 1 the sparse group lasso (the ℓ1 part acts on every entry of the tensors that hold a
penalized slice).

Overlap. A consumer weight ``W[i, j]`` lies in the group of its own output channel ``i`` *and* in the group of
its input channel ``j``; the groups are disjoint only in a network with a single prunable layer. The prox applies,
from the same point ``v``, each group's exact block shrink (``max(0, 1 − step·τ/‖v_g‖)``; in an adaptive
optimizer's metric ``diag(1/s)`` the secular-equation factor ``r/(r + τ s_i)`` of
:mod:`lightreg.penalties.metric_prox`) and multiplies the factors of the groups an entry belongs to. Where no entry
is shared this is the exact prox of ``τ Σ_g ‖w_g‖``; with overlap it is the product of the groups' exact shrinks
(the prox of an overlapping group norm has no closed form). Either way a group whose norm falls below its
threshold ends with *all* of its slices exactly zero together, which is what makes it removable.

KKT pieces per group (shaped ``(num_groups,)``), all with the same weights ``c_g``: ``unit_norms`` ``‖w_g‖``,
``zero_threshold`` ``λ(1 − ρ)c_g``,
``gradient_norm`` ``‖S(g_g, λρ)‖``; ``subdiff_distance`` is ``max(‖S(g_g, λρ)‖ − τ_g, 0)`` for a zero group and, for a
non-zero one, the norm over its non-zero entries of ``g + λρ sign w + Σ_h τ_h w/‖w_h‖`` (the groups ``h`` holding
the entry), exact for disjoint groups. ``lambda_max`` is ``max_g`` of the per-group closed form (``‖g_g‖/c_g``
for ρ = 0): 0 is optimal at that λ when no entry is shared, and it is an upper bound with overlap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lightreg.errors import UserError
from lightreg.penalties.elementwise import check_ratio
from lightreg.penalties.functional import reduce_dims, soft_threshold_
from lightreg.penalties.metric_prox import NEWTON_ITERATIONS
from lightreg.penalties.penalty import Step

NEWTON_TOLERANCE = 1e-6
"""Relative move of a group's root ``r_g`` below which Newton stops for that group (the entries are float32)."""
BISECTION_STEPS = 100
"""Halvings of the per-group λ_max bracket of the sparse group lasso (float64)."""
GROUP_WEIGHTS = ("sqrt_size", "macs")
"""The group weights ``c_g`` of the module docstring (``penalty.group_weight``)."""


@dataclass(frozen=True, eq=False)
class Slices:
    """The groups of one tensor along one dimension: ``index[k]`` is the group of ``w.select(dim, k)``, ``-1`` none."""

    name: str
    dim: int
    index: Tensor

    def shaped(self, values: Tensor, like: Tensor, fill: float) -> Tensor:
        """``values[index[k]]`` (``fill`` where ``index[k] = -1``), shaped to broadcast against ``like`` along ``dim``."""
        padded = torch.cat([values.to(like.dtype), values.new_full((1,), fill, dtype=like.dtype)])
        picked = padded[self.index.to(values.device)]  # -1 picks the fill
        shape = [1] * like.ndim
        shape[self.dim] = like.shape[self.dim]
        return picked.view(shape)

    def sums(self, x: Tensor, num_groups: int) -> Tensor:
        """Per group: the sum of ``x`` over this tensor's slices in the group (float64, length ``num_groups``)."""
        per_position = (x.sum(dim=reduce_dims(x, self.dim)) if x.ndim > 1 else x).double()
        index = self.index.to(x.device)
        member = index >= 0
        out = torch.zeros(num_groups, dtype=torch.float64, device=x.device)
        return out.index_add_(0, index[member], per_position[member])


class CoupledGroups:
    """``num_groups`` coupled groups laid over named tensors by a list of :class:`Slices`.

    ``sizes[g]`` counts the entries of group ``g`` over all of its slices (an entry shared by two slices of one group,
    which does not happen for distinct dimensions of distinct channels, would count twice); ``root`` is ``√sizes``
    and ``weights`` the group weights ``c_g`` (``root`` unless given, see :meth:`weighted`).
    """

    def __init__(
        self,
        slices: Sequence[Slices],
        num_groups: int,
        shapes: Mapping[str, torch.Size],
        weights: Tensor | None = None,
    ) -> None:
        if num_groups <= 0:
            raise UserError(
                "no coupled group to penalize: the model has no prunable channel among the selected weights"
            )
        for s in slices:
            if s.name not in shapes or not 0 <= s.dim < len(shapes[s.name]):
                raise UserError(f"slice {s.name!r} dim {s.dim} does not fit the tensors {sorted(shapes)[:5]}")
            if s.index.shape != (shapes[s.name][s.dim],):
                raise UserError(
                    f"slice {s.name!r} dim {s.dim}: index of shape {tuple(s.index.shape)} for a tensor of "
                    f"shape {tuple(shapes[s.name])}"
                )
        self.slices = list(slices)
        self.num_groups = num_groups
        self.names = sorted({s.name for s in slices})
        self.shapes = {n: torch.Size(shapes[n]) for n in self.names}
        self.sizes = self.totals(dict.fromkeys(self.names, 1.0))
        self.root = self.sizes.sqrt()
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            if weights.shape != (num_groups,) or not bool(torch.isfinite(weights).all() and (weights > 0).all()):
                raise UserError(
                    f"group weights must be {num_groups} finite numbers > 0, got shape {tuple(weights.shape)} "
                    f"with min {float(weights.min()) if weights.numel() else 'n/a'}"
                )
        self.weights = self.root if weights is None else weights

    def totals(self, per_entry: Mapping[str, float]) -> Tensor:
        """Per group (float64): ``Σ`` over its slices of the slice's entries times ``per_entry[tensor name]``."""
        out = torch.zeros(self.num_groups, dtype=torch.float64)
        for s in self.slices:
            shape = self.shapes[s.name]
            entries = float(_numel(shape) // shape[s.dim]) * float(per_entry[s.name])
            member = s.index >= 0
            out.index_add_(0, s.index[member], torch.full((int(member.sum()),), entries, dtype=torch.float64))
        return out

    def weighted(self, weights: Tensor) -> CoupledGroups:
        """The same groups with the group weights ``c_g = weights[g]`` (positive, one per group)."""
        return CoupledGroups(self.slices, self.num_groups, self.shapes, weights)

    def restrict(self, selected: set[str], shapes: Mapping[str, torch.Size]) -> CoupledGroups:
        """The groups whose weight slices (tensors with ``ndim >= 2``) all lie in ``selected``, renumbered; their bias
        and normalization slices come with them, selected or not. Weights are back to ``√size_g`` (``macs`` weights
        are relative to the groups they are computed over: :meth:`weighted` the result)."""
        partly = torch.zeros(self.num_groups + 1, dtype=torch.bool)
        for s in self.slices:
            if len(shapes[s.name]) >= 2 and s.name not in selected:
                partly[s.index] = True
        keep = ~partly[:-1]
        remap = torch.full((self.num_groups + 1,), -1, dtype=torch.long)
        remap[:-1][keep] = torch.arange(int(keep.sum()))
        slices = [Slices(s.name, s.dim, remap[s.index]) for s in self.slices]
        return CoupledGroups([s for s in slices if bool((s.index >= 0).any())], int(keep.sum()), shapes)

    def macs_weights(self, macs_per_entry: Mapping[str, float]) -> Tensor:
        """The ``macs`` group weights ``c_g = MACs_g / (m̄ √size_g)`` of the module docstring, from each tensor's MACs
        per sample per entry (its layer's MACs divided by its layer's parameter count)."""
        macs = self.totals(macs_per_entry)
        if not bool((macs > 0).all()):
            raise UserError(
                f"{int((macs <= 0).sum())} of {self.num_groups} coupled groups have no counted MACs: "
                "use penalty.group_weight=sqrt_size"
            )
        mean = macs.sum() / self.sizes.sum()
        return macs / (mean * self.root)

    def reduce(self, tensors: Mapping[str, Tensor]) -> Tensor:
        """Per group: the sum over its slices of the entries of ``tensors`` (by name)."""
        device = next(iter(tensors.values())).device
        total = torch.zeros(self.num_groups, dtype=torch.float64, device=device)
        for s in self.slices:
            total += s.sums(tensors[s.name], self.num_groups)
        return total

    def norms(self, tensors: Mapping[str, Tensor]) -> Tensor:
        """``‖x_g‖₂`` per group (float64)."""
        return self.reduce({n: tensors[n].square() for n in self.names}).sqrt()

    def member_mask(self, tensors: Mapping[str, Tensor], groups: Tensor) -> dict[str, Tensor]:
        """Per tensor, a boolean mask of the entries lying in at least one group where ``groups`` (bool) is true."""
        out = {n: torch.zeros_like(tensors[n], dtype=torch.bool) for n in self.names}
        flags = groups.double()
        for s in self.slices:
            out[s.name] |= s.shaped(flags, tensors[s.name], 0.0).bool()
        return out


def _numel(shape: torch.Size) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class CoupledGroupLasso:
    """``ρ Σ |w| + (1 − ρ) Σ_g c_g ‖w_g‖₂`` over coupled groups; see the module docstring.

    ``l1_ratio=0`` is the group lasso (``name = "group_lasso"``), ``0 < l1_ratio < 1`` the sparse group lasso;
    ``group_weight`` chooses ``c_g`` (:data:`GROUP_WEIGHTS`; the groups given to :meth:`bind` carry the values). The
    groups are set by :meth:`bind` once the model is known; the ``repr`` does not depend on them (it names the penalty
    in checkpoints). All methods take the penalized tensors by name.
    """

    sparse = True
    elementwise = False
    groups_kind = "coupled"

    def __init__(
        self, l1_ratio: float = 0.0, groups: CoupledGroups | None = None, group_weight: str = "sqrt_size"
    ) -> None:
        self.l1_ratio = check_ratio(l1_ratio)
        if self.l1_ratio == 1:
            raise UserError("l1_ratio=1 with groups=coupled is plain L1: use +penalty=l1")
        if group_weight not in GROUP_WEIGHTS:
            raise UserError(f"group_weight must be one of {', '.join(GROUP_WEIGHTS)}, got {group_weight!r}")
        self.group_weight = group_weight
        self.name = "group_lasso" if self.l1_ratio == 0 else "sparse_group_lasso"
        self._groups = groups

    def __repr__(self) -> str:
        extra = f"l1_ratio={self.l1_ratio}, " if self.l1_ratio else ""
        weight = f", group_weight={self.group_weight!r}" if self.group_weight != "sqrt_size" else ""
        return f"CoupledGroupLasso({extra}groups='coupled'{weight})"

    def bind(self, groups: CoupledGroups) -> CoupledGroupLasso:
        """The same penalty over ``groups`` (whose ``weights`` are the ``c_g`` of this penalty's ``group_weight``)."""
        return CoupledGroupLasso(self.l1_ratio, groups, self.group_weight)

    @property
    def groups(self) -> CoupledGroups:
        if self._groups is None:
            raise UserError("the coupled group lasso has no groups yet: bind it to a model first")
        return self._groups

    def _tau(self, device: torch.device) -> Tensor:
        return (1 - self.l1_ratio) * self.groups.weights.to(device)

    # -- value, gradient, prox -----------------------------------------------------------------------------------
    def value(self, params: Mapping[str, Tensor]) -> Tensor:
        """R(w) as a 0-dim tensor (float64 group part)."""
        w = {n: params[n] for n in self.groups.names}
        device = next(iter(w.values())).device
        value = (self._tau(device) * self.groups.norms(w)).sum()
        if self.l1_ratio > 0:
            value = value + self.l1_ratio * sum(p.abs().sum().double() for p in w.values())
        return value.to(next(iter(w.values())).dtype)

    @torch.no_grad()
    def grad(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A subgradient per tensor: ``ρ sign w + (1 − ρ) Σ_g c_g w/‖w_g‖`` (0 on zero groups)."""
        w = {n: params[n] for n in self.groups.names}
        device = next(iter(w.values())).device
        norms = self.groups.norms(w)
        coef = torch.where(norms > 0, self._tau(device) / norms.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
        out = {n: (self.l1_ratio * p.sign()) if self.l1_ratio else torch.zeros_like(p) for n, p in w.items()}
        for s in self.groups.slices:
            out[s.name] = out[s.name] + s.shaped(coef, w[s.name], 0.0) * w[s.name]
        return out

    @torch.no_grad()
    def prox_(self, params: Mapping[str, Tensor], step: Mapping[str, Step]) -> None:
        """In place: soft-threshold at ``step·ρ``, then each group's block shrink by ``step·τ_g`` (a float step per
        tensor; per-entry steps in the adaptive metric), the factors of an entry's groups multiplied."""
        w = {n: params[n] for n in self.groups.names}
        if self.l1_ratio > 0:
            for n, p in w.items():
                soft_threshold_(p, step[n] * self.l1_ratio)
        steps = {n: step[n] for n in w}
        floats = {float(s) for s in steps.values() if not isinstance(s, Tensor)}
        if len(floats) == 1 and not any(isinstance(s, Tensor) for s in steps.values()):
            factors = self._scalar_factors(w, floats.pop())
        else:
            factors = self._metric_factors(w, steps)
        for s in self.groups.slices:
            w[s.name].mul_(factors[s])

    def _scalar_factors(self, w: Mapping[str, Tensor], step: float) -> dict[Slices, Tensor]:
        device = next(iter(w.values())).device
        norms = self.groups.norms(w)
        scale = (norms - step * self._tau(device)).clamp(min=0) / norms.clamp(min=torch.finfo(torch.float64).tiny)
        return {s: s.shaped(scale, w[s.name], 1.0) for s in self.groups.slices}

    def _metric_factors(self, w: Mapping[str, Tensor], steps: Mapping[str, Step]) -> dict[Slices, Tensor]:
        """Per slice, ``d_i r_g/(d_i r_g + τ_g)`` (``d = 1/step``) with ``r_g`` the root of the secular equation of
        :mod:`lightreg.penalties.metric_prox` over all of the group's slices (0 where ``‖v_g/s_g‖ ≤ τ_g``).

        Entries are computed in the parameters' dtype, group sums in float64; Newton stops per group once ``r_g``
        moves by at most :data:`NEWTON_TOLERANCE` relatively, and a slice none of whose groups still moves is skipped.
        """
        groups = self.groups
        device = next(iter(w.values())).device
        d = {
            n: torch.as_tensor(steps[n], dtype=w[n].dtype, device=device).reciprocal().broadcast_to(w[n].shape)
            for n in w
        }
        dv = {n: d[n] * w[n] for n in w}
        tau = self._tau(device)
        norm_dv = groups.reduce({n: dv[n].square() for n in w}).sqrt()
        zero = norm_dv <= tau
        safe_tau = torch.where(zero, 1.0, tau)
        d_max = torch.zeros(groups.num_groups, dtype=torch.float64, device=device)
        members = {}
        for s in groups.slices:
            per_position = torch.amax(d[s.name], dim=reduce_dims(d[s.name], s.dim)) if d[s.name].ndim > 1 else d[s.name]
            index = s.index.to(device)
            members[s] = index[index >= 0].unique()
            d_max.scatter_reduce_(0, index[index >= 0], per_position[index >= 0].double(), reduce="amax")
        tiny = torch.finfo(torch.float64).tiny
        r = torch.where(zero, 0.0, (norm_dv - tau) / d_max.clamp(min=tiny))
        active = ~zero
        for _ in range(NEWTON_ITERATIONS):
            a2_sum = torch.zeros_like(r)
            slope_sum = torch.zeros_like(r)
            for s in groups.slices:
                if not bool(active[members[s]].any()):
                    continue
                inv = (d[s.name] * s.shaped(r, w[s.name], 0.0)).add_(s.shaped(safe_tau, w[s.name], 1.0)).reciprocal_()
                a2 = (dv[s.name] * inv).square_()
                a2_sum += s.sums(a2, groups.num_groups)
                slope_sum += s.sums(a2.mul_(d[s.name]).mul_(inv), groups.num_groups)
            q = a2_sum.sqrt().clamp(min=tiny)
            slope = (slope_sum / q.pow(3)).clamp(min=tiny)
            update = torch.where(active, (1.0 / q - 1.0) / slope, 0.0)
            r = torch.where(active, (r - update).clamp(min=0.0), r)
            active &= update.abs() > NEWTON_TOLERANCE * r
            if not bool(active.any()):
                break
        factors = {}
        for s in groups.slices:
            r_s = s.shaped(r, w[s.name], 0.0)
            tau_s = s.shaped(safe_tau, w[s.name], 1.0)
            member = s.index.to(device) >= 0
            shape = [1] * w[s.name].ndim
            shape[s.dim] = -1
            keep = (~member).to(w[s.name].dtype).view(shape)  # 1 outside every group: factor 1 there
            dr = d[s.name] * r_s
            factors[s] = (dr / (dr + tau_s)).mul_(1 - keep).add_(keep)  # r = 0 on zero groups: factor 0
        return factors

    # -- optimality (KKT) pieces, one entry per group ---------------------------------------------------------------
    @torch.no_grad()
    def unit_norms(self, params: Mapping[str, Tensor]) -> Tensor:
        """``‖w_g‖₂`` per group."""
        return self.groups.norms({n: params[n] for n in self.groups.names})

    def zero_threshold(self, strength: float) -> Tensor:
        """``λ(1 − ρ)c_g`` per group."""
        return strength * self._tau(torch.device("cpu"))

    def gradient_norm(self, grads: Mapping[str, Tensor], strength: float) -> Tensor:
        """``‖S(g_g, λρ)‖₂`` per group (``‖g_g‖`` for ρ = 0)."""
        t = strength * self.l1_ratio
        return self.groups.norms({n: grads[n] - grads[n].clamp(min=-t, max=t) for n in self.groups.names})

    def zero_is_optimal(self, grads: Mapping[str, Tensor], strength: float) -> Tensor:
        """Per group: 0 satisfies the (per-group) KKT condition ``gradient_norm <= zero_threshold``."""
        return self.gradient_norm(grads, strength).cpu() <= self.zero_threshold(strength)

    @torch.no_grad()
    def subdiff_distance(self, params: Mapping[str, Tensor], grads: Mapping[str, Tensor], strength: float) -> Tensor:
        """Per group ``dist(−g, λ∂R(w))`` as in the module docstring."""
        w = {n: params[n] for n in self.groups.names}
        g = {n: grads[n].double() for n in self.groups.names}
        norms = self.groups.norms(w)
        smooth = self.grad(w)  # ρ sign w + Σ_h τ_h w/‖w_h‖, exact at non-zero entries
        residual = {n: (g[n] + strength * smooth[n].double()) * (w[n] != 0) for n in w}
        moving = self.groups.reduce({n: residual[n].square() for n in w}).sqrt()
        at_zero = (self.gradient_norm(grads, strength) - strength * self._tau(norms.device)).clamp(min=0)
        return torch.where(norms > 0, moving, at_zero)

    def lambda_max(self, grads: Mapping[str, Tensor]) -> float:
        """``max_g`` of the λ solving ``‖S(g_g, λρ)‖ = λ(1 − ρ)c_g`` (``‖g_g‖/c_g`` for ρ = 0)."""
        g = {n: grads[n].detach().double() for n in self.groups.names}
        rho = self.l1_ratio
        root = self.groups.weights.to(next(iter(g.values())).device)
        if rho == 0:
            return float((self.groups.norms(g) / root).max())
        high = torch.zeros_like(root)
        for s in self.groups.slices:
            peak = g[s.name].abs().amax(dim=reduce_dims(g[s.name], s.dim)) if g[s.name].ndim > 1 else g[s.name].abs()
            member = s.index.to(peak.device) >= 0
            high.scatter_reduce_(0, s.index.to(peak.device)[member], peak[member], reduce="amax")
        low, high = torch.zeros_like(high), high / rho
        for _ in range(BISECTION_STEPS):
            mid = (low + high) / 2
            gap = self._soft_norms(g, mid * rho) - mid * (1 - rho) * root
            low, high = torch.where(gap > 0, mid, low), torch.where(gap > 0, high, mid)
        return float(high.max())

    def _soft_norms(self, g: Mapping[str, Tensor], thresholds: Tensor) -> Tensor:
        """``‖S(g_g, t_g)‖₂`` per group, ``t_g`` one threshold per group."""
        total = torch.zeros_like(thresholds)
        for s in self.groups.slices:
            t = s.shaped(thresholds, g[s.name], 0.0)
            soft = g[s.name] - torch.maximum(torch.minimum(g[s.name], t), -t)
            total += s.sums(soft.square(), self.groups.num_groups)
        return total.sqrt()


def slices_from_groups(
    groups: Sequence[Sequence[tuple[str, int, Sequence[int]]]], shapes: Mapping[str, torch.Size]
) -> CoupledGroups:
    """:class:`CoupledGroups` from one list of ``(tensor name, dim, positions)`` per group (group ``g`` = its index).

    A position claimed by two groups stays with the first (document-order: the graph's first group).
    """
    index: dict[tuple[str, int], Tensor] = {}
    for g, group in enumerate(groups):
        for name, dim, positions in group:
            key = (name, dim)
            if key not in index:
                index[key] = torch.full((shapes[name][dim],), -1, dtype=torch.long)
            where = torch.as_tensor(list(positions), dtype=torch.long)
            free = index[key][where] < 0
            index[key][where[free]] = g
    slices = [Slices(name, dim, idx) for (name, dim), idx in index.items()]
    return CoupledGroups(slices, len(groups), shapes)


__all__ = ["GROUP_WEIGHTS", "CoupledGroupLasso", "CoupledGroups", "Slices", "slices_from_groups"]
