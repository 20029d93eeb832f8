"""The penalty CLI as users type it: `python -m train +penalty=l1 lambda=...`, sweeps, resume, two penalties."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import QUIET, read_metrics, run_cli

pytestmark = pytest.mark.slow  # every test here starts `python -m train` in a subprocess

CHECKPOINT = [
    "+callbacks.ckpt._target_=lightning.pytorch.callbacks.ModelCheckpoint",
    "+callbacks.ckpt.dirpath=${paths.output_dir}/checkpoints",
    "+callbacks.ckpt.save_last=true",
]


def test_l1_as_typed_in_the_readme(tmp_path: Path) -> None:
    """`python -m train +penalty=l1 lambda=0.001`, nothing else but the run dir."""
    run_cli(tmp_path, "+penalty=l1", "lambda=0.001")
    m = read_metrics(tmp_path)
    assert m["status"] == "completed" and m["epochs"] == 20
    assert m["train/penalty"] > 0
    assert m["train/objective"] == pytest.approx(m["train/loss"] + m["train/penalty"], rel=1e-5)
    assert 0 < m["sparsity/l1"] < 1, "L1 through proximal steps leaves exact zeros"
    assert m["val/acc"] >= 0.93


def test_sweep_runs_one_job_per_lambda(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "train",
            "-m",
            "+penalty=l1",
            "lambda=1e-4,1e-2",
            "trainer.max_epochs=3",
            *QUIET,
            f"hydra.sweep.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    small, large = (read_metrics(tmp_path / str(job)) for job in (0, 1))
    assert large["sparsity/l1"] > small["sparsity/l1"]
    cfg = (tmp_path / "1" / ".hydra" / "overrides.yaml").read_text()
    assert "lambda=0.01" in cfg


def test_penalty_without_lambda_warns_loudly(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "+penalty=l1", "trainer.max_epochs=1", *QUIET)
    assert "lightreg: WARNING: l1: lambda is 0, so NO regularization is happening" in result.stderr


@pytest.mark.parametrize("value", ["-0.001", "nan", "inf"])
def test_bad_lambda_stops_before_training(tmp_path: Path, value: str) -> None:
    result = run_cli(tmp_path, "+penalty=l1", f"lambda={value}", *QUIET, check=False)
    assert result.returncode != 0
    assert "lambda must be a finite number >= 0" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_penalty_options_from_the_command_line(tmp_path: Path) -> None:
    run_cli(
        tmp_path,
        "data=synthetic",
        "model=mlp",
        "model.hidden_sizes=[6]",
        "+penalty=group_lasso",
        "lambda=0.05",
        "penalty.groups=columns",
        "penalty.include=[net.fc1.weight]",
        "penalty.warmup_epochs=1",
        "trainer.max_epochs=4",
        *QUIET,
    )
    m = read_metrics(tmp_path)
    assert m["sparsity/group_lasso"] > 0
    assert "sparsity/net.out.weight" not in m or m["sparsity/net.out.weight"] == 0


def test_two_penalties_with_their_own_strengths(tmp_path: Path) -> None:
    run_cli(tmp_path, "experiment=l1_first_l2_rest", "trainer.max_epochs=3", *QUIET)
    m = read_metrics(tmp_path)
    assert {"sparsity/l1", "sparsity/l2_rest", "train/penalty"} <= set(m)
    config = (tmp_path / ".hydra" / "config.yaml").read_text()
    assert "l2_rest" in config and "net.fc1.weight" in config


def test_sparse_group_lasso_drops_inputs_and_entries(tmp_path: Path) -> None:
    """One class + one YAML file: ``+penalty=sparse_group_lasso`` works like every penalty. With the exact finish on the
    synthetic data (x0, x1 informative) it keeps exactly x0 and x1 and also zeros single entries of kept columns."""
    run_cli(
        tmp_path,
        "data=synthetic",
        "model=mlp",
        "model.hidden_sizes=[6]",
        "+penalty=sparse_group_lasso",
        "lambda=0.03",
        "penalty.include=[net.fc1.weight]",
        "penalty.mode=exact",
        "+penalty@extra_penalties.l2_rest=l2",
        "extra_penalties.l2_rest.strength=0.01",
        "extra_penalties.l2_rest.exclude=[net.fc1.weight]",
        "trainer.max_epochs=30",
        *QUIET,
    )
    m = read_metrics(tmp_path)
    sparsity = json.loads((tmp_path / "sparsity.json").read_text())
    (fc1,) = [layer for layer in sparsity["layers"] if layer["name"] == "net.fc1.weight"]
    assert sparsity["features"]["selected_names"] == ["x0", "x1"]
    assert fc1["zeros"] > fc1["dropped_inputs"] * fc1["units"]  # zeros inside the two kept columns too
    # the support is the optimum's and the KKT residual is within 10 % of λ = 0.03 (7.5e-5 measured); on this ReLU
    # network the finish may still end at finish.max_iter before its residual reaches tol·λ̄, which it then reports
    assert m["kkt_violation"] < 0.1 * 0.03 and m["exact/kkt"] < 0.1 * 0.03
    assert m["exact/converged"] in (0.0, 1.0) and m["exact/iterations"] <= 1000
    assert m["val/acc"] >= 0.85  # a 2-input model of a linear rule with 0.3 noise: ~0.9 (0.91 measured)


def test_resume_from_last_checkpoint_continues_exactly(tmp_path: Path) -> None:
    """4 epochs in one go == 2 epochs, then resumed from last.ckpt to 4 (Adam state, batches, prox in Adam's metric).
    The adaptive warm-up is pinned: by default it is half of max_epochs' steps, which differ between the runs."""
    common = [
        "data=synthetic",
        "model=mlp",
        "optimizer=adam",
        "+penalty=l1",
        "lambda=0.003",
        "penalty.adaptive_warmup=13",
        *QUIET,
        *CHECKPOINT,
    ]
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    run_cli(straight, *common, "trainer.max_epochs=4")
    run_cli(first, *common, "trainer.max_epochs=2")
    run_cli(resumed, *common, "trainer.max_epochs=4", f"ckpt_path={first}/checkpoints/last.ckpt")
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert read_metrics(resumed)["epochs"] == 4
    assert json.loads((straight / "metrics.json").read_text())["sparsity/l1"] == read_metrics(resumed)["sparsity/l1"]


def test_ddp_through_the_lightning_trainer(tmp_path: Path) -> None:
    """Two CPU processes (gloo) through `trainer.strategy=ddp`: the penalty callback runs on both ranks."""
    run_cli(
        tmp_path,
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.accelerator=cpu",
        "+penalty=l1",
        "lambda=0.001",
        "trainer.max_epochs=2",
        *QUIET,
    )
    m = read_metrics(tmp_path)
    assert m["status"] == "completed" and m["epochs"] == 2
    assert m["train/penalty"] > 0 and m["sparsity/l1"] > 0
    # 1437 training rows split over 2 ranks at batch 64: 12 steps per epoch (not 23)
    assert m["global_step"] == 24
