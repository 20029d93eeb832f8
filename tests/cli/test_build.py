"""Building objects from config nodes: what the user's config got wrong is one line naming the group; a failure
inside lightreg's own code keeps its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from lightreg.cli.build import build
from lightreg.errors import UserError

from conftest import describe


def test_an_unknown_key_is_a_user_error() -> None:
    node = OmegaConf.create({"_target_": "lightreg.data.SklearnDataModule", "name": "wine", "batchsize": 8})
    with pytest.raises(UserError, match=r"^bad data config: .*batchsize"):
        build(node, "data")


def test_a_value_refused_by_lightning_is_a_user_error() -> None:
    node = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", "accelerator": "no-such-device"})
    with pytest.raises(UserError, match=r"^bad trainer config: .*no-such-device"):
        build(node, "trainer")


def test_a_value_refused_by_lightreg_is_a_user_error() -> None:
    node = OmegaConf.create(
        {"_target_": "lightreg.models.MLP", "hidden_sizes": [], "input_shape": [4], "num_classes": 2}
    )
    with pytest.raises(UserError, match=r"^bad model config: hidden_sizes must be"):
        build(node, "model")


def test_an_error_inside_lightreg_keeps_its_traceback() -> None:
    """A plain ValueError raised by lightreg's own code is a bug, not the user's config: it is not reworded."""
    node = OmegaConf.create({"_target_": "lightreg.weight_stats.magnitude_histogram", "bins": 0})
    with pytest.raises(InstantiationException) as caught:
        build(node, "report", w=torch.zeros(2, 2))
    assert not isinstance(caught.value, UserError) and isinstance(caught.value.__cause__, ValueError)


def test_a_resume_whose_penalty_cannot_be_built_says_why(cli, tmp_path: Path) -> None:
    """The resume check builds the configured penalties: one that cannot be built is that error, not "no penalty"."""
    first = cli("+penalty=l1", "lambda=0.01", "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={tmp_path / 'a'}")
    assert first.returncode == 0, describe(first)
    proc = cli(
        "+penalty=l1",
        "lambda=0.01",
        "penalty.mode=nope",
        f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
        "trainer.max_epochs=2",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'b'}",
    )
    assert proc.returncode == 2 and "bad penalty config: mode must be one of" in proc.stderr, describe(proc)
    assert "no penalty" not in proc.stderr
