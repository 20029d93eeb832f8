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
from lightreg.errors import UserError, warn

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
    if not same:
        before = "; ".join(describe(s) for s in saved.values()) or "no penalty"
        after = "; ".join(describe(s) for s in now.values()) or "no penalty"
        if OmegaConf.select(cfg, "resume.allow_changes", default=False):
            warn(f"resuming {ckpt_path}, trained with {before}, under {after} (resume.allow_changes=true)")
            return
        raise UserError(
            f"{ckpt_path} was trained with {before}, this run asks for {after}; resume with the same penalty, "
            "or add resume.allow_changes=true to switch"
        )


class RunGuard(Callback):
    """Stop a diverged run before a checkpoint is written; quiet Lightning output a user cannot act on (the
    ``log_every_n_steps`` advice on small data, a progress bar written to a file or pipe).

    At every validation end (and at training-epoch ends without validation) the training losses of the epoch so far
    and the logged ``val/*`` figures are checked: a NaN or infinite one raises :class:`Diverged` naming the figure,
    the epoch (counted from 1, as the console's ``Epoch N/M`` lines) and the learning rate. The per-step check is a
    tensor ``or`` on the device (no synchronization). ``log_every_n_steps`` is lowered to the number of training
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

        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            bad = ~torch.isfinite(loss.detach()).all()
            self._bad = bad if self._bad is None else self._bad | bad

    def _check(self, trainer: Any) -> None:
        if trainer.sanity_checking:
            return
        bad = []
        if self._bad is not None and bool(self._bad):
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
        self._check(trainer)
        if not trainer.sanity_checking:
            self._track_null(trainer)

    @override
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer)
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
