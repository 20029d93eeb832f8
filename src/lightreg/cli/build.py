"""From a composed Hydra config to objects: one-line errors for bad constructor arguments, the penalty callbacks.

Shared by :mod:`lightreg.cli.pipeline` (one run) and :mod:`lightreg.lambda_path.runner` (one model along a λ grid).
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from lightreg.callbacks import ExactFinish, RegularizationCallback, SparsityMonitor
from lightreg.cli.checks import extra_penalty_name, penalty_configs
from lightreg.errors import UserError

BINDING = re.compile(
    r"unexpected keyword argument|missing \d+ required|takes \d+ positional|multiple values for argument"
)
"""A ``TypeError`` of these words: keyword arguments that do not fit a signature, i.e. the config's keys."""


def build(node: Any, what: str, **kwargs: Any) -> Any:
    """Instantiate a config node; what the user's config got wrong becomes a one-line :class:`UserError` naming the
    config group ``what``, and a failure inside lightreg keeps its traceback.

    A user error is: a :class:`UserError` raised by a constructor (lightreg validates its arguments that way); a
    ``TypeError`` of arguments that do not bind to a signature (an unknown or missing key, :data:`BINDING`); a
    ``ValueError``/``TypeError``/``MisconfigurationException`` raised by a constructor outside lightreg (torch or
    Lightning refusing a value, e.g. ``trainer=fsdp`` without a GPU). Anything raised by lightreg's own code that is
    not a :class:`UserError` is a bug and is re-raised as it is."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if cause is not None and _users_fault(cause):
            raise UserError(f"bad {what} config: {_first_line(cause)}") from None
        raise


def _users_fault(exc: BaseException) -> bool:
    """Whether ``exc``, raised while instantiating a config node, is about the config's values (see :func:`build`)."""
    if isinstance(exc, UserError):
        return True
    if not isinstance(exc, (ValueError, TypeError, MisconfigurationException)):
        return False
    if isinstance(exc, TypeError) and BINDING.search(str(exc)):
        return True  # the config's keys do not bind to the constructor (or to one it forwards them to)
    frames = traceback.extract_tb(exc.__traceback__)
    raised_in = frames[-1].filename if frames else ""
    return f"{os.sep}lightreg{os.sep}" not in raised_in


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def build_penalty(cfg: DictConfig, where: str, **options: Any) -> RegularizationCallback:
    """The penalty callback configured at ``where`` (a key of :func:`penalty_configs`). An extra penalty is named
    after its key, so its logs (``sparsity/<name>``, ...) never collide; ``resume.allow_changes`` is passed on;
    ``options`` override the config (a λ path sets ``strength``)."""
    node = OmegaConf.select(cfg, where)
    name = extra_penalty_name(where)
    if name is not None:
        options = {"name": name, **options}
    allow = bool(OmegaConf.select(cfg, "resume.allow_changes", default=False))
    callback = build(node, where, allow_changes=allow, **options)
    if not isinstance(callback, RegularizationCallback):
        raise UserError(
            f"{where} builds a {type(callback).__name__}, not a lightreg penalty; use +{where}=l1 (or l2, ...)"
        )
    return callback


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """The ``callbacks`` group, one regularization callback per configured penalty, the exact finish when a penalty
    asks for it, and a sparsity monitor when there is a penalty and none was configured."""
    callbacks = [build(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
    penalties = [build_penalty(cfg, where) for where in penalty_configs(cfg)]
    callbacks.extend(penalties)
    if any(p.mode == "exact" for p in penalties):
        callbacks.append(ExactFinish())  # one finish for every penalty's term
    if penalties and not any(isinstance(cb, SparsityMonitor) for cb in callbacks):
        # sparsity.json in the run dir (a config composed outside a Hydra run has none: the logger's folder then)
        run_dir = OmegaConf.select(cfg, "paths.output_dir", throw_on_resolution_failure=False)
        callbacks.append(SparsityMonitor(output_dir=run_dir))
    return callbacks


__all__ = ["build", "build_callbacks", "build_penalty", "penalty_configs"]
