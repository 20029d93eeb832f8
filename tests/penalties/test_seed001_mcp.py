"""``experiment=seed001_mcp``: group MCP (mode=exact) on the seed-001 ring keeps exactly the inputs x0 and x1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import describe
from helpers import read_metrics, run_train


@pytest.mark.slow
def test_seed001_mcp_ring_keeps_exactly_x0_x1(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_train(
        "experiment=seed001_mcp", "data.rule=ring", "seed=100", "optimizer=sgd", "logger=none",
        "model.print_epochs=false", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    zero_columns = (state["net.fc1.weight"] == 0).all(dim=0)
    assert zero_columns.tolist() == [False, False] + [True] * 8
    assert read_metrics(run)["val/acc"] >= 0.93
