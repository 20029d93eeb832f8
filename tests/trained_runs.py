"""Trained runs for the tests of ``lightreg predict`` / ``export`` and ``compact.pt``: a scikit-learn data set
written as a training CSV (with an ``id`` column) and a held-out CSV (rows training never sees, columns shuffled),
trained through the real entry point; a model whose ``forward`` has a skip path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from sklearn import datasets
from torch import Tensor, nn

from lightreg.models import LogisticRegression

from conftest import describe
from helpers import read_metrics, run_train

LABELS = {"breast_cancer": ["malignant", "benign"]}
"""String labels of a data set's class indices (else the class indices themselves)."""
QUIET = ["logger=none", "~callbacks.progress_bar", "model.print_epochs=false"]


def write_split(folder: Path, name: str, target: str, held_out: float = 0.2) -> tuple[Path, Path]:
    """``train.csv`` (``id``, the features, ``target``) and ``holdout.csv`` (the other rows, the same columns in a
    shuffled order) of scikit-learn's data set ``name``."""
    data = getattr(datasets, f"load_{name}")()
    names = [str(n) for n in data.feature_names]
    labels = np.asarray(LABELS[name], dtype=object)[data.target] if name in LABELS else data.target
    order = np.random.default_rng(0).permutation(len(data.target))
    cut = int(len(order) * (1 - held_out))
    columns = ["id", *names, target]
    shuffled = list(np.random.default_rng(1).permutation(columns))

    def write(path: Path, rows: np.ndarray, header: list[str]) -> Path:
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            for i in rows:
                cells = {
                    "id": f"p{i}",
                    target: labels[i],
                    **{n: repr(float(data.data[i, j])) for j, n in enumerate(names)},
                }
                writer.writerow([cells[c] for c in header])
        return path

    return write(folder / "train.csv", order[:cut], columns), write(folder / "holdout.csv", order[cut:], shuffled)


def train_csv(folder: Path, name: str, target: str, *overrides: str) -> tuple[Path, dict]:
    """Train on ``train.csv`` of :func:`write_split`, validating on ``holdout.csv``; the run dir and its metrics."""
    train, holdout = write_split(folder, name, target)
    run = folder / "run"
    proc = run_train(
        "data=csv", f"data.train_path={train}", f"data.val_path={holdout}", f"data.target={target}", "data.drop=[id]",
        "+penalty=l1", "lambda=0.001", "trainer.max_epochs=8", *QUIET, f"hydra.run.dir={run}", *overrides, cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    return run, read_metrics(run)


def read_table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def raw_rows(rows: list[dict[str, str]], names: list[str]) -> np.ndarray:
    """The cells of columns ``names`` (in that order) as float32 rows."""
    return np.asarray([[float(row[n]) for n in names] for row in rows], dtype=np.float32)


class SkipLogistic(LogisticRegression):
    """Logistic regression plus a skip path outside ``net``: ``net(x) + skip(x)``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip = nn.Linear(self.num_inputs, self.num_outputs, bias=False)
        with torch.no_grad():
            self.skip.weight.fill_(0.05)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + self.skip(x.flatten(1))
