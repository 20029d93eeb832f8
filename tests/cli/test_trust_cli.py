"""A run you can trust, through the real CLI: every shipped data config trains to a sensible result at its defaults,
a CSV a real user has, divergence, resumes, and what the console and train.log show.

The runs start together (two at a time) when the first test of this module asks for one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch

from image_files import write_cifar10, write_idx_set
from lightreg.models import LogisticRegression

from conftest import config_options, describe, run_train
from helpers import InThisThread

pytestmark = pytest.mark.slow

QUIET = ["logger=none", "~callbacks.progress_bar"]
# Floors of the shipped data configs at their defaults (logistic/linear model, SGD lr 0.1 momentum 0.9, 20 epochs,
# seed 0), each with its reason; measured values in docs/data.md.
FLOORS = {
    "digits": ("val/acc", 0.90, "a linear model on the 64 standardized pixels reaches ~0.96 (docs/data.md)"),
    "breast_cancer": ("val/acc", 0.90, "nearly linearly separable: logistic regression ~0.97"),
    "wine": ("val/acc", 0.85, "3 linearly separable classes; 36 val samples"),
    "iris": ("val/acc", 0.80, "a linear model gets setosa + most of the rest; 30 val samples"),
    "diabetes": ("val/r2", 0.20, "OLS reaches R2 = 0.33 on this split; was -6.55 before target standardization"),
    "synthetic": ("val/acc", 0.80, "linear rule with noise 0.3: Bayes rate ~0.9"),
    "csv": ("val/acc", 0.80, "the test's own table: label = a + b > 0 with 10% flipped"),
    "digits_images": ("val/acc", 0.90, "the digits as 1x8x8 images: the same linear model as `digits` (~0.96)"),
    # the image sets that need a download train on files the test writes in their real formats (tests/image_files.py):
    # toy images whose class is where a bright square sits, which a linear model separates
    "mnist": ("val/acc", 0.80, "written IDX files, class = the bright square's place: linearly separable"),
    "fashion_mnist": ("val/acc", 0.80, "written IDX files, class = the bright square's place: linearly separable"),
    "cifar10": ("val/acc", 0.70, "written CIFAR batches (200 images), class = the bright square's place"),
}
DOWNLOADED = {"mnist": "idx", "fashion_mnist": "idx", "cifar10": "cifar"}
"""Image configs whose real files need a download: the floor runs on written files (data.download=false)."""


def _user_csv(root: Path) -> Path:
    """What a real user has: ';' separated, an id column, string labels, one row with a missing cell."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=gen)
    flip = torch.rand(200, generator=gen) < 0.1
    label = ((x[:, 0] + x[:, 1] > 0) ^ flip).tolist()
    rows = [(1000 + i, *[round(v, 4) for v in x[i].tolist()], "yes" if label[i] else "no") for i in range(200)]
    rows[17] = (1017, rows[17][1], "", rows[17][3], rows[17][4])  # a missing cell: needs data.dropna=true
    path = root / "customers.csv"
    path.write_text("\n".join(";".join(map(str, r)) for r in [("id", "a", "b", "noise", "bought"), *rows]) + "\n")
    return path


def _jobs(root: Path) -> dict[str, list[str]]:
    user = _user_csv(root)
    csv = ["data=csv", f"data.train_path={user}", "data.target=bought", "data.drop=[id]", "data.dropna=true"]
    jobs = {f"floor_{name}": [f"data={name}", *QUIET] for name in config_options("data") if name != "csv"}
    for name, kind in DOWNLOADED.items():
        images = root / "images" / name
        write_idx_set(images, name) if kind == "idx" else write_cifar10(images)
        jobs[f"floor_{name}"] += [f"data.root={images}", "data.download=false"]
    jobs["floor_csv"] = [*csv, *QUIET, "+penalty=l1", "lambda=0.003"]
    jobs["diverged_diabetes"] = ["data=diabetes", "optimizer.lr=1e4", *QUIET]
    jobs["diverged_mlp_adam"] = ["data=diabetes", "model=mlp", "optimizer=adam", "optimizer.lr=1e12", *QUIET]
    jobs["log_penalty"] = ["+penalty=l1", "trainer.max_epochs=2", "logger=none"]  # lambda left at 0: a warning
    jobs["earlier"] = ["+penalty=l1", "lambda=0.001", "trainer.max_epochs=2", *QUIET]
    return {name: [*args, f"hydra.run.dir={root / name}"] for name, args in jobs.items()}


class Runs:
    def __init__(self, root: Path, pool: InThisThread) -> None:
        self.root, self.pool = root, pool
        self.futures: dict[str, Future] = {n: pool.submit(run_train, *a, cwd=root) for n, a in _jobs(root).items()}

    def __call__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.futures[name].result()

    def later(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """A run that needs an earlier one's files (resumes)."""
        return run_train(*args, f"hydra.run.dir={self.root / name}", cwd=self.root)

    def metrics(self, name: str) -> dict:
        return json.loads((self.root / name / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with InThisThread() as pool:
        yield Runs(tmp_path_factory.mktemp("trust"), pool)


def test_every_data_config_has_a_floor() -> None:
    assert set(FLOORS) == set(config_options("data")), "state a floor (and its reason) for each shipped data config"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_data_config_trains_to_a_sensible_result(runs: Runs, name: str) -> None:
    proc = runs(f"floor_{name}")
    assert proc.returncode == 0, describe(proc)
    key, floor, reason = FLOORS[name]
    metrics = runs.metrics(f"floor_{name}")
    assert metrics["status"] == "completed"
    assert metrics[key] > floor, f"{name}: {key} = {metrics[key]:.3f} <= {floor} ({reason})"
    assert "log_every_n_steps" not in proc.stderr and "logging interval" not in proc.stderr  # iris: 8 batches


def test_regression_figures_are_in_the_targets_units(runs: Runs) -> None:
    metrics = runs.metrics("floor_diabetes")
    assert 30 < metrics["val/mae"] < 80  # disease progression units (target std 77); standardized it would be < 1
    ckpt = runs.root / "floor_diabetes" / "checkpoints" / "last.ckpt"
    model = LogisticRegression.load_from_checkpoint(ckpt, map_location="cpu")
    prediction = model(torch.zeros(1, 10)).item()  # the standardized mean input: about the mean target
    assert 120 < prediction < 180


def test_csv_of_a_real_user(runs: Runs) -> None:
    proc = runs("floor_csv")
    assert proc.returncode == 0, describe(proc)
    assert "dropped 1 row (line 19)" in proc.stderr
    metrics = runs.metrics("floor_csv")
    assert metrics["classes"] == ["no", "yes"]
    sparsity = json.loads((runs.root / "floor_csv" / "sparsity.json").read_text())
    assert sparsity["features"]["names"] == ["a", "b", "noise"]  # the id column dropped, names carried
    assert "Classes (index: label): 0: no, 1: yes" in proc.stdout
    model = LogisticRegression.load_from_checkpoint(runs.root / "floor_csv" / "checkpoints" / "last.ckpt")
    assert model.predict_labels(torch.tensor([[3.0, 3.0, 0.0], [-3.0, -3.0, 0.0]])) == ["yes", "no"]


@pytest.mark.parametrize("name", ["diverged_diabetes", "diverged_mlp_adam"])
def test_divergence_stops_the_run_with_one_line(runs: Runs, name: str) -> None:
    proc = runs(name)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, describe(proc)
    assert lines[0].startswith("lightreg: error: training diverged in epoch") and "optimizer.lr" in lines[0]
    assert runs.metrics(name)["status"] == "diverged"
    for ckpt in (runs.root / name).glob("checkpoints/*.ckpt"):  # the epoch that went NaN wrote no checkpoint
        weights = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(w).all() for w in weights.values()), ckpt


def test_train_log_holds_what_the_console_showed(runs: Runs) -> None:
    proc = runs("log_penalty")
    assert proc.returncode == 0, describe(proc)
    log = (runs.root / "log_penalty" / "train.log").read_text()
    for shown in (
        "Epoch 1/2",
        "Epoch 2/2",
        "lightreg: WARNING: l1: lambda is 0",
        "run folder",
        "checkpoints",
        "sparsity",
        "Sparsity at the end of",
    ):
        assert shown in log, shown
    assert "\x1b[" not in log and "it/s" not in log  # no colour codes, no progress bar frames
    assert all(len(line) <= 80 for line in log.splitlines() if line.startswith(("Epoch", "run folder")))


def test_final_block_without_a_penalty(runs: Runs) -> None:
    proc = runs("floor_digits")
    block = proc.stdout[proc.stdout.index("run folder") :].splitlines()
    assert block[0].split()[-1] == str(runs.root / "floor_digits")
    assert block[1].startswith("after 20 epochs") and "val/acc" in block[1] and "val/loss" in block[1]
    assert block[2].split()[1:] == ["checkpoints/best.ckpt,", "checkpoints/last.ckpt"]
    assert not any(line.startswith("sparsity") for line in block)


def test_resume_already_done_writes_nothing(runs: Runs) -> None:
    assert runs("earlier").returncode == 0
    ckpt = runs.root / "earlier" / "checkpoints" / "last.ckpt"
    proc = runs.later("done", f"ckpt_path={ckpt}", "+penalty=l1", "lambda=0.001", "trainer.max_epochs=2", *QUIET)
    assert proc.returncode == 0, describe(proc)
    assert [line for line in proc.stdout.splitlines() if line.strip()] == [
        f"lightreg: {ckpt} has already trained 2 epochs = trainer.max_epochs: nothing to do, no files written; "
        "set trainer.max_epochs above 2 to train further"
    ]
    assert not (runs.root / "done").exists()


def test_resume_with_allowed_changes_into_a_new_folder(runs: Runs) -> None:
    assert runs("earlier").returncode == 0
    ckpt = runs.root / "earlier" / "checkpoints" / "last.ckpt"
    proc = runs.later(
        "changed",
        f"ckpt_path={ckpt}",
        "+penalty=l2",
        "lambda=0.01",
        "trainer.max_epochs=3",
        "resume.allow_changes=true",
        *QUIET,
    )
    assert proc.returncode == 0, describe(proc)
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "resume.allow_changes=true" in warnings[0] and "L2()" in warnings[0], describe(proc)
    assert "dirpath has changed" not in proc.stdout + proc.stderr
    metrics = runs.metrics("changed")
    assert (metrics["status"], metrics["epochs"]) == ("completed", 3)
