"""Checks of a composed config that need no Lightning import, so bad values fail in well under a second."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightreg.errors import UserError
from lightreg.lambda_path.config import check_path

# optimizer argument -> (lowest allowed, highest allowed, is the upper bound excluded?, what it is)
OPTIMIZER_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "lr": (0.0, math.inf, False, "a learning rate > 0"),
    "weight_decay": (0.0, math.inf, False, ">= 0"),
    "momentum": (0.0, math.inf, False, ">= 0 (usually 0.9)"),
    "dampening": (0.0, 1.0, False, "in [0, 1]"),
    "eps": (0.0, math.inf, False, ">= 0 (e.g. 1e-8)"),
    "lr_decay": (0.0, math.inf, False, ">= 0"),
    "initial_accumulator_value": (0.0, math.inf, False, ">= 0"),
    "alpha": (0.0, math.inf, False, ">= 0 (RMSprop's smoothing, e.g. 0.99)"),
}
PENALTY_OPTIONS = "l1, l2, elastic_net, group_lasso"


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_config(cfg: DictConfig) -> None:
    """Reject values that would silently train something else than asked, before any work starts."""
    _check_missing(cfg)
    strength = cfg.get("lambda", 0.0)
    if not _number(strength):
        raise UserError(f"lambda must be a number, got {strength!r}")
    if not math.isfinite(strength) or strength < 0:
        raise UserError(
            f"lambda must be a finite number >= 0, got {strength}: a penalty is added to the loss, never subtracted"
        )
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < -1):
        raise UserError(f"trainer.max_epochs must be an integer >= 1 (or -1 for no limit), got {max_epochs!r}")
    if max_epochs == 0:
        raise UserError("trainer.max_epochs=0 trains nothing; set it to 1 or more (or -1 for no limit)")
    check_path(cfg)  # +path=...: lightreg.lambda_path
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise UserError(
            f"ckpt_path {ckpt_path!r} is not a file; point it at a checkpoint such as <run dir>/checkpoints/last.ckpt"
        )
    _check_penalties(cfg)
    _check_progress_bar(cfg)
    _check_tracking(cfg)
    _check_precision(cfg)
    _check_one_process(cfg)
    if cfg.get("optimizer") is not None:
        check_optimizer(cfg.optimizer)


def _check_missing(cfg: DictConfig) -> None:
    """A mandatory value (``???``) left unset, e.g. ``data=csv`` without ``data.target``."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        example = {"data.train_path": "data.train_path=train.csv", "data.target": "data.target=label"}
        fixes = " ".join(example.get(k, f"{k}=...") for k in missing)
        raise UserError(f"{', '.join(missing)} must be set: add {fixes} to the command line")


def penalty_configs(cfg: DictConfig) -> dict[str, Any]:
    """The configured penalties by where they sit in the config: ``penalty`` (from ``+penalty=...``) and
    ``extra_penalties.<name>`` for every entry of ``extra_penalties``."""
    found: dict[str, Any] = {}
    if cfg.get("penalty") is not None:
        found["penalty"] = cfg.penalty
    for name, node in (cfg.get("extra_penalties") or {}).items():
        found[f"extra_penalties.{name}"] = node
    return found


def extra_penalty_name(where: str) -> str | None:
    """An extra penalty is named after its key (``extra_penalties.l2_rest`` → ``l2_rest``), so its logs never
    collide; ``None`` for ``penalty``, which keeps its own ``name``."""
    return where.split(".", 1)[1] if where.startswith("extra_penalties.") else None


def _check_penalties(cfg: DictConfig) -> None:
    """``+penalty.mode=grad`` without ``+penalty=l1`` composes a penalty with no class to build; two penalties of one
    name would mix their logs, sparsity figures and checkpoint state."""
    nodes = penalty_configs(cfg)
    for where, node in nodes.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            keys = ", ".join(f"{where}.{k}" for k in (node.keys() if isinstance(node, DictConfig) else []))
            raise UserError(
                f"{keys or where} set but no penalty chosen: add +{where.replace('extra_penalties.', 'penalty@extra_penalties.')}"
                f"=l1 (or one of {PENALTY_OPTIONS}) before it"
            )
    names: dict[str, str] = {}
    for where, node in nodes.items():
        name = extra_penalty_name(where) or node.get("name") or node.get("penalty")
        if name in names:
            raise UserError(
                f"{names[name]} and {where} are both named {name!r}: give each its own name "
                f"(rename the extra penalty's key, or set {names[name]}.name=...)"
            )
        names[name] = where


def _check_progress_bar(cfg: DictConfig) -> None:
    """Lightning refuses a progress-bar callback with ``enable_progress_bar=False`` (five lines through Hydra)."""
    if cfg.trainer.get("enable_progress_bar", True) is not False:
        return
    for name, node in (cfg.get("callbacks") or {}).items():
        if isinstance(node, DictConfig) and str(node.get("_target_", "")).endswith("ProgressBar"):
            raise UserError(
                f"trainer.enable_progress_bar=false but callbacks.{name} is a progress bar; drop it too with "
                f"~callbacks.{name} (or use callbacks=none)"
            )


def _check_tracking(cfg: DictConfig) -> None:
    """``logger=mlflow`` without MLflow installed (or, for the run folder's own SQLite store, without SQLAlchemy and
    Alembic): one line naming the extra, before Lightning starts."""
    for name, node in (cfg.get("logger") or {}).items():
        target = str(node.get("_target_", "")) if isinstance(node, DictConfig) else ""
        if "mlflow" not in target.lower():
            continue
        needed = ["mlflow"] if node.get("tracking_uri") else ["mlflow", "sqlalchemy", "alembic"]
        missing = [module for module in needed if importlib.util.find_spec(module) is None]
        if missing:
            raise UserError(
                f"logger.{name} needs {', '.join(missing)}, not installed: pip install 'lightreg[track]' "
                "(or choose another logger, e.g. logger=csv)"
            )


FP16_MIXED = ("16-mixed", "16")
"""``trainer.precision`` values that mean float16 autocast (``16`` and ``"16"`` are Lightning's aliases)."""


def _check_precision(cfg: DictConfig) -> None:
    """float16 autocast on the CPU: Lightning would run bfloat16 instead, with another rounding than asked."""
    trainer = cfg.get("trainer") or {}
    if str(trainer.get("precision")) not in FP16_MIXED or not _on_cpu(trainer.get("accelerator", "auto")):
        return
    raise UserError(
        f"trainer.precision={trainer.precision} (float16 autocast) needs a GPU and this run is on the CPU, where "
        "Lightning would run bfloat16 instead; set trainer.precision=bf16-mixed (or trainer.accelerator=gpu on a "
        "machine with one)"
    )


def trainer_processes(trainer: Any) -> int:
    """The processes a ``trainer`` config trains in, as Lightning counts them: ``num_nodes`` × its devices (a count,
    a list or ``"0,1"`` of device ids; ``auto`` or ``-1``: every CUDA GPU, or 1 on the CPU)."""
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, str) and "," in devices:
        count = len([d for d in devices.split(",") if d.strip()])
    elif str(devices) in ("auto", "-1"):
        import torch

        count = 1 if _on_cpu(trainer.get("accelerator", "auto")) else max(torch.cuda.device_count(), 1)
    else:
        try:
            count = int(devices)
        except (TypeError, ValueError):
            count = 1  # Lightning names what is wrong with it
    return max(count, 1) * max(int(nodes) if _number(nodes) else 1, 1)


def _check_one_process(cfg: DictConfig) -> None:
    """The full-batch finish of ``mode=exact`` (a penalty's, or every point of a λ path that finishes exactly) runs
    in one process; under DDP each rank would refuse it once it has started."""
    processes = trainer_processes(cfg.get("trainer") or {})
    if processes <= 1:
        return
    asked = [f"{where}.mode=exact" for where, node in penalty_configs(cfg).items() if node.get("mode") == "exact"]
    path = cfg.get("path")
    if path is not None:
        finish = path.get("finish", "auto")
        linear = str(OmegaConf.select(cfg, "model._target_", default="")).endswith("LogisticRegression")
        prox = OmegaConf.select(cfg, "penalty.mode", default=None) == "prox"
        if finish == "exact" or (finish == "auto" and linear and prox):
            model = "" if finish == "exact" else " of this linear model"
            asked.append(f"path.finish={finish} (every λ{model} ends with mode=exact's finish)")
    if asked:
        raise UserError(
            f"{' and '.join(asked)} need{'s' if len(asked) == 1 else ''} the full-batch finish, which runs in one "
            f"process, and this run starts {processes} (trainer.devices × trainer.num_nodes); train with "
            f"trainer.devices=1, or {'set path.finish=none' if path is not None else 'use mode=prox'}"
        )


def _on_cpu(accelerator: Any) -> bool:
    """Whether ``trainer.accelerator`` runs on the CPU: ``cpu``, or ``auto`` on a machine without a CUDA GPU."""
    if str(accelerator) == "cpu":
        return True
    if str(accelerator) != "auto":
        return False
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def check_optimizer(node: DictConfig) -> None:
    """Every numeric optimizer argument in its range, ``betas`` in [0, 1), then a trial construction on one tensor
    (catches unknown arguments and anything else the optimizer itself refuses) — before Lightning starts."""
    for key, (low, high, open_high, what) in OPTIMIZER_RANGES.items():
        if key not in node:
            continue
        value = node[key]
        bad = (
            not _number(value)
            or not math.isfinite(value)
            or value < low
            or value > high
            or (open_high and value == high)
        )
        if key == "lr" and _number(value) and value <= 0:
            bad = True
        if bad:
            raise UserError(f"optimizer.{key} must be {what}, got {value!r}")
    if "betas" in node:
        betas = node["betas"]
        if (
            (not OmegaConf.is_list(betas) and not isinstance(betas, (list, tuple)))
            or len(betas) != 2
            or not all(_number(b) and 0.0 <= b < 1.0 for b in betas)
        ):
            shown = list(betas) if OmegaConf.is_list(betas) else betas
            raise UserError(f"optimizer.betas must be two numbers in [0, 1) (e.g. [0.9, 0.999]), got {shown!r}")
    _try_optimizer(node)


def _try_optimizer(node: DictConfig) -> None:
    import torch
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    target = node.get("_target_", "?")
    try:
        factory = instantiate(node)
        factory([torch.nn.Parameter(torch.zeros(1))])
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise UserError(f"bad optimizer config ({target}): {_first_line(cause)}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad optimizer config ({target}): {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
