"""Experiment tracking with MLflow (``logger=mlflow``): Lightning's MLflow logger with a local store in the run folder.

:class:`MLflowTracker` is Lightning's :class:`~lightning.pytorch.loggers.MLFlowLogger` (every logged metric goes to
MLflow as Lightning logs it) that

- keeps its store in the run folder when no ``tracking_uri`` is given: ``<run dir>/mlruns/mlflow.db`` (SQLite, the
  backend MLflow 3 supports without a server; its file store refuses to start) and the artifacts under
  ``<run dir>/mlruns/artifacts``;
- logs the composed config as parameters with dotted keys (``model._target_``, ``lambda``, ``optimizer.lr``);
- logs the run's files at the end (:meth:`MLflowTracker.log_run_files`): ``metrics.json``, ``sparsity.json``, the
  plots, the composed config and the model (``best.ckpt``, else ``last.ckpt``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from typing_extensions import override

from lightreg import run_folder
from lightreg.cli.quiet import loggers_at
from lightreg.errors import UserError

LOCAL_STORE = "mlruns"
"""The folder of a run's own MLflow store, inside the run folder."""
STORE_DB = "mlflow.db"
MODEL_FILES = ("best.ckpt", "last.ckpt")
"""The checkpoint logged as the run's model: the first of these that the run wrote."""
_NOISE = (r".*The ``noload`` loader strategy is deprecated",)
"""SQLAlchemy's deprecation warning that MLflow's SQLite store triggers when it opens (nothing a user can act on)."""
_CHATTY = ("mlflow.store.db.utils", "alembic.runtime.migration", "lightning.pytorch.loggers.mlflow")
"""Loggers that announce the store's tables and a new experiment at INFO/WARNING level on every new run folder."""


@contextmanager
def _quiet_store() -> Iterator[None]:
    """MLflow's start-up lines (creating the store's tables, a new experiment) off for the block; restored after."""
    with warnings.catch_warnings(), loggers_at(logging.ERROR, *_CHATTY):
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"_target_": "X"}, "lambda": 0.1}`` → ``{"model._target_": "X", "lambda": 0.1}``; an empty
    mapping stays a value (``extra_penalties: {}``)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class MLflowTracker(MLFlowLogger):
    """Lightning's MLflow logger with the run folder as its default store (see the module doc).

    Args:
        run_dir: the run folder (``${paths.output_dir}``): the local store goes to ``<run_dir>/mlruns``.
        tracking_uri: an MLflow server (``http://host:5000``) or store (``sqlite:///path/mlflow.db``); ``None``:
            the run folder's own store.
        experiment_name: the MLflow experiment the run belongs to.
        run_name: the MLflow run's name (``None``: MLflow picks one).
        tags: tags of the MLflow run.
    """

    def __init__(
        self,
        run_dir: str | Path,
        tracking_uri: str | None = None,
        experiment_name: str = "lightreg",
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        if not experiment_name:
            raise UserError(f"logger.mlflow.experiment_name must be a non-empty name, got {experiment_name!r}")
        self.run_dir = Path(run_dir)
        self.local = not tracking_uri
        artifact_location = None
        if self.local:
            store = (self.run_dir / LOCAL_STORE).resolve()
            store.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{store / STORE_DB}"
            artifact_location = str(store / "artifacts")
        with _quiet_store():
            super().__init__(
                experiment_name=experiment_name,
                run_name=run_name,
                tracking_uri=tracking_uri,
                tags=tags,
                artifact_location=artifact_location,
            )

    @property
    @override
    def experiment(self) -> Any:
        with _quiet_store():
            return super().experiment

    @property
    @override
    def save_dir(self) -> str | None:
        """The run folder when the store is the run's own, else ``None`` (a server keeps the files)."""
        return str(self.run_dir) if self.local else None

    @override
    def log_hyperparams(self, params: Any) -> None:
        """The config as parameters with dotted keys (``optimizer.lr``), as a Hydra override names them."""
        super().log_hyperparams(flat_params(params) if isinstance(params, Mapping) else params)

    def log_run_files(self) -> list[str]:
        """Log the run folder's results as artifacts of the MLflow run: ``metrics.json``, ``sparsity.json``,
        ``plots/*.png``, ``config.yaml`` (Hydra's composed config) and the model under ``checkpoints/``. Returns
        the artifact paths logged."""
        found: list[tuple[Path, str | None]] = [
            (self.run_dir / name, None) for name in (run_folder.METRICS_FILE, run_folder.SPARSITY_FILE)
        ]
        found.append((self.run_dir / ".hydra" / "config.yaml", None))
        found += [(png, run_folder.PLOTS) for png in sorted((self.run_dir / run_folder.PLOTS).glob("*.png"))]
        checkpoints = self.run_dir / run_folder.CHECKPOINTS
        model = next((checkpoints / n for n in MODEL_FILES if (checkpoints / n).is_file()), None)
        if model is not None:
            found.append((model, run_folder.CHECKPOINTS))
        logged = []
        for path, under in found:
            if path.is_file():
                self.experiment.log_artifact(self.run_id, str(path), under)
                logged.append(f"{under}/{path.name}" if under else path.name)
        return logged


def trackers(loggers: list[Any]) -> list[MLflowTracker]:
    """The :class:`MLflowTracker` among a run's loggers."""
    return [lg for lg in loggers if isinstance(lg, MLflowTracker)]


__all__ = ["LOCAL_STORE", "MLflowTracker", "flat_params", "trackers"]
