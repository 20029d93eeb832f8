"""
Exact zeros: L1 in the loss under Adam, against a proximal step
===============================================================

L1 written into the loss (``loss + λ·Σ|w|``) gives the optimizer the subgradient ``λ·sign(w)``: a weight
oscillates around zero but lands on exactly zero only by accident, with Adam even less (its step is rescaled per
entry). lightreg's :class:`~lightreg.callbacks.RegularizationCallback` in ``mode="prox"`` (the default for L1)
soft-thresholds the weights after every optimizer step, in Adam's own metric, and weights whose gradient stays
below λ become exactly zero.

Both runs below train the same MLP on scikit-learn's breast-cancer data with Adam and the same λ; ``mode="grad"``
is exactly the update of L1 in the loss.
"""

import logging
import warnings
from functools import partial

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from lightreg.callbacks import RegularizationCallback
from lightreg.data import ArrayDataModule
from lightreg.models import MLP
from lightreg.penalties import L1

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

x, y = load_breast_cancer(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
scaler = StandardScaler().fit(x_train)
data = ArrayDataModule(
    torch.tensor(scaler.transform(x_train), dtype=torch.float32),
    torch.tensor(y_train, dtype=torch.float32),
    batch_size=32,
    x_val=torch.tensor(scaler.transform(x_val), dtype=torch.float32),
    y_val=torch.tensor(y_val, dtype=torch.float32),
)


def train(mode: str) -> tuple[MLP, float]:
    """The MLP [50, 30, 10] with L1 (λ = 1e-3) on every weight matrix, Adam lr 0.01, 15 epochs."""
    torch.manual_seed(0)
    model = MLP(
        hidden_sizes=[50, 30, 10],
        input_shape=(30,),
        num_classes=2,
        task="binary",
        optimizer=partial(torch.optim.Adam, lr=0.01),
        print_epochs=False,
    )
    trainer = L.Trainer(
        max_epochs=15,
        accelerator="cpu",
        callbacks=[RegularizationCallback(L1(), 1e-3, mode=mode)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    return model, float(trainer.callback_metrics["val/acc"])


fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharey=True)
bins = np.linspace(-8, 0.5, 35)
for ax, mode, label in zip(axes, ("grad", "prox"), ("L1 in the loss (mode=grad)", "proximal L1 (mode=prox)")):
    model, acc = train(mode)
    weights = torch.cat([p.detach().flatten() for p in model.parameters() if p.ndim >= 2]).numpy()
    zeros = int((weights == 0).sum())
    ax.hist(np.log10(np.abs(weights[weights != 0])), bins=bins, color="tab:blue", label="non-zero weights")
    ax.bar(bins[0] - 0.6, zeros, width=0.5, color="tab:red", label="exactly zero")
    ax.set(
        title=f"{label}\n{zeros} of {weights.size} weights exactly 0, val acc {acc:.3f}",
        xlabel="log10 |w|  (exact zeros at the left)",
    )
    print(f"{label:28s} exact zeros {zeros:5d} / {weights.size}   val acc {acc:.3f}")
axes[0].set_ylabel("weights")
axes[1].legend()
plt.show()
