"""Guards around one training run: a resume checked before Lightning starts, divergence caught at epoch ends.

- :func:`check_resume` reads ``ckpt_path`` once: not a checkpoint, a penalty that changed since it was written, or a
  ``trainer.max_epochs`` below the epochs it already trained are one-line errors; one equal to them is
  :class:`NothingToDo` (the CLI prints a notice and writes nothing).
- :class:`RunGuard` (a callback) stops a run whose loss became NaN or infinite, before a checkpoint is written, with
  :class:`Diverged` (``status: "diverged"`` in ``metrics.json``); it also sets ``log_every_n_steps`` from the data.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from lightreg import run_folder
from lightreg.callbacks.regularization import RegularizationCallback
from lightreg.cli.build import build_penalty, penalty_configs
from lightreg.errors import UserError, listed, warn

WORSE_THAN_NULL = r".*worse than the intercept-only model"
"""The guard's warning when a run ends worse on validation than the intercept-only model: a regex for filters."""
NULL_MARGIN = 1.1
"""A final ``val/loss`` above this many times the intercept-only model's is warned about."""
REGULARIZER_PREFIX = RegularizationCallback.__qualname__
"""How a regularization callback's state is keyed in a checkpoint (its ``state_key`` starts with it)."""


class Diverged(UserError):
    """The training loss (or a validation figure) became NaN or infinite: the run stops, ``status: diverged``."""

    status = "diverged"


class NothingToDo(Exception):
    """A resume whose checkpoint has already trained ``trainer.max_epochs`` epochs."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (on the CPU); anything that is not a Lightning checkpoint is a :class:`UserError`."""
    import torch

    fix = "point ckpt_path at a checkpoint written by lightreg, e.g. <run dir>/checkpoints/last.ckpt"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"ckpt_path {str(path)!r} is not a checkpoint ({type(exc).__name__}); {fix}") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "epoch"} <= checkpoint.keys():
        raise UserError(f"ckpt_path {str(path)!r} is not a Lightning checkpoint (no state_dict/epoch); {fix}")
    return checkpoint


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """Epochs the checkpoint has completed: the fit loop's processed epochs (``epoch + 1`` for older files)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint["epoch"]) + 1


def penalty_states(checkpoint: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The regularization callbacks' saved states, by name."""
    states = {}
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if key.startswith(REGULARIZER_PREFIX) and isinstance(state, dict) and "strength" in state:
            states[state.get("name") or key] = state
    return states


def describe(state: dict[str, Any]) -> str:
    """``l1: L1() strength=0.001 mode=prox`` (the fingerprint of a regularization callback's state)."""
    return (
        f"{state.get('name', '?')}: {state.get('penalty')} strength={state.get('strength'):g} mode={state.get('mode')}"
    )


def configured_penalties(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The fingerprints the configured penalties will have (built without Lightning's trainer; a penalty that cannot
    be built is the same one-line error the run would give)."""
    found = {}
    for where in penalty_configs(cfg):
        with warnings.catch_warnings():  # the pipeline builds the callback again and warns then
            warnings.simplefilter("ignore")
            callback = build_penalty(cfg, where)
        found[callback.name] = callback.state_dict()
    return found


def check_resume(cfg: DictConfig) -> None:
    """Refuse a resume that would silently train something else than the checkpoint did (see the module doc)."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None:
        return
    checkpoint = load_checkpoint(ckpt_path)
    done = epochs_done(checkpoint)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1:
        if max_epochs < done:
            raise UserError(
                f"trainer.max_epochs={max_epochs} is below the {done} epochs {ckpt_path} already trained; "
                f"set trainer.max_epochs above {done} to continue it"
            )
        if max_epochs == done:
            raise NothingToDo(
                f"{ckpt_path} has already trained {done} epochs = trainer.max_epochs: nothing to do, no files "
                f"written; set trainer.max_epochs above {done} to train further"
            )
    saved, now = penalty_states(checkpoint), configured_penalties(cfg)
    fingerprint = ("penalty", "strength", "mode")
    same = saved.keys() == now.keys() and all(
        tuple(saved[n].get(k) for k in fingerprint) == tuple(now[n].get(k) for k in fingerprint) for n in saved
    )
    allow = bool(OmegaConf.select(cfg, "resume.allow_changes", default=False))
    if not same:
        before = "; ".join(describe(s) for s in saved.values()) or "no penalty"
        after = "; ".join(describe(s) for s in now.values()) or "no penalty"
        if not allow:
            raise UserError(
                f"{ckpt_path} was trained with {before}, this run asks for {after}; resume with the same penalty, "
                "or add resume.allow_changes=true to switch"
            )
        warn(f"resuming {ckpt_path}, trained with {before}, under {after} (resume.allow_changes=true)")
    changes = optimizer_changes(checkpoint, cfg, str(ckpt_path))
    if changes and not allow:
        name, old, new = changes[0]
        more = f" (and {listed([c[0] for c in changes[1:]], 3)})" if len(changes) > 1 else ""
        raise UserError(
            f"{ckpt_path} was trained with {name}={_shown(old)}, this run asks for {name}={_shown(new)}{more}, and a "
            f"resume restores the checkpoint's optimizer and scheduler settings; drop the override to continue with "
            f"{name}={_shown(old)}, or add resume.allow_changes=true to apply the new value"
        )


OPTIMIZER_IMPLEMENTATION = frozenset(
    {"params", "param_names", "foreach", "fused", "differentiable", "capturable", "initial_lr"}
)
"""Keys of a torch optimizer's param group that choose a kernel, not the maths (or that a scheduler adds)."""
SCHEDULER_RUNTIME = frozenset(
    {"base_lrs", "last_epoch", "_step_count", "_is_initial", "_get_lr_called_within_step", "_last_lr", "verbose"}
)
"""Keys of an LR scheduler's state that are its progress, not its settings."""
OPTIMIZER_KINDS = ("SGD", "AdamW", "Adam", "Adagrad", "RMSprop", "Adamax", "NAdam", "RAdam", "Adadelta", "ASGD")
"""torch optimizers recognized from a checkpoint's param-group keys (AdamW before Adam: the same keys)."""


def _plain(value: Any) -> Any:
    """A setting as a comparable Python value (tuples as lists, one-element tensors as numbers)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:
        return value.item()
    return value


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def optimizer_settings(group: dict[str, Any]) -> dict[str, Any]:
    """The settings of a torch param group (``lr``, ``momentum``, ``betas``, ...): its base ``lr`` (``initial_lr``
    under a scheduler, which moves ``lr``), no parameters and no kernel choices (:data:`OPTIMIZER_IMPLEMENTATION`)."""
    settings = {k: _plain(v) for k, v in group.items() if k not in OPTIMIZER_IMPLEMENTATION}
    if "initial_lr" in group:
        settings["lr"] = _plain(group["initial_lr"])
    return settings


def scheduler_settings(state: dict[str, Any]) -> dict[str, Any]:
    """The settings in an LR scheduler's state (``step_size``, ``gamma``, ...): scalars, not its progress."""
    return {
        k: _plain(v)
        for k, v in state.items()
        if k not in SCHEDULER_RUNTIME and (v is None or isinstance(v, (bool, int, float, str)))
    }


def optimizer_kind(settings: dict[str, Any]) -> str | None:
    """The torch optimizer whose param groups have these keys (``"SGD"``, ``"AdamW"``, ...), else ``None``."""
    import torch

    probe = [torch.nn.Parameter(torch.zeros(1))]
    for name in OPTIMIZER_KINDS:
        group = optimizer_settings(getattr(torch.optim, name)(probe).param_groups[0])
        same_flag = group.get("decoupled_weight_decay") == settings.get("decoupled_weight_decay")
        if group.keys() == settings.keys() and same_flag:
            return name
    return None


def optimizer_changes(checkpoint: dict[str, Any], cfg: DictConfig, ckpt_path: str) -> list[tuple[str, Any, Any]]:
    """``(setting, checkpoint's value, this run's value)`` for every optimizer and LR scheduler setting the config
    changes since ``checkpoint`` was written (``optimizer.lr``, ``model.scheduler.gamma``, ...), compared on the
    optimizer the config builds. A checkpoint of one optimizer with one param group (what
    :class:`~lightreg.models.LightregModule` builds) is compared; one with several groups is a model's own layout
    and is not. Another optimizer type is a :class:`UserError` (its state cannot carry over)."""
    import torch
    from hydra.utils import instantiate

    states = checkpoint.get("optimizer_states") or []
    if len(states) != 1 or len(states[0].get("param_groups") or []) != 1 or cfg.get("optimizer") is None:
        return []
    saved = optimizer_settings(states[0]["param_groups"][0])
    optimizer = instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    now = optimizer_settings(optimizer.param_groups[0])
    kind = optimizer_kind(saved)
    if saved.keys() != now.keys() or kind != optimizer_kind(now):
        before, after = kind or "another optimizer", type(optimizer).__name__
        raise UserError(
            f"{ckpt_path} was trained with {before}, this run asks for {after} (optimizer={cfg.optimizer._target_}); "
            "a resume continues the checkpoint's optimizer state: resume with the same optimizer, or start a new "
            "run without ckpt_path"
        )
    changes = [(f"optimizer.{k}", saved[k], v) for k, v in now.items() if saved[k] != v]
    node = OmegaConf.select(cfg, "model.scheduler")
    saved_schedulers = checkpoint.get("lr_schedulers") or []
    if node is None or len(saved_schedulers) != 1:
        if bool(node) != bool(saved_schedulers):
            changes.append(("model.scheduler", "a scheduler" if saved_schedulers else None, node and node._target_))
        return changes
    scheduler = scheduler_settings(instantiate(node)(optimizer).state_dict())
    old = scheduler_settings(saved_schedulers[0])
    changes += [(f"model.scheduler.{k}", old.get(k), v) for k, v in scheduler.items() if old.get(k) != v]
    return changes


class AppliedSettings(Callback):
    """With ``resume.allow_changes=true``: Lightning's resume restores the checkpoint's optimizer and LR scheduler
    state, settings included (its ``lr``, ``momentum``, a scheduler's ``gamma``); this callback records the settings
    the config built (``on_fit_start``, before the restore) and sets them back after it (``on_train_start``),
    warning which ones it changed. Under a scheduler a new ``lr`` becomes its base rate: the scheduled rate keeps its
    factor (``lr = new base × scheduled / old base``)."""

    def __init__(self) -> None:
        self._groups: list[list[dict[str, Any]]] = []
        self._schedulers: list[dict[str, Any]] = []

    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._groups = [[dict(g) for g in opt.param_groups] for opt in trainer.optimizers]
        self._schedulers = [scheduler_settings(c.scheduler.state_dict()) for c in trainer.lr_scheduler_configs]

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.ckpt_path is None:
            return
        changed = []
        for optimizer, groups in zip(trainer.optimizers, self._groups):
            schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer]
            for index, (group, configured) in enumerate(zip(optimizer.param_groups, groups)):
                have = optimizer_settings(group)
                for key, value in optimizer_settings(configured).items():
                    if have.get(key) == value:
                        continue
                    changed.append(f"optimizer.{key} {_shown(have.get(key))} -> {_shown(value)}")
                    if key == "lr" and "initial_lr" in group:
                        group["lr"] = value * group["lr"] / group["initial_lr"]
                        group["initial_lr"] = value
                        for scheduler in schedulers:
                            scheduler.base_lrs[index] = value
                    else:
                        group[key] = configured[key]
        for config, configured in zip(trainer.lr_scheduler_configs, self._schedulers):
            have = scheduler_settings(config.scheduler.state_dict())
            for key, value in configured.items():
                if have.get(key) != value:
                    changed.append(f"model.scheduler.{key} {_shown(have.get(key))} -> {_shown(value)}")
                    setattr(config.scheduler, key, value)
        if changed:
            warn(f"resume.allow_changes=true: {', '.join(changed)} in the optimizer restored from {trainer.ckpt_path}")


def resume_callbacks(cfg: DictConfig) -> list[Callback]:
    """:class:`AppliedSettings` for a resume with ``resume.allow_changes=true``; none otherwise."""
    allow = bool(OmegaConf.select(cfg, "resume.allow_changes", default=False))
    return [AppliedSettings()] if cfg.get("ckpt_path") is not None and allow else []


class RunGuard(Callback):
    """Stop a diverged run before a checkpoint is written; quiet Lightning output a user cannot act on (the
    ``log_every_n_steps`` advice on small data, a progress bar written to a file or pipe).

    At every validation end (and at training-epoch ends without validation) the training losses of the epoch so far
    and the logged ``val/*`` figures are checked: a NaN or infinite one raises :class:`Diverged` naming the figure,
    the epoch (counted from 1, as the console's ``Epoch N/M`` lines) and the learning rate. A
    :class:`~lightreg.models.LightregModule` keeps the epoch's summed losses, read once per check; for any other module
    (or one whose own ``training_step`` bypasses those sums) each step's loss is or-ed into a device flag (no
    synchronization). ``log_every_n_steps`` is lowered to the number of training
    batches when it exceeds them. A run that ends with a ``val/loss`` above :data:`NULL_MARGIN` × the intercept-only
    model's (the training split's class frequencies or mean, :func:`null_validation_loss`) is warned about, naming
    the learning rate and the first epoch of the streak of validations above it that lasted to the end.
    """

    def __init__(self) -> None:
        self._bad: Any = None
        self._null_loss: float | None = None
        self._worse_since: tuple[int, float] | None = None  # (epoch, val/loss) that began the streak above the floor
        self._last_val: tuple[int, float] | None = None  # (epoch, val/loss) of the last validation

    @override
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and not sys.stdout.isatty():
            bar.disable()  # in a file or pipe a progress bar only leaves its last frame behind

    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "train_dataloader"):
            try:
                batches = len(datamodule.train_dataloader())
            except TypeError:
                return
            if 0 < batches < trainer.log_every_n_steps:
                trainer.log_every_n_steps = batches
        self._worse_since = self._last_val = None
        self._null_loss = null_validation_loss(pl_module, datamodule)

    def _track_null(self, trainer: Any) -> None:
        """Note this validation's ``val/loss`` against the intercept-only floor (after :meth:`_check`: finite)."""
        value = trainer.callback_metrics.get("val/loss")
        if self._null_loss is None or value is None:
            return
        self._last_val = (trainer.current_epoch + 1, float(value))
        if self._last_val[1] <= NULL_MARGIN * self._null_loss:
            self._worse_since = None
        elif self._worse_since is None:
            self._worse_since = self._last_val

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._worse_since is None or self._last_val is None or self._null_loss is None:
            return
        (epoch, final), (first, first_value) = self._last_val, self._worse_since
        lr = _learning_rate(trainer)
        if getattr(pl_module, "task", None) == "regression":
            what, meaning = "mean", "its predictions are further off than that constant"
        else:
            what, meaning = "class frequencies", "its probabilities are worse than those alone, whatever val/acc says"
        warn(
            f"val/loss {final:.4g} after epoch {epoch} is worse than the intercept-only model's {self._null_loss:.4g} "
            f"(predicting the training split's {what}), and has been since epoch {first} (val/loss {first_value:.4g}): "
            f"{meaning}; lower optimizer.lr{f' (now {lr:g})' if lr is not None else ''} or lambda"
        )

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        import torch

        if getattr(pl_module, "epoch_samples", 0):
            return  # the module summed this step's losses: _check reads the sums once
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            bad = ~torch.isfinite(loss.detach()).all()
            self._bad = bad if self._bad is None else self._bad | bad

    def _check(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        bad = []
        summed = getattr(pl_module, "epoch_samples", 0) and not pl_module.training_losses_finite()
        if summed or (self._bad is not None and bool(self._bad)):
            bad.append("train/loss")
        figures = run_folder.final_figures(trainer.callback_metrics, ("val/", "train/"))
        bad.extend(name for name, value in figures.items() if not math.isfinite(value))
        if bad:
            lr = _learning_rate(trainer)
            raise Diverged(
                f"training diverged in epoch {trainer.current_epoch + 1}: {', '.join(dict.fromkeys(bad))} is NaN or "
                f"infinite{f' (lr={lr:g})' if lr is not None else ''}; lower optimizer.lr or lambda, or clip "
                "gradients (trainer.gradient_clip_val=1.0)"
            )

    @override
    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer, pl_module)
        if not trainer.sanity_checking:
            self._track_null(trainer)

    @override
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer, pl_module)
        self._bad = None


def null_validation_loss(model: Any, datamodule: Any) -> float | None:
    """The validation data loss of the intercept-only model fitted on the training targets (in the units the model
    fits, :meth:`~lightreg.models.LightregModule.null_output`): the floor any trained model should beat. ``None``
    when the model or the data cannot say (no ``null_output``, no ``y_train``, no validation rows)."""
    import torch

    from lightreg.models.tasks import data_loss

    y_train = getattr(datamodule, "y_train", None)
    if y_train is None or not callable(getattr(model, "null_output", None)) or datamodule is None:
        return None
    with torch.no_grad():
        null = model.null_output(y_train).float()
        total, count = 0.0, 0
        for _, y in datamodule.val_dataloader():
            y = y.to(null.device)
            loss = data_loss(model.task, null.expand(len(y), -1), model.net_target(y))
            total, count = total + float(loss) * len(y), count + len(y)
    return total / count if count else None


def _learning_rate(trainer: Any) -> float | None:
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            return float(group["lr"])
    return None


def run_facts(trainer: Any) -> dict[str, Any]:
    """Facts of the trained model for ``metrics.json``: ``classes`` (original labels of the class indices)."""
    classes = getattr(trainer.lightning_module, "classes", None) if trainer.lightning_module is not None else None
    return {"classes": list(classes)} if classes is not None else {}


def guard_callbacks() -> list[Callback]:
    """The guard of every run the pipeline builds (single runs and each fit of a λ path)."""
    return [RunGuard()]
