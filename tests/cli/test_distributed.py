"""Distributed runs through Lightning only: λ keeps its meaning across devices × batch × accumulation, FSDP's limits
say so in one line, and the SLURM launcher config composes (nothing is submitted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from lightreg.run_folder import read_metrics

from helpers import run_cli

# 640 training rows = 10 batches of 64: every run sees whole batches (no short or padded last batch)
COMMON = [
    "data=synthetic",
    "data.n_samples=800",
    "model=mlp",
    "optimizer=sgd",
    "+penalty=l1",
    "lambda=0.003",
    "trainer.max_epochs=3",
    "logger=none",
    "model.print_epochs=false",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "num_threads=1",
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_lambda_means_the_same_for_any_devices_batch_and_accumulation(tmp_path: Path) -> None:
    """1 process × batch 64 == 2 DDP processes × batch 32 == 1 process × batch 32 × 2 accumulated micro-batches.

    The data loss is a batch mean and DDP averages the ranks' gradients, so each update is the gradient of the mean
    over the same 64 rows, and the prox (after the real step, with the same lr·λ) is identical. The rows match
    exactly: TensorBatches gives rank r every 2nd index of the epoch's permutation (as DistributedSampler does), so
    rank 0's batch k ∪ rank 1's batch k = rows 64k..64k+63 of that permutation = the single process's batch k; two
    consecutive micro-batches of 32 are the same 64 rows. Only the summation order of the float sums differs.
    """
    runs = {
        "1x64": [],
        "2x32 ddp": ["trainer=ddp_cpu", "data.batch_size=32"],
        "1x32 acc2": ["data.batch_size=32", "trainer.accumulate_grad_batches=2"],
    }
    weights, figures = {}, {}
    for name, extra in runs.items():
        run = tmp_path / name.replace(" ", "_")
        run_cli(run, *COMMON, *extra)
        weights[name] = _weights(run)
        figures[name] = read_metrics(run)
    reference = weights["1x64"]
    for name, got in figures.items():  # epoch means over every rank's samples (summed across ranks), not rank 0's
        figures_of_all_rows = ("train/acc", "train/balanced_acc", "val/acc", "val/balanced_acc")  # counts, all-reduced
        for key in ("train/loss", "train/penalty", "train/objective", "val/loss", *figures_of_all_rows):
            assert got[key] == pytest.approx(figures["1x64"][key], rel=1e-4), f"{name}: {key}"
    assert (reference["net.fc1.weight"] == 0).any(), "the L1 prox made exact zeros"
    for name, state in weights.items():
        for key, value in reference.items():
            torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
        assert torch.equal(state["net.fc1.weight"] == 0, reference["net.fc1.weight"] == 0), name


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_fsdp_without_gpu_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "run", "trainer=fsdp", "trainer.max_epochs=1", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("lightreg: error: bad trainer config:") and "gpu" in last.lower()
    assert "Traceback" not in proc.stderr


def test_slurm_launcher_composes() -> None:
    """hydra/launcher=submitit_slurm composes without the plugin installed (every key is spelled out) and takes its
    nodes from trainer.num_nodes and one task per GPU."""
    overrides = [
        "hydra/launcher=submitit_slurm",
        "trainer=ddp",
        "trainer.num_nodes=2",
        "trainer.devices=4",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.partition=gpu",
    ]
    with initialize_config_module("lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.nodes == 2 and launcher.tasks_per_node == 4 and launcher.gpus_per_node == 4
    assert launcher.partition == "gpu" and launcher.timeout_min == 60
    raw = OmegaConf.to_container(launcher, resolve=False)
    assert raw["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    assert cfg.trainer.num_nodes == 2 and cfg.trainer.strategy == "ddp"
    try:  # with the [slurm] extra installed: the same keys as the plugin's schema, no more, no fewer
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    except ImportError:
        return
    assert set(raw) == set(OmegaConf.to_container(OmegaConf.structured(SlurmQueueConf)))
