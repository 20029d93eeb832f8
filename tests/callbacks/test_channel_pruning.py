"""callbacks=prune: channel groups removed on a schedule through the real entry point; its options are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightreg.callbacks import ChannelPruning
from lightreg.errors import UserError
from lightreg.models import CNN

from conftest import describe, run_train
from helpers import read_metrics

RUN = ["model=cnn", "data=digits_images", "data.limit=512", "logger=none", "model.print_epochs=false",
       "~callbacks.progress_bar"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("target", "importance"), [("channels", "group_norm"), ("macs", "taylor")])
def test_cli_prune_shrinks_the_model(tmp_path: Path, target: str, importance: str) -> None:
    run = tmp_path / "run"
    proc = run_train(
        *RUN, "callbacks=prune", f"callbacks.prune.target={target}", f"callbacks.prune.importance={importance}",
        "callbacks.prune.ratio=0.5", "trainer.max_epochs=2", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(run)
    assert metrics["prune/params"] < metrics["prune/params_before"]
    if target == "macs":
        assert metrics["prune/macs"] <= 0.5 * metrics["prune/macs_before"]


@pytest.mark.slow
def test_checkpoints_of_a_pruned_run_load_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = run_train(*RUN, "callbacks=prune", "trainer.max_epochs=2", f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, describe(first)
    last = run / "checkpoints" / "last.ckpt"
    model = CNN.load_from_checkpoint(last, map_location="cpu").eval()  # the pruned shapes, from the checkpoint
    pruned = sum(p.numel() for p in model.parameters())
    assert pruned == read_metrics(run)["prune/params"] < read_metrics(run)["prune/params_before"]
    assert torch.isfinite(model(torch.randn(3, *model.input_shape))).all()
    resumed = run_train(
        *RUN, "callbacks=prune", "trainer.max_epochs=3", f"hydra.run.dir={run}", f"ckpt_path={last}", cwd=tmp_path
    )  # after the last step: trains on, prunes nothing more
    assert resumed.returncode == 0, describe(resumed)
    again = CNN.load_from_checkpoint(last, map_location="cpu")
    assert torch.load(last, weights_only=False)["epoch"] == 3
    assert sum(p.numel() for p in again.parameters()) == pruned
    between = run_train(
        *RUN, "callbacks=prune", "callbacks.prune.steps=2", "callbacks.prune.every=2", "trainer.max_epochs=4",
        f"hydra.run.dir={run}", f"ckpt_path={last}", cwd=tmp_path,
    )  # fmt: skip
    assert between.returncode == 2, describe(between)
    assert "resuming between steps" in between.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_schedule_past_the_last_epoch_is_one_line(tmp_path: Path) -> None:
    proc = run_train(*RUN, "callbacks=prune", "callbacks.prune.steps=3", "trainer.max_epochs=2", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert "max_epochs=2" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"ratio": 1.0}, "ratio"), ({"target": "flops"}, "target"), ({"importance": "l1"}, "importance"),
     ({"steps": 0}, "steps"), ({"every": True}, "every")],
)  # fmt: skip
def test_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        ChannelPruning(**options)


def test_schedule_epochs() -> None:
    assert ChannelPruning(steps=3, start_epoch=1, every=2).step_epochs() == [1, 3, 5]
