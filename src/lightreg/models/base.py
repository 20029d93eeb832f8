"""The base LightningModule: data loss, metrics, epoch aggregation, optimizer, and the extra-loss point."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics.utilities.distributed import gather_all_tensors
from typing_extensions import override

from lightreg.errors import UserError, warn
from lightreg.models import tasks
from lightreg.models.doctor import check_terms
from lightreg.models.logging_steps import logs_this_step
from lightreg.models.progress_line import epoch_line
from lightreg.models.pruned_shapes import CHECKPOINT_KEY, reshape_

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], Any]


class LightregModule(L.LightningModule):
    """Base class of every lightreg model: subclasses only build ``self.net``.

    The training objective of one step is

        objective = data_loss(net(x), y) + Σ extra loss terms + Σ reported penalties

    where ``data_loss`` is the batch mean (cross entropy, BCE-with-logits or MSE, chosen by ``task``),
    extra loss terms come from :meth:`extra_loss_terms` (override it to add your own, differentiable
    terms) and reported penalties are the λ·R values that gradient/proximal regularization callbacks
    apply outside the loss and announce through :meth:`report_penalty`. Logged per epoch (sample-
    weighted means, so a short last batch counts for what it holds): ``train/loss`` (data loss only),
    ``train/acc`` and ``train/balanced_acc`` (binary also ``auroc`` and ``average_precision``; regression
    ``train/mae``, ``train/r2``: :class:`lightreg.models.tasks.EpochFigures`), ``train/penalty`` and
    ``train/objective`` when a penalty exists, ``val/loss`` and the same ``val/*`` figures. The validation loss is the data loss only: penalties are
    a training device, not part of the model's fit.

    Args:
        input_shape: shape of one sample, e.g. ``(64,)`` or ``(1, 28, 28)``.
        num_classes: number of classes (``None`` for regression).
        task: ``binary`` | ``multiclass`` | ``regression``.
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_`` config), needed for training only.
        scheduler: optional ``optimizer -> LRScheduler`` partial, stepped every epoch.
        print_epochs: print one summary line per epoch.
        classes: the original label of each class index (e.g. ``["no", "yes"]``), saved with the checkpoint;
            ``None`` takes the datamodule's ``classes`` at ``setup``.
        feature_scale: ``(means, stds)`` per input feature that the data module standardized the training features
            with; the model keeps them (hparams, so a checkpoint has them) and its ``predict_*`` methods apply them to
            raw rows (:meth:`prepare_inputs`). An image model (``input_shape`` ``(C, H, W)``) may get one mean and std
            per channel, in raw pixel units (the image data modules': ``pixel_max·mean_c``, ``pixel_max·std_c``).
            ``None`` takes the datamodule's ``feature_scale``; without one the inputs are used as given.
        feature_names: the name of each input feature, in the order the model reads them (saved with the model).
        target_scale: regression: ``(mean, std)`` of the training targets. The net fits ``(y - mean) / std``
            (the data loss is the MSE in those standardized units) and ``forward`` returns ``mean + std·net(x)``,
            so predictions, ``mae`` and ``r2`` are in the target's units. ``None`` takes the datamodule's
            ``target_scale`` at ``setup``; both are buffers saved in checkpoints.
    """

    net: nn.Module

    def __init__(
        self,
        input_shape: tuple[int, ...] | list[int],
        num_classes: int | None,
        task: str = "multiclass",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        print_epochs: bool = True,
        classes: list | None = None,
        target_scale: tuple[float, float] | list[float] | None = None,
        feature_scale: tuple[list[float], list[float]] | list[list[float]] | None = None,
        feature_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        # Hydra passes lists as ListConfig; saved as-is they make checkpoints unloadable with
        # torch.load(weights_only=True), the default since torch 2.6 (resuming would fail).
        for key, value in self.hparams.items():
            if OmegaConf.is_config(value):
                self.hparams[key] = OmegaConf.to_container(value, resolve=True)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_inputs = math.prod(self.input_shape)
        self.task = task
        self.num_outputs = tasks.num_outputs(task, num_classes)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.print_epochs = print_epochs
        self.train_figures = tasks.EpochFigures(task, num_classes, "train/")
        self.val_figures = tasks.EpochFigures(task, num_classes, "val/")
        self._reported_penalties: dict[str, Tensor] = {}
        self._added_terms: dict[str, Tensor] = {}
        self._has_penalty = False
        self._reports = False  # a callback reports its penalty in this fit (report_penalty)
        # over the training epoch so far: Σ n·data_loss, Σ n·extra terms (every batch); Σ n·reported penalties, Σ n
        # over the batches that reported them
        self._epoch_sums = torch.zeros(4)
        self._epoch_count = 0
        self._val_seen: list[tuple[Tensor, int]] = []  # (val loss, n) per batch: device tensors, no sync
        self._last_val: dict[str, float] = {}
        self.classes = list(classes) if classes is not None else None
        mean, std = target_scale if target_scale is not None else (0.0, 1.0)
        self.register_buffer("target_mean", torch.tensor(float(mean)))
        self.register_buffer("target_std", torch.tensor(float(std)))
        self.feature_names = list(feature_names) if feature_names is not None else None
        # not in the state dict: they come back from the hparams (feature_scale) when a checkpoint is loaded
        self.register_buffer("feature_mean", torch.zeros(self.num_inputs), persistent=False)
        self.register_buffer("feature_std", torch.ones(self.num_inputs), persistent=False)
        if feature_scale is not None:
            self._set_feature_scale(feature_scale)

    @override
    def setup(self, stage: str) -> None:
        """Take ``classes`` and ``target_scale`` from the trainer's datamodule when they were not given."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.use_units_of(datamodule)

    def use_units_of(self, datamodule: Any) -> None:
        """Adopt the units of ``datamodule`` that were not given at construction: ``classes`` (the original label of
        each class index) and, for regression, ``target_scale`` (the training targets' ``(mean, std)``, so the net
        fits ``(y - mean) / std``). Both are saved with the checkpoint. The pipeline calls this right after building
        the model, so the null model, λ_max and every full-batch figure see the units training will use; Lightning's
        ``setup`` calls it again for a model used in a plain ``Trainer``."""
        if self.classes is None and getattr(datamodule, "classes", None) is not None:
            self.classes = list(datamodule.classes)
            self.hparams["classes"] = self.classes
        names = getattr(datamodule, "feature_names", None)
        if self.feature_names is None and names is not None and len(names) == self.num_inputs:
            self.feature_names = [str(n) for n in names]
            self.hparams["feature_names"] = self.feature_names
        features = getattr(datamodule, "feature_scale", None)
        if features is not None and self.hparams.get("feature_scale") is None:
            self._set_feature_scale(features)
            self.hparams["feature_scale"] = [[float(v) for v in features[0]], [float(v) for v in features[1]]]
        scale = getattr(datamodule, "target_scale", None)
        if self.task == "regression" and scale is not None and self.hparams.get("target_scale") is None:
            self.target_mean.fill_(float(scale[0]))
            self.target_std.fill_(float(scale[1]))
            self.hparams["target_scale"] = [float(scale[0]), float(scale[1])]

    def _set_feature_scale(self, scale: Any) -> None:
        mean, std = (torch.as_tensor(part, dtype=torch.float32).reshape(-1) for part in scale)
        channels = self.input_shape[0] if len(self.input_shape) > 1 else 0
        if mean.numel() == std.numel() == channels:  # per channel of an image: the same for each of its pixels
            mean, std = (part.repeat_interleave(self.num_inputs // channels) for part in (mean, std))
        if mean.numel() != self.num_inputs or std.numel() != self.num_inputs:
            raise UserError(
                f"feature_scale holds {mean.numel()} means and {std.numel()} stds for a model of {self.num_inputs} "
                "inputs: it must come from the data this model was built for"
            )
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def prepare_inputs(self, x: Any) -> Tensor:
        """Raw rows (tensor, array or nested lists; the training file's feature order) as the net's inputs: float32
        on the model's device, standardized with the training split's ``feature_scale`` when the data had one."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.feature_mean.device)
        if x.ndim == 1 and self.num_inputs > 1 and x.numel() == self.num_inputs:
            x = x.reshape(1, -1)  # one row
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.num_inputs:
            raise UserError(f"the model reads {self.num_inputs} input features per row, got rows of {flat.shape[1]}")
        return ((flat - self.feature_mean) / self.feature_std).reshape(x.shape)

    def net_target(self, y: Tensor) -> Tensor:
        """The target in the units the net fits: ``(y - mean) / std`` for regression (``target_scale``), the class
        indices otherwise."""
        return (y - self.target_mean) / self.target_std if self.task == "regression" else y

    def null_output(self, y: Tensor) -> Tensor:
        """The net's output of the intercept-only model on targets ``y`` (``logit(ȳ)``, ``log p_k``, or the mean of
        :meth:`net_target`): the output bias of a linear model whose penalized weights are all zero."""
        return tasks.intercept_only_output(self.task, self.net_target(y.to(self.target_mean.device)), self.num_outputs)

    @override
    def forward(self, x: Tensor) -> Tensor:
        """Logits for classification; for regression the prediction in the target's units."""
        output = self.net(x)
        return output * self.target_std + self.target_mean if self.task == "regression" else output

    @torch.no_grad()
    def predict_labels(self, x: Any) -> list:
        """Predicted labels of the raw rows ``x`` (:meth:`prepare_inputs`): the original class labels
        (``classes``), or values in the target's units. The model is put in eval mode."""
        self.eval()
        predicted = tasks.predictions(self.task, self(self.prepare_inputs(x))).tolist()
        return [self.classes[i] for i in predicted] if self.classes is not None else predicted

    @torch.no_grad()
    def predict_proba(self, x: Any) -> Tensor:
        """Class probabilities of the raw rows ``x``, shape ``(n, C)`` in the order of ``classes`` (binary:
        ``[1 - p, p]``). Classification only. The model is put in eval mode."""
        if self.task == "regression":
            raise UserError("predict_proba is for classifiers; a regression model predicts values: predict_labels(x)")
        self.eval()
        logits = self(self.prepare_inputs(x))
        if self.task == "binary":
            p = torch.sigmoid(logits.reshape(-1))
            return torch.stack((1 - p, p), dim=1)
        return torch.softmax(logits, dim=-1)

    # -- extension point -------------------------------------------------------------------------------
    def extra_loss_terms(self, batch: Any, output: Tensor) -> Mapping[str, Tensor]:
        """Named scalar terms added to the training loss (never to the validation loss).

        Override to regularize by hand, e.g. ``{"l1_first": 1e-3 * self.net.fc1.weight.abs().sum()}``.
        Each term must be a non-negative tensor that depends on parameters through autograd.
        """
        return {}

    def report_penalty(self, name: str, value: Tensor) -> None:
        """Announce a penalty λ·R that a callback applies outside the loss (as gradients or proximal steps).

        Called before ``training_step`` of the batches that read the value (the regularization callbacks: the steps
        that log and each epoch's last batch, :func:`lightreg.callbacks.regularization.samples_value`), consumed by
        that step; the value is only logged, never back-propagated. ``train/penalty`` is the extra loss terms' epoch
        mean over every batch plus the reported penalties' mean over the batches that reported them (sample-weighted),
        ``train/objective`` = ``train/loss`` + ``train/penalty``.
        """
        self._reported_penalties[name] = value.detach()
        self._reports = True

    def _epoch_penalty(self, terms: Tensor, reported: Tensor, reporting: Tensor) -> Tensor | None:
        """The epoch's ``train/penalty`` from the means over all batches of ``Σ n·terms``, ``Σ n·reported`` and the
        reporting batches' ``Σ n``: ``None`` without a penalty, or when a callback reports one but no batch of this
        epoch did (a fit stopped first)."""
        if not self._has_penalty or (self._reports and not reporting > 0):
            return None
        return terms + reported / reporting if reporting > 0 else terms

    @override
    def on_fit_start(self) -> None:
        """Forget penalties reported in an earlier fit (the callbacks of this fit report their own)."""
        self._reported_penalties.clear()
        self._has_penalty = self._reports = False
        self._added_terms.clear()

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint of a model pruned in place (``callbacks=prune``) first gives the layers their pruned shapes."""
        if CHECKPOINT_KEY in checkpoint:
            reshape_(self, checkpoint[CHECKPOINT_KEY])
        if len(self.input_shape) > 1 and self.hparams.get("feature_scale") is None:
            warn(
                f"{type(self).__name__} (input_shape {self.input_shape}): this checkpoint has no feature_scale, so the "
                "model reads images as its data module fed them in training (lightreg's image sets: normalized, "
                "(x/pixel_max - mean_c)/std_c, pixel_max 255 or 16 for digits_images), not raw pixels; retrain it "
                "to get a model that reads raw pixels"
            )

    def add_loss_term(self, name: str, value: Tensor) -> None:
        """Add a differentiable term to this step's training loss from outside the module (a callback's forward
        hook, e.g. :class:`~lightreg.callbacks.ActivityRegularization`). Terms of one name are summed; they are
        consumed by the next ``training_step`` and logged as ``train/penalty/<name>`` like ``extra_loss_terms``."""
        self._added_terms[name] = self._added_terms[name] + value if name in self._added_terms else value

    # -- steps -------------------------------------------------------------------------------------------
    def batch_loss(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """``(output, data loss, target)`` of one batch: the data loss alone (batch mean), no penalty. Callbacks and
        full-batch tools (:mod:`lightreg.solvers.full_batch`, :mod:`lightreg.solvers.kkt`) evaluate the objective through it."""
        x, y = batch
        output = self(x)
        if self.task == "regression":  # the MSE of the standardized target (units of std²)
            scaled = (output - self.target_mean) / self.target_std, self.net_target(y)
            return output, tasks.data_loss(self.task, *scaled), y
        return output, tasks.data_loss(self.task, output, y), y

    @override
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        output, loss, y = self.batch_loss(batch)
        terms = {**self.extra_loss_terms(batch, output), **self._added_terms}
        self._added_terms.clear()
        if terms:
            check_terms(self, terms)  # pitfalls of hand-written penalties: lightreg.models.doctor
        total = loss + sum(terms.values()) if terms else loss
        n = y.shape[0]
        # epoch figures: Σ n·loss, Σ n·terms (and, on the batches that report penalties, Σ n·reported and Σ n) in one
        # device buffer, no host sync (summed across DDP ranks once per epoch, _synced_means)
        penalty = None
        if terms or self._reported_penalties:
            zero = loss.new_zeros(())
            hand_written = sum((t.detach() for t in terms.values()), zero) if terms else zero
            reported = sum(self._reported_penalties.values(), zero) if self._reported_penalties else None
            penalty = hand_written if reported is None else hand_written + reported
            figures = (
                (loss.detach(), hand_written) if reported is None else (loss.detach(), hand_written, reported, zero + 1)
            )
            self._epoch_sums[: len(figures)] += torch.stack(figures).to(self._epoch_sums.dtype) * n
        else:  # the data loss alone: one in-place add (a step of a small model costs ~0.1 ms: each op counts)
            self._epoch_sums[:1].add_(loss.detach(), alpha=n)
        self._epoch_count += n
        self.train_figures.update(output, y)
        reports, self._reported_penalties = self._reported_penalties, {}  # consumed: a batch may report none
        if terms or reports:
            self._has_penalty = True
        if logs_this_step(self._trainer):  # self.log costs even when not flushed: only on logged steps
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, batch_size=n)
            if self._has_penalty:
                penalty = loss.new_zeros(()) if penalty is None else penalty
                for name, value in {**{k: v.detach() for k, v in terms.items()}, **reports}.items():
                    self.log(f"train/penalty/{name}", value, on_step=True, on_epoch=False, batch_size=n)
                self.log("train/penalty_step", penalty, on_step=True, on_epoch=False, batch_size=n)
                self.log("train/objective_step", loss.detach() + penalty, on_step=True, on_epoch=False, batch_size=n)
        return {"loss": total, "data_loss": loss.detach(), "output": output.detach()}

    @override
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        output, loss, y = self.batch_loss(batch)
        self._val_seen.append((loss.reshape(1), y.shape[0]))
        self.val_figures.update(output, y)
        return {"loss": loss, "output": output}

    # -- epoch-end aggregation ----------------------------------------------------------------------------
    @override
    def on_validation_epoch_end(self) -> None:
        sums = torch.zeros(2, device=self.device)  # Σ n·loss, Σ n over the validation batches of this rank
        if self._val_seen:
            losses, counts = zip(*self._val_seen)
            weights = torch.tensor(counts, dtype=sums.dtype, device=sums.device)
            sums = torch.stack(((torch.cat(losses).to(sums.dtype) * weights).sum(), weights.sum()))
            self._val_seen.clear()
        (val_loss,) = self._synced_means(sums)
        figures = {"val/loss": val_loss, **self._epoch_figures(self.val_figures)}
        self.log_dict(figures, sync_dist=True)  # already synced (all ranks' sums); silences DDP's advice
        if not self.trainer.sanity_checking:
            self._last_val = {k: float(v) for k, v in figures.items()}

    @override
    def on_train_epoch_start(self) -> None:
        self._epoch_sums = torch.zeros(4, device=self.device)
        self._epoch_count = 0
        self.train_figures.reset()

    @property
    def epoch_samples(self) -> int:
        """Training samples this rank has passed through :meth:`training_step` in the current epoch."""
        return self._epoch_count

    def training_losses_finite(self) -> bool:
        """Whether the data losses and penalties of this training epoch's steps so far are all finite (one host sync:
        a NaN or infinity in any step stays in the epoch's running sums)."""
        return bool(torch.isfinite(self._epoch_sums).all())

    def _synced_means(self, sums: Tensor) -> Tensor:
        """``sums[:-1] / sums[-1]`` over all DDP ranks: each rank's ``(Σ n·figure..., Σ n)`` summed by the strategy
        (one all-reduce; the sums themselves on one process). NaN when no rank saw a sample."""
        sums = self._summed_over_ranks(sums)
        return sums[:-1] / sums[-1]

    def _summed_over_ranks(self, states: Tensor) -> Tensor:
        """``states`` summed over the DDP ranks (one all-reduce; ``states`` itself on one process)."""
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            return trainer.strategy.reduce(states, reduce_op="sum")
        return states

    def _gathered_over_ranks(self, rows: Tensor) -> Tensor:
        """Every DDP rank's ``rows`` (any length per rank) concatenated in rank order; ``rows`` on one process."""
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            return torch.cat(gather_all_tensors(rows))
        return rows

    def _epoch_figures(self, split: tasks.EpochFigures) -> dict[str, Tensor]:
        """The split's task figures of this epoch over every rank (its states all-reduced once), then reset."""
        figures = split.compute(self.device, self._summed_over_ranks, self._gathered_over_ranks)
        split.reset()
        return figures

    @override
    def on_train_epoch_end(self) -> None:
        count = self._epoch_sums.new_tensor([self._epoch_count])
        loss, *penalty_means = self._synced_means(torch.cat((self._epoch_sums, count)))
        figures = {"train/loss": loss, **self._epoch_figures(self.train_figures)}
        if (penalty := self._epoch_penalty(*penalty_means)) is not None:
            figures["train/penalty"] = penalty
            figures["train/objective"] = loss + penalty
        self.log_dict(figures, sync_dist=True)  # already synced (all ranks' sums); silences DDP's advice
        if self.print_epochs:
            shown = {
                k: v
                for k, v in {**{k: float(v) for k, v in figures.items()}, **self._last_val}.items()
                if k.split("/", 1)[-1] in tasks.LINE_FIGURES
            }
            self.print(epoch_line(self.current_epoch, self.trainer.max_epochs, shown))

    # -- optimization ---------------------------------------------------------------------------------------
    @override
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError(
                f"{type(self).__name__} has no optimizer: pass optimizer=functools.partial(torch.optim.SGD, lr=0.1) "
                "(the CLI passes the `optimizer` config group)"
            )
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"},
        }
