"""The trained model of a run folder as a :class:`~lightreg.models.standalone.StandaloneModel`: from one of its
checkpoints (model class from ``.hydra/config.yaml``) or from its ``compact.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightreg import run_folder
from lightreg.errors import UserError, listed, warn
from lightreg.models.standalone import StandaloneModel

NAMED = ("best", "last", "one_se", "compact")
"""Checkpoint names ``--checkpoint`` takes besides a path: ``checkpoints/<name>.ckpt``, or ``compact.pt``."""


def checkpoint_path(run_dir: Path, which: str | None) -> Path:
    """The file ``which`` names in ``run_dir``: ``None`` = ``best.ckpt`` if the run has one, else ``last.ckpt``;
    ``compact`` = ``compact.pt``; a name of :data:`NAMED`; or a path to a file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a run dir such as outputs/<date>/<time>")
    folder = run_dir / run_folder.CHECKPOINTS
    if which is None:
        which = "best" if (folder / "best.ckpt").is_file() else "last"
    if which == "compact":
        path = run_dir / run_folder.COMPACT_MODEL
        if not path.is_file():
            raise UserError(
                f"{run_dir} has no {run_folder.COMPACT_MODEL}: train with compact=true, or run "
                f"python -m lightreg.compact {run_dir}"
            )
        return path
    if which in NAMED:
        path = folder / f"{which}.ckpt"
        if not path.is_file():
            present = sorted(p.stem for p in folder.glob("*.ckpt")) if folder.is_dir() else []
            raise UserError(
                f"{run_dir} has no checkpoint {run_folder.CHECKPOINTS}/{which}.ckpt; it has: "
                f"{listed(present) if present else 'none (a run with callbacks=none saves none)'}"
            )
        return path
    if Path(which).is_file():
        return Path(which)
    raise UserError(f"--checkpoint {which!r} is neither one of {', '.join(NAMED)} nor an existing file")


def load_trained(run_dir: Path, which: str | None = None) -> StandaloneModel:
    """The run's trained model (eval mode, CPU) taking raw inputs: ``checkpoint_path(run_dir, which)`` loaded with
    the model class of the run's config, or ``compact.pt`` (:func:`lightreg.compact.load`)."""
    path = checkpoint_path(run_dir, which)
    check_status(Path(run_dir), which, path)
    if path.suffix == ".pt":
        from lightreg.compact import load

        return load(path)
    return StandaloneModel.of(load_module(run_dir, path))


def check_status(run_dir: Path, which: str | None, path: Path, use: str = "predicting") -> None:
    """Refuse a named checkpoint of a run whose ``metrics.json`` says ``diverged`` (its checkpoints hold weights from
    before the blow-up, not a trained model; an explicit path is taken as the user's choice); warn by name when the
    run did not complete (``interrupted``, ``failed``). ``use`` names what is done with the checkpoint in the warning."""
    status = run_folder.read_metrics(run_dir).get("status")
    if status is None or status == "completed":
        return
    if status == "diverged" and (which is None or which in NAMED):
        raise UserError(
            f"{run_dir} ended with status diverged ({run_folder.METRICS_FILE}): its checkpoints are not a trained "
            "model; train again with a lower optimizer.lr, or pass --checkpoint PATH to use one anyway"
        )
    warn(f"{run_dir} ended with status {status} ({run_folder.METRICS_FILE}): {use} from {path.name} all the same")


def load_module(run_dir: Path, path: Path) -> Any:
    """The run's model class (``model._target_`` of ``run_dir/.hydra/config.yaml``) loaded from checkpoint ``path``."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    config = Path(run_dir) / ".hydra" / "config.yaml"
    if not config.is_file():
        raise UserError(f"{run_dir} has no .hydra/config.yaml: the model class is read from it")
    target = OmegaConf.load(config).model._target_
    try:
        model_class = get_class(target)
    except Exception as exc:  # an import error of the user's own module, a renamed class
        raise UserError(f"the run's model class {target!r} cannot be imported: {exc}") from None
    return model_class.load_from_checkpoint(path, map_location="cpu").eval()


__all__ = ["NAMED", "check_status", "checkpoint_path", "load_module", "load_trained"]
