"""Train one model along a decreasing λ grid, warm starting each point from the previous weights (Lightning glue).

1. The null model: penalized weights zero, the bias of a linear model at its closed-form optimum
   (``logit(ȳ)`` binary, ``log p_k`` multiclass, ``ȳ`` regression).
2. λ_max: for a linear model (one penalized tensor) ``penalty.lambda_max(∇f)`` at the null model on the full
   training set, the smallest λ whose optimum is all zero (as :meth:`RegularizationCallback.lambda_max`); the
   first point is that null model itself, evaluated but not trained. For a network, the smallest λ at which a
   path point's training from the initialization ends with every penalized weight at zero, found by doubling or
   halving from the gradient bound at the null model, then bisection (``path.bisect_steps``) in log space. A
   network whose penalized weights are all zero sits at a saddle point, so a point after an all-zero point
   restarts them from their initialization (``restarted`` in ``path.csv``) instead of warm starting from zero.
   With ``penalty.groups=coupled`` the penalized weights are the coupled groups (traced once, for every point),
   "zero" means every group zero over all of its slices, and the search starts from the bound at the
   initialization: a coupled group holds its producer's and its consumers' slices, so at the null model no gradient
   reaches any group and that bound is 0.
3. For each ``λ_k = λ_max · min_ratio^(k/(num−1))``: up to ``path.epochs_per_lambda`` epochs with early
   stopping on ``val/loss`` (``penalty.mode=exact`` finishes each point, also when it stopped early). With
   ``path.refit_epochs = R > 0`` (a relaxed path, Meinshausen 2007), a copy of the point then trains R epochs
   without the path's penalty, its zeros held (:class:`~lightreg.callbacks.support.HoldSupport`), and that refit
   is what is validated and checkpointed: the validation figures then compare supports, not shrinkage; the next
   point warm starts from the penalized weights. Then the validation figures with their per-sample standard
   errors, the support (with coupled groups: the groups kept, and the parameters and MACs per sample once the
   zero groups are removed), and a checkpoint.
4. λ is chosen by the best ``path.monitor`` and by the one-standard-error rule (:mod:`.selection`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from omegaconf import DictConfig
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from lightreg import run_folder
from lightreg.callbacks.collapse import ALL_ZERO, DWARFS
from lightreg.callbacks.coupled_regularization import CoupledRegularizationCallback
from lightreg.callbacks.exact_finish import LATE_FINISH, UNSETTLED_FINISH
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.callbacks.support import HoldSupport
from lightreg.cli.build import build_penalty, penalty_configs
from lightreg.cli.guard import WORSE_THAN_NULL, guard_callbacks
from lightreg.cli.pipeline import build_data, build_model, build_trainer, mark_status
from lightreg.cli.quiet import UNWATCHED_FIT, quiet_lightning
from lightreg.compact.pruning import count, remove_zero_groups
from lightreg.compact.run import TRACE_ROWS
from lightreg.errors import LightregWarning, UserError, warn
from lightreg.lambda_path import path_report
from lightreg.lambda_path.config import MONITORS, geometric_grid
from lightreg.lambda_path.rules import best_index, one_se_index, standard_error
from lightreg.models import LogisticRegression, tasks
from lightreg.penalties import Penalty, select_parameters
from lightreg.penalties.coupled import CoupledGroupLasso
from lightreg.solvers import full_batch
from lightreg.weight_stats import feature_selection

MAX_DOUBLINGS = 12
COUPLED_COLUMNS = ("groups_kept", "params_after", "macs_after")
"""``path.csv`` columns of a path over coupled groups (:meth:`PathRun.coupled_figures`)."""
RUN_SCHEDULES = ("warmup_epochs", "refit_epochs")
"""Penalty options that schedule one training run; a path warm starts each λ from the previous point instead."""


class PathRun:
    """One path: the model, its data and the per-λ training (see the module docstring)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg, self.spec = cfg, cfg.path
        scheduled = {key: cfg.penalty.get(key) for key in RUN_SCHEDULES if cfg.penalty.get(key)}
        if scheduled:
            named = ", ".join(f"penalty.{key}={value}" for key, value in scheduled.items())
            warn(
                f"path: {named} schedule a single run; the path warm starts each lambda from the previous point "
                "instead, so they are off along it (set them to 0 to silence this; path.refit_epochs=N refits every "
                "point)"
            )
        self.penalty_overrides: dict[str, Any] = dict.fromkeys(scheduled, 0)  # what a path changes in `penalty`
        self.out_dir = Path(cfg.paths.output_dir)
        self.data = build_data(cfg)
        self.model = build_model(cfg, self.data)  # in the data's units: the null model and λ_max use them
        self.model.print_epochs = False  # the progress bar reports each λ instead
        self.coupled: CoupledGroupLasso | None = None  # groups=coupled: the penalty bound to the model's groups
        probe = self.regularizer(1.0)
        if isinstance(probe, CoupledRegularizationCallback):
            if self.spec.get("finish", "auto") == "exact":
                raise UserError(
                    "path.finish=exact ends each point with the full-batch finish, which works tensor by tensor and "
                    "has no coupled groups: use path.finish=auto with penalty.groups=coupled"
                )
            probe.bind(self.model)  # the one trace of the model: every point's penalty shares these groups
            self.coupled = probe.coupled
            self.params = dict(probe.params)
        else:
            self.params = dict(select_parameters(self.model, probe.include, probe.exclude))
        self.penalty = probe.penalty
        if not self.params:
            raise UserError("the penalty selects no parameter of this model (check penalty.include/exclude)")
        self.linear = isinstance(self.model, LogisticRegression) and len(self.params) == 1
        if self.spec.get("finish", "auto") == "exact" or (
            self.spec.get("finish", "auto") == "auto" and self.linear and probe.mode == "prox"
        ):
            # a convex problem: each point ends at its optimum, so the supports (and the order in which inputs
            # enter) are the lasso's own, not the last minibatch's
            self.penalty_overrides["mode"] = "exact"
        self.initial = {
            n: p.detach().clone() for n, p in self.params.items()
        }  # the penalized weights at initialization
        self.masks: dict[str, Tensor] | None = None  # groups=coupled: the entries in a penalized group
        self.dense: dict[str, int] = {}  # groups=coupled: the parameters and MACs per sample before any removal
        if self.coupled is not None:
            groups = self.coupled.groups
            self.masks = groups.member_mask(self.params, torch.ones(groups.num_groups, dtype=torch.bool))
            # the input the removal of zero groups traces, from its own generator (the run's random stream untouched)
            shape = (TRACE_ROWS, *self.model.input_shape)
            self.example = torch.randn(shape, generator=torch.Generator().manual_seed(0))
            self.example = self.example.to(next(iter(self.params.values())))
            params, macs = count(self.model, self.example)
            self.dense = {"params_before": params, "macs_before": macs}
        names = getattr(self.data, "feature_names", None)
        # the input layer: the model's first weight, when it is a penalized matrix over the inputs (a CNN's first
        # weight is a conv: its inputs are pixels, and a later layer as wide as the image is no input layer)
        first = next((n for n, p in self.model.named_parameters() if p.ndim >= 2), None)
        weight = self.params.get(first) if first is not None else None
        self.input_name = (
            first if weight is not None and weight.ndim == 2 and weight.shape[1] == self.model.num_inputs else None
        )
        self.feature_names = (
            list(names)
            if names and len(names) == self.model.num_inputs
            else [f"x{j}" for j in range(self.model.num_inputs)]
        )

    def regularizer(self, lam: float) -> RegularizationCallback:
        """The path's penalty at strength ``lam``, its single-run schedules off, finished exactly per ``path.finish``
        (groups=coupled: over the groups traced once for the whole path)."""
        reg = build_penalty(self.cfg, "penalty", strength=float(lam), **self.penalty_overrides)
        if self.coupled is not None and isinstance(reg, CoupledRegularizationCallback):
            reg.bind(self.model, self.coupled)
        return reg

    # -- one fit --------------------------------------------------------------------------------------------------
    def trainer(self, callbacks: list[Callback], max_epochs: int) -> L.Trainer:
        """The run's ``trainer`` group for one fit of the path, with the run's guard (divergence)."""
        return build_trainer(
            self.cfg,
            [*callbacks, *guard_callbacks()],
            max_epochs=max_epochs,
            min_epochs=1,
            **UNWATCHED_FIT,
            default_root_dir=str(self.out_dir),
            inference_mode=False,  # one model validated by many Trainers: no inference tensors in its metric states
        )

    def fit(
        self, lam: float, max_epochs: int, early_stopping: bool, extra: list[Callback] | None = None
    ) -> tuple[L.Trainer, RegularizationCallback]:
        reg = self.regularizer(lam)
        callbacks: list[Callback] = [reg, *self.extra_penalties(), *(extra or [])]
        if early_stopping and self.spec.patience > 0:
            callbacks.append(
                EarlyStopping(monitor="val/loss", mode="min", patience=self.spec.patience, check_finite=False)
            )
        trainer = self.trainer(callbacks, max_epochs)
        with quiet_lightning(), warnings.catch_warnings():
            # early stopping can end a point before its last epoch: the callback then runs the full-batch finish at
            # the end of training and warns that the last validation predates it; the point is validated again here
            warnings.filterwarnings("ignore", message=LATE_FINISH, category=LightregWarning)
            # all-zero points belong to every path (path.csv lists nnz), and the finishes that did not settle are
            # counted once for the whole path (train_path), not warned point by point
            warnings.filterwarnings("ignore", message=ALL_ZERO, category=LightregWarning)
            # so do points whose penalty dwarfs the data loss: the λ_max search and the points near it look for them
            warnings.filterwarnings("ignore", message=DWARFS, category=LightregWarning)
            warnings.filterwarnings("ignore", message=UNSETTLED_FINISH, category=LightregWarning)
            # a point near λ_max is the intercept-only model by design; path.csv shows every point's val/loss
            warnings.filterwarnings("ignore", message=WORSE_THAN_NULL, category=LightregWarning)
            trainer.fit(self.model, datamodule=self.data)
            if reg.mode == "exact" and "exact/iterations" not in trainer.callback_metrics:
                trainer.validate(self.model, datamodule=self.data, verbose=False)
        return trainer, reg

    def extra_penalties(self) -> list[RegularizationCallback]:
        """The ``extra_penalties``, at their own fixed strengths (a path scales ``penalty`` only)."""
        return [build_penalty(self.cfg, where) for where in penalty_configs(self.cfg) if where != "penalty"]

    def refit(self, epochs: int) -> L.Trainer:
        """Train the current model ``epochs`` epochs without the path's penalty, its zeros held (the extra
        penalties keep acting); returns the Trainer whose ``callback_metrics`` hold the refit's validation."""
        trainer = self.trainer([*self.extra_penalties(), HoldSupport(self.params)], epochs)
        with quiet_lightning(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=WORSE_THAN_NULL, category=LightregWarning)
            trainer.fit(self.model, datamodule=self.data)
        return trainer

    # -- the null model and λ_max -----------------------------------------------------------------------------
    @torch.no_grad()
    def null_model(self) -> None:
        """Penalized weights to zero; a linear model's bias to the optimum of the intercept-only model."""
        for name, p in self.params.items():
            if self.masks is None:
                p.zero_()
            else:
                p.masked_fill_(self.masks[name], 0.0)
        if not self.linear or self.model.net.linear.bias is None:
            return
        bias = self.model.net.linear.bias
        bias.copy_(self.model.null_output(self.data.y_train).to(bias))

    @torch.no_grad()
    def leave_saddle(self) -> bool:
        """A network whose penalized weights are all zero sits at a saddle point (no gradient reaches them once the
        other layers adapt), so a warm start from it would stay empty at every smaller λ: restart the penalized
        weights from their initialization (the other weights keep their values). Linear models never need this."""
        if self.linear or not self.all_zero():
            return False
        self.restart()
        return True

    @torch.no_grad()
    def restart(self) -> None:
        """The penalized weights (groups=coupled: the entries in a penalized group) back to their initialization."""
        for name, p in self.params.items():
            start = self.initial[name]
            p.copy_(start if self.masks is None else torch.where(self.masks[name], start, p))

    @torch.no_grad()
    def all_zero(self) -> bool:
        """Whether every penalized weight is zero (groups=coupled: every group, over all of its slices)."""
        if self.coupled is not None:
            return bool((self.coupled.unit_norms(self.params) == 0).all())
        return all(bool((p == 0).all()) for p in self.params.values())

    def gradient_bound(self) -> float:
        """:func:`gradient_bound` at the current weights on the full training set."""
        batches = full_batch.materialize(self.data.train_dataloader(), next(iter(self.params.values())))
        return gradient_bound(self.model, batches, self.penalty, self.params)

    def lambda_max(self) -> tuple[float, str]:
        given = self.spec.get("lambda_max")
        self.null_model()
        if given is not None:
            return float(given), "given"
        if self.coupled is not None:  # the null model is a saddle where no gradient reaches a coupled group
            self.restart()
        bound = self.gradient_bound()
        if self.linear:
            return bound, "closed form"
        if not bound > 0 or not math.isfinite(bound):
            raise UserError(
                f"the data gradient of the penalized weights is {bound:g} at zero: with every layer penalized, zero is a "
                "saddle point and no lambda_max exists. Penalize the input layer only (penalty.include=[net.fc1.weight]) "
                "or give path.lambda_max=..."
            )
        return self._search(bound), "search"

    def _stays_zero(self, lam: float, start: dict[str, torch.Tensor]) -> bool:
        """Train from ``start`` at ``lam`` exactly as a path point does; are the penalized weights all zero after?"""
        self.model.load_state_dict(start)
        self.fit(lam, self.spec.epochs_per_lambda, early_stopping=True)  # all-zero: what the search looks for
        return self.all_zero()

    def _search(self, bound: float) -> float:
        self.restart()  # from the initialization: from zero (a saddle) the weights would stay zero at any λ
        start = copy.deepcopy(self.model.state_dict())
        lo, hi = None, None
        lam = bound
        for _ in range(MAX_DOUBLINGS):
            if self._stays_zero(lam, start):
                hi = lam
                if lo is not None:
                    break
                lam /= 2
            else:
                lo = lam
                if hi is not None:
                    break
                lam *= 2
        if hi is None or lo is None:
            raise UserError(f"no lambda_max found within 2^±{MAX_DOUBLINGS} of {bound:g}; give path.lambda_max=...")
        for _ in range(self.spec.bisect_steps):
            mid = math.sqrt(lo * hi)
            if self._stays_zero(mid, start):
                hi = mid
            else:
                lo = mid
        self.model.load_state_dict(start)
        return hi

    # -- figures of one point ---------------------------------------------------------------------------------
    @torch.no_grad()
    def per_sample(self, monitor: str) -> np.ndarray:
        """The monitored figure per validation sample (its mean is the validation figure)."""
        values = []
        with full_batch.eval_mode(self.model):
            for x, y in self.data.val_dataloader():
                x, y = x.to(self.model.device), y.to(self.model.device)
                for i in range(len(y)):
                    out, loss, target = self.model.batch_loss((x[i : i + 1], y[i : i + 1]))
                    if monitor == "val/loss":
                        values.append(float(loss))
                    elif monitor == "val/acc":
                        values.append(
                            float(
                                tasks.predictions(self.model.task, out)[0]
                                == tasks.target_for_metrics(self.model.task, target)[0]
                            )
                        )
                    else:
                        values.append(float((tasks.predictions(self.model.task, out) - target).abs()[0]))
        return np.asarray(values)

    @torch.no_grad()
    def weights(self) -> tuple[int, list[int], list[float]]:
        """``(nnz, kept input indices, per-input coefficient)``: signed for a one-output linear model, else the
        column norm of the input weight."""
        nnz = sum(int((p != 0).sum()) for p in self.params.values())
        if self.input_name is None:
            return nnz, list(range(self.model.num_inputs)), [math.nan] * self.model.num_inputs
        w = self.params[self.input_name]
        selection = feature_selection(self.input_name, w)
        coef = w[0].tolist() if self.linear and w.shape[0] == 1 else selection.importance
        return nnz, selection.selected, [float(c) for c in coef]

    def coupled_figures(self) -> dict[str, int]:
        """groups=coupled: the coupled groups kept (a non-zero slice), and the parameters and MACs per sample of the
        model once its all-zero groups are removed (:func:`~lightreg.compact.pruning.remove_zero_groups`, Torch-Pruning's
        counter: ``compact/params_after`` and ``compact/macs_after`` of a single run); ``{}`` for other penalties."""
        if self.coupled is None:
            return {}
        _, report = remove_zero_groups(self.model, self.example)
        kept = int((self.coupled.unit_norms(self.params) > 0).sum())
        return {"groups_kept": kept, "params_after": report.params_after, "macs_after": report.macs_after}

    def intercept(self) -> dict[str, float]:
        """``{"intercept": b}`` for a one-output linear model (with ``coef:*`` it gives the whole model), else ``{}``."""
        bias = self.model.net.linear.bias if self.linear else None
        return {"intercept": float(bias.detach()[0])} if bias is not None and bias.numel() == 1 else {}


def gradient_bound(
    model: Any, batches: list[tuple[Tensor, ...]], penalty: Penalty | CoupledGroupLasso, params: dict[str, Tensor]
) -> float:
    """The λ at which the penalty's zero threshold meets the data gradient ``∇f`` at the current weights (``f`` the
    mean data loss over ``batches``): ``max`` over the penalized tensors of ``penalty.lambda_max(∇f)``; for coupled
    groups ``penalty.lambda_max`` over every group, its norm taken over all of the group's slices (``max_g ‖∇_g f‖/c_g``
    for the group lasso)."""
    with full_batch.eval_mode(model):
        _, grads = full_batch.data_loss_and_grad(model, batches, list(params.values()))
    if isinstance(penalty, CoupledGroupLasso):
        return penalty.lambda_max(dict(zip(params, grads)))
    return max(penalty.lambda_max(g) for g in grads)


def _save(trainer: L.Trainer, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return str(path)


def train_path(cfg: DictConfig) -> dict[str, Any]:
    """Run the path of ``cfg`` (``cfg.path``: :mod:`lightreg.lambda_path.config`); writes ``path.csv``,
    ``plots/path.png``, checkpoints and ``metrics.json`` into the run dir; returns the metrics."""
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run = PathRun(cfg)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    spec, monitor = cfg.path, cfg.path.monitor
    mode = MONITORS[monitor]
    lam_max, source = run.lambda_max()
    grid = geometric_grid(lam_max, spec.num, spec.min_ratio)
    rows: list[dict[str, Any]] = []
    states: list[dict[str, torch.Tensor]] = []
    supports: list[list[str]] = []  # the input names each point kept (names may hold spaces)
    trainer = None
    seen: set[int] = set()
    unsettled: list[float] = []  # λ of the points whose mode=exact finish stopped before its zeros settled
    max_iter = 0
    try:
        with Progress(
            TextColumn("λ path"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        ) as bar:
            task = bar.add_task("", total=len(grid))
            for k, lam in enumerate(grid):
                t0 = time.perf_counter()
                restarted = False
                null_point = k == 0 and source == "closed form"
                if null_point:
                    # at λ_max the null model is the optimum (λ_max is its KKT bound); training at this boundary point
                    # would only let minibatch noise move it
                    trainer = run.trainer([], 1)
                    with quiet_lightning():
                        trainer.validate(run.model, datamodule=run.data, verbose=False)
                else:
                    restarted = run.leave_saddle()
                    trainer, reg = run.fit(float(lam), spec.epochs_per_lambda, early_stopping=True)
                    if reg.finish is not None and reg.finish_report is not None and not reg.finish_report["converged"]:
                        unsettled.append(float(lam))
                        max_iter = reg.finish.max_iter
                epochs = trainer.current_epoch
                per_sample = run.per_sample(monitor)
                refit: dict[str, Any] = {}
                penalized_state = None
                if spec.refit_epochs:
                    refit = {f"penalized/{monitor}": float(per_sample.mean()), "refit_epochs": 0}
                    if not null_point:
                        penalized_state = copy.deepcopy(run.model.state_dict())
                        trainer = run.refit(spec.refit_epochs)
                        refit["refit_epochs"] = trainer.current_epoch
                        per_sample = run.per_sample(monitor)
                nnz, kept, coef = run.weights()
                supports.append([run.feature_names[j] for j in kept])
                entered = [j for j in kept if j not in seen]
                seen.update(kept)
                figures = run_folder.final_figures(trainer.callback_metrics, ("val/",))
                checkpoint = (
                    _save(trainer, run.out_dir / run_folder.CHECKPOINTS / f"lambda_{k:02d}.ckpt")
                    if spec.checkpoints == "all"
                    else ""
                )
                rows.append(
                    {
                        "step": k,
                        "lambda": float(lam),
                        **figures,
                        monitor: float(per_sample.mean()),
                        f"{monitor}_se": standard_error(per_sample),
                        **refit,
                        "nnz": nnz,
                        "features_kept": len(kept),
                        **run.coupled_figures(),
                        "kept": path_report.NAME_SEPARATOR.join(run.feature_names[j] for j in kept),
                        "entered": path_report.NAME_SEPARATOR.join(run.feature_names[j] for j in entered),
                        "epochs": epochs,
                        "seconds": round(time.perf_counter() - t0, 3),
                        "checkpoint": checkpoint,
                        "restarted": int(k > 0 and restarted),
                        **{f"coef:{name}": c for name, c in zip(run.feature_names, coef)},
                        **run.intercept(),
                    }
                )
                if spec.checkpoints == "chosen":
                    states.append({n: t.detach().clone() for n, t in run.model.state_dict().items()})
                if penalized_state is not None:  # the path goes on from the penalized point, not from its refit
                    run.model.load_state_dict(penalized_state)
                bar.update(
                    task,
                    advance=1,
                    description=f"λ={lam:.3g} nnz={nnz} inputs={len(kept)} {monitor}={per_sample.mean():.4f}",
                )
    except BaseException as exc:  # nothing lost on failure: the points done so far, and the run's status
        if rows:
            path_report.write_csv(rows, run.out_dir / run_folder.PATH_CSV)
        status = mark_status(exc)
        run_folder.write_metrics(
            run.out_dir,
            {
                "status": status,
                "seed": cfg.seed,
                "fit_seconds": round(time.perf_counter() - started, 3),
                "lambda_max": lam_max,
                "lambda_max_source": source,
                "path/num": len(rows),
                "path/csv": str(run.out_dir / run_folder.PATH_CSV) if rows else None,
            },
        )
        raise
    if unsettled:
        warn(
            f"mode=exact: at {len(unsettled)} of {len(rows)} path points (lambda = "
            f"{', '.join(f'{lam:.3g}' for lam in unsettled)}) the full-batch finish stopped at finish.max_iter="
            f"{max_iter} before its KKT residual reached finish.tol: their "
            "supports may still change (+penalty.finish.max_iter=... raises it)"
        )
    lambdas = [r["lambda"] for r in rows]
    values = [r[monitor] for r in rows]
    chosen = {
        "best": best_index(lambdas, values, mode),
        "one_se": one_se_index(lambdas, values, [r[f"{monitor}_se"] for r in rows], mode),
    }
    if spec.checkpoints == "chosen" and trainer is not None:
        for rule, k in chosen.items():
            run.model.load_state_dict(states[k])
            rows[k]["checkpoint"] = _save(trainer, run.out_dir / run_folder.CHECKPOINTS / f"{rule}.ckpt")
    csv_path = path_report.write_csv(rows, run.out_dir / run_folder.PATH_CSV)
    entry = {
        name: max((r["lambda"] for r, kept in zip(rows, supports) if name in kept), default=None)
        for name in run.feature_names
    }
    figure = path_report.path_figure(rows, monitor, chosen, run.feature_names if run.linear else None)
    plot = run.out_dir / run_folder.PLOTS / "path.png"
    plot.parent.mkdir(exist_ok=True)
    figure.savefig(plot, dpi=110)
    metrics: dict[str, Any] = {
        "status": "completed",
        "seed": cfg.seed,
        "fit_seconds": round(time.perf_counter() - started, 3),
        "epochs": sum(r["epochs"] + r.get("refit_epochs", 0) for r in rows),
        "path/refit_epochs": spec.refit_epochs,
        "lambda_max": lam_max,
        "lambda_max_source": source,
        "path/num": len(rows),
        "path/min_ratio": spec.min_ratio,
        "path/monitor": monitor,
        "path/csv": str(csv_path),
        "path/plot": str(plot),
        "path/entry_lambda": entry,
    }
    if run.coupled is not None:
        metrics.update({"path/groups": run.coupled.groups.num_groups, **{f"path/{k}": v for k, v in run.dense.items()}})
    for rule, k in chosen.items():
        row = rows[k]
        metrics.update(
            {
                f"{rule}/lambda": row["lambda"],
                f"{rule}/step": k,
                f"{rule}/checkpoint": row["checkpoint"] or None,
                f"{rule}/nnz": row["nnz"],
                f"{rule}/features": supports[k],
                **{f"{rule}/{name}": row[name] for name in COUPLED_COLUMNS if name in row},
                **{f"{rule}/{name}": v for name, v in row.items() if name.startswith("val/")},
            }
        )
    metrics.update({name: v for name, v in rows[chosen["best"]].items() if name.startswith("val/")})  # the best model's
    run_folder.write_metrics(run.out_dir, metrics)
    path_report.print_summary(rows, monitor, chosen, lam_max, source)
    return metrics


__all__ = ["PathRun", "gradient_bound", "train_path"]
