"""
Which pixels a network reads: group lasso on the first layer's columns
======================================================================

Each column of an MLP's first weight matrix belongs to one input feature, here one pixel of scikit-learn's 8 × 8
digits. Group lasso on the columns (``groups="columns"``, penalty ``λ Σ_j √32 ‖W[:, j]‖₂`` for 32 hidden units)
sets whole columns to exactly zero: the network stops reading those pixels. The proximal step shrinks each
column's norm by ``η·λ·√32`` after every optimizer step and zeroes the columns whose norm falls below it.

The fit is full batch (``batch_size=None``): with minibatches, a column whose true gradient is below the threshold
still leaves zero whenever one batch's gradient exceeds it (see the user guide's page on exact zeros).
"""

import logging
import warnings
from functools import partial

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from lightreg.callbacks import regularizer
from lightreg.data import ArrayDataModule
from lightreg.models import MLP

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
scaler = StandardScaler().fit(x_train)
data = ArrayDataModule(
    torch.tensor(scaler.transform(x_train), dtype=torch.float32),
    torch.tensor(y_train),
    batch_size=None,
    x_val=torch.tensor(scaler.transform(x_val), dtype=torch.float32),
    y_val=torch.tensor(y_val),
)


def train(callbacks: list) -> tuple[np.ndarray, float]:
    """MLP 64-32-10, SGD (lr 0.1, momentum 0.9), 150 full-batch epochs: |W| of ``net.fc1`` and the val accuracy."""
    torch.manual_seed(0)
    model = MLP(
        hidden_sizes=[32],
        input_shape=(64,),
        num_classes=10,
        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        print_epochs=False,
    )
    trainer = L.Trainer(
        max_epochs=150,
        accelerator="cpu",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    return model.net.fc1.weight.detach().abs().numpy(), float(trainer.callback_metrics["val/acc"])


lam = 0.05
plain, plain_acc = train([])
group, group_acc = train([regularizer("group_lasso", lam, groups="columns", include=["net.fc1.weight"])])
kept = group.sum(axis=0) > 0
print(f"no penalty:  val acc {plain_acc:.3f}, pixels read 64 of 64")
print(f"group lasso: val acc {group_acc:.3f}, pixels read {int(kept.sum())} of 64 (λ = {lam})")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained", gridspec_kw={"width_ratios": [2, 2, 1]})
cmap = plt.get_cmap("magma").with_extremes(bad="0.75")  # exact zeros in grey
for ax, weights, title in zip(
    axes[:2], (plain, group), ("no penalty", f"group lasso on columns, λ = {lam}: {int((~kept).sum())} columns 0")
):
    image = ax.imshow(np.ma.masked_equal(weights, 0), cmap=cmap, aspect="auto", interpolation="nearest")
    ax.set(title=title, xlabel="input pixel (column of net.fc1.weight)", ylabel="hidden unit")
    fig.colorbar(image, ax=ax, label="|w|")
norms = np.linalg.norm(group, axis=0).reshape(8, 8)
axes[2].imshow(np.ma.masked_equal(norms, 0), cmap="viridis", interpolation="nearest")
axes[2].imshow(np.ma.masked_not_equal(norms, 0), cmap="Greys", vmin=-1, vmax=1, interpolation="nearest")
axes[2].set(title="column norms as pixels\n(grey: not read)", xticks=[], yticks=[])
plt.show()
