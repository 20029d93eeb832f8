"""The Hydra config tree: every option of every group composes and instantiates to the right objects."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from image_files import write_cifar10, write_idx_set
from lightreg.callbacks import InterruptCheckpoint, LastCheckpoint
from lightreg.data import CSVDataModule, ImageDataModule, SklearnDataModule, SyntheticDataModule, TabularDataModule
from lightreg.data.tabular import TASKS
from lightreg.models import CNN, MLP, LightregModule, LogisticRegression, ResNet

from conftest import config_options

GROUPS = ("data", "model", "optimizer", "trainer", "callbacks", "logger")


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator:
    """``make_cfg(*overrides)`` composes ``train`` as ``python -m train`` would, with the run dir = ``tmp_path``."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)  # what @hydra.main sets for a real run
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield make
    HydraConfig.instance().cfg = None


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert config_options(group), f"config group {group!r} has no options"


def test_root_defaults(make_cfg) -> None:
    cfg = make_cfg()
    assert cfg["lambda"] == 0.0 and isinstance(cfg["lambda"], float)
    assert cfg.seed == 0
    assert cfg.ckpt_path is None
    assert "penalty" not in cfg, "penalty must not be in the defaults list (`+penalty=...` adds it)"
    assert dict(cfg.extra_penalties) == {}
    choices = cfg.hydra.runtime.choices
    assert (choices.data, choices.model, choices.optimizer) == ("digits", "logistic", "sgd")
    assert (choices.trainer, choices.callbacks, choices.logger) == ("default", "default", "default")
    assert cfg.paths.output_dir == cfg.hydra.runtime.output_dir
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    assert not OmegaConf.missing_keys(job)
    OmegaConf.to_container(job, resolve=True)  # every interpolation of the default config resolves


def test_lambda_override_and_interpolated_seed(make_cfg) -> None:
    cfg = make_cfg("lambda=0.001", "seed=7", "data=synthetic")
    assert cfg["lambda"] == pytest.approx(0.001)
    assert cfg.data.seed == 7


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
EXPECTED_DATA = {
    "digits": (SklearnDataModule, "multiclass", (64,), 10),
    "breast_cancer": (SklearnDataModule, "binary", (30,), 2),
    "wine": (SklearnDataModule, "multiclass", (13,), 3),
    "iris": (SklearnDataModule, "multiclass", (4,), 3),
    "diabetes": (SklearnDataModule, "regression", (10,), None),
    "synthetic": (SyntheticDataModule, "binary", (10,), 2),
    "csv": (CSVDataModule, "binary", (3,), 2),
    "digits_images": (ImageDataModule, "multiclass", (1, 8, 8), 10),
    "mnist": (ImageDataModule, "multiclass", (1, 28, 28), 10),
    "fashion_mnist": (ImageDataModule, "multiclass", (1, 28, 28), 10),
    "cifar10": (ImageDataModule, "multiclass", (3, 32, 32), 10),
}
IMAGE_FILES = {"mnist": write_idx_set, "fashion_mnist": write_idx_set, "cifar10": write_cifar10}


@pytest.mark.parametrize("option", config_options("data"))
def test_data_option(option: str, make_cfg, small_csv: Path, tmp_path: Path) -> None:
    overrides = [f"data={option}", "seed=3"]
    if option == "csv":
        overrides += [f"data.train_path={small_csv}", "data.target=label"]
    if option in IMAGE_FILES:  # files in their real formats, offline
        write = IMAGE_FILES[option]
        write(tmp_path, option) if write is write_idx_set else write(tmp_path)
        overrides += [f"data.root={tmp_path}", "data.download=false"]
    cfg = make_cfg(*overrides)
    dm = instantiate(cfg.data)
    assert isinstance(dm, (TabularDataModule, L.LightningDataModule))
    assert isinstance(dm, get_class(cfg.data._target_))
    assert dm.seed == 3
    assert dm.batch_size == cfg.data.batch_size
    dm.setup("fit")
    assert dm.task in TASKS
    if option in EXPECTED_DATA:
        cls, task, shape, num_classes = EXPECTED_DATA[option]
        assert isinstance(dm, cls)
        assert (dm.task, dm.input_shape, dm.num_classes) == (task, shape, num_classes)


def test_csv_option_requires_paths(make_cfg) -> None:
    cfg = make_cfg("data=csv")
    assert OmegaConf.is_missing(cfg.data, "train_path") and OmegaConf.is_missing(cfg.data, "target")


# ----------------------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------------------
EXPECTED_MODEL = {"logistic": LogisticRegression, "mlp": MLP, "cnn": CNN, "resnet": ResNet}
IMAGE_MODELS = ("cnn", "resnet")


@pytest.mark.parametrize("option", config_options("model"))
@pytest.mark.parametrize(
    ("task", "num_classes", "width"), [("multiclass", 10, 10), ("binary", 2, 1), ("regression", None, 1)]
)
def test_model_option(option: str, task: str, num_classes: int | None, width: int, make_cfg) -> None:
    cfg = make_cfg(f"model={option}")
    optimizer = instantiate(make_cfg("optimizer=adam").optimizer)
    shape = (1, 8, 8) if option in IMAGE_MODELS else (64,)
    model = instantiate(cfg.model, input_shape=shape, num_classes=num_classes, task=task, optimizer=optimizer)
    assert isinstance(model, LightregModule)
    assert isinstance(model, get_class(cfg.model._target_))
    if option in EXPECTED_MODEL:
        assert isinstance(model, EXPECTED_MODEL[option])
    assert model(torch.randn(5, *shape)).shape == (5, width)
    assert isinstance(model.configure_optimizers(), torch.optim.Adam)


def test_mlp_config_builds_configured_layers(make_cfg) -> None:
    cfg = make_cfg("model=mlp", "model.hidden_sizes=[7,5]", "model.activation=tanh")
    model = instantiate(cfg.model, input_shape=(4,), num_classes=3, task="multiclass")
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [7, 5, 3]
    assert isinstance(model.net.act1, nn.Tanh)


# ----------------------------------------------------------------------------------------------------------------
# optimizer
# ----------------------------------------------------------------------------------------------------------------
EXPECTED_OPTIMIZER = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}


@pytest.mark.parametrize("option", config_options("optimizer"))
def test_optimizer_option(option: str, make_cfg) -> None:
    cfg = make_cfg(f"optimizer={option}")
    assert cfg.optimizer._partial_ is True, "optimizers are partials, completed by the module with its parameters"
    factory = instantiate(cfg.optimizer)
    params = [nn.Parameter(torch.zeros(3, 2)), nn.Parameter(torch.zeros(2))]
    optimizer = factory(params)
    assert isinstance(optimizer, get_class(cfg.optimizer._target_))
    if option in EXPECTED_OPTIMIZER:
        assert type(optimizer) is EXPECTED_OPTIMIZER[option]
    group = optimizer.param_groups[0]
    assert group["params"] == params
    assert group["lr"] == pytest.approx(cfg.optimizer.lr)
    for key, value in cfg.optimizer.items():
        if key.startswith("_"):
            continue
        if key not in group:  # an option of the optimizer itself (a proximal optimizer's compile), not of its groups
            assert getattr(optimizer, key) == value, f"optimizer.{key}"
            continue
        expected = tuple(value) if OmegaConf.is_list(value) else value
        got = tuple(group[key]) if isinstance(group[key], (list, tuple)) else group[key]
        assert got == pytest.approx(expected), f"optimizer.{key}"


def test_optimizer_lr_override(make_cfg) -> None:
    cfg = make_cfg("optimizer=adagrad", "optimizer.lr=0.025")
    optimizer = instantiate(cfg.optimizer)([nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is torch.optim.Adagrad and optimizer.param_groups[0]["lr"] == 0.025


# ----------------------------------------------------------------------------------------------------------------
# trainer
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", config_options("trainer"))
def test_trainer_option(option: str, make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(f"trainer={option}")
    assert cfg.trainer.default_root_dir == str(tmp_path)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(Exception, match=r"(?i)gpu"):  # no GPU here: Lightning says so before anything runs
            instantiate(cfg.trainer, callbacks=[], logger=False)
        return
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    assert isinstance(trainer, L.Trainer)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert trainer.default_root_dir == str(tmp_path)
    if option == "cpu":
        assert isinstance(trainer.accelerator, L.pytorch.accelerators.CPUAccelerator)
    if option.startswith("ddp"):
        assert isinstance(trainer.strategy, L.pytorch.strategies.DDPStrategy)
        # ddp: every device of the machine (devices: auto), so it also runs on a one-GPU machine; ddp_cpu: 2 processes
        expected = 2 if option == "ddp_cpu" else (torch.cuda.device_count() or 1)
        assert trainer.num_devices == expected
    if (
        option == "fsdp"
    ):  # only reached with a GPU: Lightning 2.6 refuses FSDP on the CPU (tests/cli/test_distributed.py)
        assert isinstance(trainer.strategy, L.pytorch.strategies.FSDPStrategy)
        assert trainer.num_devices == torch.cuda.device_count()


def test_trainer_overrides_apply(make_cfg) -> None:
    cfg = make_cfg("trainer=cpu", "trainer.max_epochs=3", "trainer.gradient_clip_val=0.5")
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    assert trainer.max_epochs == 3 and trainer.gradient_clip_val == 0.5


# ----------------------------------------------------------------------------------------------------------------
# callbacks and loggers
# ----------------------------------------------------------------------------------------------------------------
EXPECTED_CALLBACKS = {
    "default": {
        "model_checkpoint": ModelCheckpoint,
        "last_checkpoint": LastCheckpoint,
        "interrupt_checkpoint": InterruptCheckpoint,
        "progress_bar": RichProgressBar,
    },
    "none": {},
}


@pytest.mark.parametrize("option", config_options("callbacks"))
def test_callbacks_option(option: str, make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(f"callbacks={option}")
    built = {name: instantiate(node) for name, node in (cfg.callbacks or {}).items()}
    for name, callback in built.items():
        assert isinstance(callback, Callback), name
        assert isinstance(callback, get_class(cfg.callbacks[name]._target_)), name
    if option in EXPECTED_CALLBACKS:
        assert {k: type(v) for k, v in built.items()} == EXPECTED_CALLBACKS[option]
    if "model_checkpoint" in built:
        best, last = built["model_checkpoint"], built["last_checkpoint"]
        assert Path(best.dirpath) == Path(last.dirpath) == tmp_path / "checkpoints"
        assert best.monitor == "val/loss" and best.filename == "best"
        assert last.monitor is None and last.filename == "last" and not last._enable_version_counter
        assert last._every_n_epochs == 5  # and at the end of training (tests/models/test_training_loop.py)
        assert best.state_key != last.state_key
        assert built["interrupt_checkpoint"].path == Path(last.dirpath) / "last.ckpt"  # Ctrl-C writes what resumes


def test_a_callback_can_be_dropped(make_cfg) -> None:
    cfg = make_cfg("~callbacks.progress_bar")
    assert list(cfg.callbacks) == ["model_checkpoint", "last_checkpoint", "interrupt_checkpoint"]


EXPECTED_LOGGERS = {
    "default": {"csv": CSVLogger, "tensorboard": TensorBoardLogger},
    "csv": {"csv": CSVLogger},
    "none": {},
}


@pytest.mark.parametrize(
    "option",
    [pytest.param(o, marks=pytest.mark.slow) if o == "mlflow" else o for o in config_options("logger")],
)  # importing MLflow takes seconds
def test_logger_option(option: str, make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(f"logger={option}")
    built = {name: instantiate(node) for name, node in (cfg.logger or {}).items()}
    for name, logger in built.items():
        assert isinstance(logger, Logger), name
        assert isinstance(logger, get_class(cfg.logger[name]._target_)), name
        assert Path(logger.save_dir) == tmp_path, name
    if option in EXPECTED_LOGGERS:
        assert {k: type(v) for k, v in built.items()} == EXPECTED_LOGGERS[option]


def test_design_example_composes(make_cfg) -> None:
    """`python -m train model=mlp data=synthetic optimizer=adagrad` (the README's CLI example, without the penalty)."""
    cfg = make_cfg("model=mlp", "data=synthetic", "optimizer=adagrad", "lambda=0.01")
    choices = cfg.hydra.runtime.choices
    assert (choices.model, choices.data, choices.optimizer) == ("mlp", "synthetic", "adagrad")
    assert math.isclose(cfg["lambda"], 0.01)
