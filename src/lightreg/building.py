"""From a composed Hydra config to objects: one-line errors for bad constructor arguments, the penalty callbacks.

Shared by :mod:`lightreg.pipeline` (one run) and :mod:`lightreg.lambda_path.runner` (one model along a λ grid).
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from lightreg.callbacks import SparsityMonitor
from lightreg.errors import UserError


def build(node: Any, what: str, **kwargs: Any) -> Any:
    """Instantiate a config node; a constructor's ``ValueError``/``TypeError`` (or Lightning's
    ``MisconfigurationException``) becomes a one-line :class:`UserError` that names the config group ``what``."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, (ValueError, TypeError, MisconfigurationException)):  # e.g. trainer=fsdp without a GPU
            raise UserError(f"bad {what} config: {cause}") from None
        raise


def penalty_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """The configured penalties: ``penalty`` (from ``+penalty=...``) and every entry of ``extra_penalties``."""
    found: dict[str, DictConfig] = {}
    if cfg.get("penalty") is not None:
        found["penalty"] = cfg.penalty
    for name, node in (cfg.get("extra_penalties") or {}).items():
        found[f"extra_penalties.{name}"] = node
    return found


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """The ``callbacks`` group, one regularization callback per configured penalty, and a sparsity monitor when
    there is a penalty and none was configured."""
    callbacks = [build(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
    penalties = penalty_configs(cfg)
    for where, node in penalties.items():
        # extra penalties are named after their key, so their logs (sparsity/<name>, ...) never collide
        name = {"name": where.split(".", 1)[1]} if where.startswith("extra_penalties.") else {}
        callbacks.append(build(node, where, **name))
    if penalties and not any(isinstance(cb, SparsityMonitor) for cb in callbacks):
        callbacks.append(SparsityMonitor())  # writes sparsity.json into trainer.default_root_dir (the run dir)
    return callbacks


__all__ = ["build", "build_callbacks", "penalty_configs"]
