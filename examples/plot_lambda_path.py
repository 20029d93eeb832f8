"""
A λ path, and the λ it chooses
==============================

``python -m train data=breast_cancer +penalty=l1 +path=geometric`` trains one logistic regression along a decreasing
grid ``λ_k = λ_max · min_ratio^(k/(num−1))``, each point warm started from the previous one. λ_max, the smallest λ
whose model is all zero, comes from the training data in closed form. At every point the validation loss and its
standard error are recorded in ``path.csv``; lightreg picks two λ from them: the best validation loss, and the
largest λ within one standard error of it (the one-SE rule: a sparser model that fits as well, within the noise).

Here the same job runs in this process on a composed config (what ``python -m train`` does after parsing its
overrides), and the figure is drawn from the run folder's ``path.csv`` and ``metrics.json``.
"""

import csv
import json
import logging
import tempfile
import warnings
from pathlib import Path

import lightning  # noqa: F401  (imported first, so that its log level can be lowered below)
import matplotlib.pyplot as plt
import torch
from hydra import compose, initialize_config_module

from lightreg.cli.job import run

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

run_dir = Path(tempfile.mkdtemp(prefix="lightreg-path-"))
overrides = [
    "data=breast_cancer",
    "data.batch_size=null",  # full batch: each point ends at its optimum (the path's full-batch finish)
    "+penalty=l1",
    "+path=geometric",
    "path.num=10",
    "path.min_ratio=1e-3",
    "path.epochs_per_lambda=5",
    "path.checkpoints=none",
    "logger=none",
    "callbacks=none",
    "model.print_epochs=false",
    f"paths.output_dir={run_dir}",
]
with initialize_config_module("lightreg.conf", version_base="1.3"):
    cfg = compose("train", overrides=overrides)
run(cfg)

rows = list(csv.DictReader((run_dir / "path.csv").open()))
metrics = json.loads((run_dir / "metrics.json").read_text())
lambdas = [float(r["lambda"]) for r in rows]
loss = [float(r["val/loss"]) for r in rows]
se = [float(r["val/loss_se"]) for r in rows]
nnz = [int(r["nnz"]) for r in rows]
coef_names = [c for c in rows[0] if c.startswith("coef:")]

fig, (ax, ax_coef) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax.errorbar(lambdas, loss, yerr=se, marker="o", ms=4, capsize=2, label="val/loss ± SE")
ax.set(xscale="log", xlabel="λ", ylabel="validation loss", title="validation loss along the path")
twin = ax.twinx()
twin.plot(lambdas, nnz, "s--", color="tab:green", ms=3)
twin.set_ylabel("non-zero coefficients", color="tab:green")
for rule, color in (("best", "tab:red"), ("one_se", "tab:purple")):
    chosen = metrics[f"{rule}/lambda"]
    ax.axvline(chosen, color=color, ls=":", label=f"{rule}: λ={chosen:.2g}, nnz {metrics[f'{rule}/nnz']}")
ax.legend(loc="center left")
for name in coef_names:
    ax_coef.plot(lambdas, [float(r[name]) for r in rows], lw=1)
ax_coef.axvline(metrics["one_se/lambda"], color="tab:purple", ls=":")
ax_coef.set(xscale="log", xlabel="λ", ylabel="coefficient (standardized features)", title="coefficient paths")
plt.show()
