"""
Group lasso on units, then a smaller network
============================================

Zeros scattered inside a weight matrix save nothing at inference: the matrix multiply still has its full size.
Group lasso on the *rows* of the hidden layers (``groups="rows"``: one group per unit) zeroes whole units;
:func:`lightreg.compact` then rebuilds the network without them (and without the columns of the next layer that
read them), with the same outputs. This is what ``python -m train ... compact=true`` does at the end of a run.

The figure shows the parameters per layer before and after, and the CPU time of one forward pass over the whole
validation set (one thread, median of 30).
"""

import logging
import time
import warnings
from functools import partial

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import lightreg
from lightreg.callbacks import regularizer
from lightreg.data import ArrayDataModule
from lightreg.models import MLP

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
scaler = StandardScaler().fit(x_train)
x_val = torch.tensor(scaler.transform(x_val), dtype=torch.float32)
y_val = torch.tensor(y_val)
data = ArrayDataModule(
    torch.tensor(scaler.transform(x_train), dtype=torch.float32), torch.tensor(y_train), batch_size=None
)

# %%
# An MLP 64-256-128-10 with group lasso on the units of both hidden layers, 120 full-batch SGD epochs; λ ramps up
# over the first 20 (``warmup_epochs``), so the network learns before the penalty reaches its full strength.
torch.manual_seed(0)
model = MLP(
    hidden_sizes=[256, 128],
    input_shape=(64,),
    num_classes=10,
    optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    print_epochs=False,
)
penalty = regularizer(
    "group_lasso", 0.01, groups="rows", include=["net.fc1.weight", "net.fc2.weight"], warmup_epochs=20
)
trainer = L.Trainer(
    max_epochs=120,
    accelerator="cpu",
    callbacks=[penalty],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    limit_val_batches=0,
)
trainer.fit(model, datamodule=data)
model.eval()

# %%
# Compact it, check that the outputs are the same, and time both.
small, report = lightreg.compact(model)
print(report.table())


def milliseconds(net: torch.nn.Module) -> float:
    with torch.no_grad():
        for _ in range(5):
            net(x_val)
        times = []
        for _ in range(30):
            start = time.perf_counter()
            net(x_val)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


with torch.no_grad():
    diff = float((model(x_val) - small(x_val)).abs().max())
    acc = [float((net(x_val).argmax(1) == y_val).float().mean()) for net in (model, small)]
ms = [milliseconds(model), milliseconds(small)]
print(f"largest output difference {diff:.2e}; val acc {acc[0]:.4f} before, {acc[1]:.4f} after")
print(f"forward pass over {len(x_val)} rows: {ms[0]:.3f} ms before, {ms[1]:.3f} ms after")

rows = [row for row in report.layers if row.params_before > 0]
fig, (ax, ax_time) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", gridspec_kw={"width_ratios": [3, 1]})
at = np.arange(len(rows))
ax.bar(at - 0.2, [r.params_before for r in rows], 0.4, label="before", color="0.6")
ax.bar(at + 0.2, [r.params_after for r in rows], 0.4, label="after compact", color="tab:blue")
ax.set_xticks(at, [f"{r.name}\n{r.units_before} → {r.units_after} units" for r in rows])
ax.set(
    ylabel="parameters",
    title=f"{report.params_before} → {report.params_after} parameters, val acc {acc[0]:.3f} → {acc[1]:.3f}",
)
ax.legend()
ax_time.bar(["before", "after"], ms, color=["0.6", "tab:blue"])
ax_time.bar_label(ax_time.containers[0], fmt="%.2f")
ax_time.set(ylabel="ms per forward pass", title="CPU, one thread")
ax_time.margins(y=0.15)
plt.show()
