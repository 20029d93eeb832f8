"""
Five hand-written regularization mistakes, next to lightreg
===========================================================

Questions people ask about L1/L2 in PyTorch show five ways a penalty written by hand goes wrong without an error.
Each panel below trains a logistic regression twice on scikit-learn's data: once with the hand-written penalty
(plain PyTorch, the way the question wrote it), once with lightreg's
:class:`~lightreg.callbacks.RegularizationCallback`.

1. ``loss + 0.5 * L1`` with ``L1 = 0.2``: a constant, its gradient is zero, nothing is regularized.
2. ``torch.norm(layer.weight.data, p=1)``: ``.data`` is detached, the gradient is zero again.
3. ``loss - λ·L1``: a sign error, the weights grow without bound.
4. the intercept penalized too: it is pulled towards zero, and the predicted base rate with it (and the
   "validation loss" that includes the penalty says nothing about the fit).
5. L1 in the loss with Adam: small weights, never an exact zero.

Mistakes 1 to 3 written inside a lightreg model (:meth:`~lightreg.models.LightregModule.extra_loss_terms`) stop
at the first step with one line; the end of this example prints those lines.
"""

import logging
import warnings
from functools import partial

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from lightreg.callbacks import RegularizationCallback
from lightreg.data import ArrayDataModule
from lightreg.errors import UserError
from lightreg.models import LogisticRegression
from lightreg.penalties import L1, L2

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

x, y = load_digits(return_X_y=True)
x = torch.tensor(StandardScaler().fit_transform(x), dtype=torch.float32)
y_digit = torch.tensor(y)
y_zero = (y_digit == 0).float()  # a binary task with a 10 % base rate: "is it a 0?"
EPOCHS = 30
SGD = partial(torch.optim.SGD, lr=0.5)
TRAINER = {
    "accelerator": "cpu",
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
    "limit_val_batches": 0,
}


class WeightHistory(L.Callback):
    """Σ|w| of the linear layer's weight after each epoch."""

    def __init__(self) -> None:
        self.l1 = []

    def on_train_epoch_end(self, trainer, module) -> None:
        self.l1.append(float(module.net.linear.weight.detach().abs().sum()))


def fit_lightreg(callbacks, target, task="multiclass", optimizer=SGD, epochs=EPOCHS):
    """A lightreg logistic regression, full batch, with the given penalty callbacks."""
    torch.manual_seed(0)
    classes = 10 if task == "multiclass" else 2
    model = LogisticRegression(
        input_shape=(64,), num_classes=classes, task=task, optimizer=optimizer, print_epochs=False
    )
    history = WeightHistory()
    trainer = L.Trainer(max_epochs=epochs, callbacks=[*callbacks, history], **TRAINER)
    trainer.fit(model, datamodule=ArrayDataModule(x, target, batch_size=None))
    return model, history.l1


def fit_by_hand(extra_term, target=y_digit, binary=False, optimizer=SGD, epochs=EPOCHS):
    """The questions' loop: full-batch steps on ``loss + extra_term(layer)``; Σ|w| after each epoch."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 1 if binary else 10)
    opt = optimizer(layer.parameters())
    history = []
    for _ in range(epochs):
        out = layer(x)
        loss = F.binary_cross_entropy_with_logits(out[:, 0], target) if binary else F.cross_entropy(out, target)
        opt.zero_grad()
        (loss + extra_term(layer)).backward()
        opt.step()
        history.append(float(layer.weight.detach().abs().sum()))
    return layer, history


lam = 0.01
_, none = fit_by_hand(lambda layer: 0.0)
_, lightreg_l1 = fit_lightreg([RegularizationCallback(L1(), lam)], y_digit)
_, constant = fit_by_hand(lambda layer: 0.5 * 0.2)
_, detached = fit_by_hand(lambda layer: lam * torch.norm(layer.weight.data, p=1))
_, subtracted = fit_by_hand(lambda layer: -lam * layer.weight.abs().sum())

# 4: strong L2 on a 10 % base rate; by hand on every parameter, lightreg on the weight matrix only
strong = 0.5
by_hand_bias, _ = fit_by_hand(
    lambda layer: strong / 2 * sum((p**2).sum() for p in layer.parameters()), target=y_zero, binary=True, epochs=150
)
lightreg_bias, _ = fit_lightreg([RegularizationCallback(L2(), strong)], y_zero, task="binary", epochs=150)
with torch.no_grad():
    rate_by_hand = float(torch.sigmoid(by_hand_bias(x)).mean())
    rate_lightreg = float(torch.sigmoid(lightreg_bias(x)).mean())
    hand_val = F.binary_cross_entropy_with_logits(by_hand_bias(x)[:, 0], y_zero)
    hand_reported = hand_val + strong / 2 * sum((p**2).sum() for p in by_hand_bias.parameters())

# 5: Adam with L1 in the loss, against lightreg's proximal L1 in Adam's own metric
adam = partial(torch.optim.Adam, lr=0.05)
adam_hand, _ = fit_by_hand(lambda layer: lam * layer.weight.abs().sum(), optimizer=adam)
adam_prox, _ = fit_lightreg([RegularizationCallback(L1(), lam)], y_digit, optimizer=adam)
zeros_hand = int((adam_hand.weight == 0).sum())
zeros_prox = int((adam_prox.net.linear.weight == 0).sum())

epochs = np.arange(1, EPOCHS + 1)
fig, axes = plt.subplots(1, 5, figsize=(17, 3.6), layout="constrained")
for ax, hand, title in zip(
    axes[:3],
    (constant, detached, subtracted),
    ("1. loss + 0.5·0.2 (a constant)", "2. λ·‖W.data‖₁ (detached)", "3. loss − λ·‖W‖₁ (sign error)"),
):
    ax.plot(epochs, none, color="0.6", lw=3, label="no penalty")
    ax.plot(epochs, hand, "--", color="tab:red", label="by hand")
    ax.plot(epochs, lightreg_l1, color="tab:blue", label=f"lightreg L1, λ={lam}")
    ax.set(title=title, xlabel="epoch", ylabel="Σ|w|")
axes[0].legend()
rate = float(y_zero.mean())
axes[3].bar(
    ["base rate", "by hand", "lightreg"], [rate, rate_by_hand, rate_lightreg], color=["0.6", "tab:red", "tab:blue"]
)
axes[3].bar_label(axes[3].containers[0], fmt="%.3f")
axes[3].set(title="4. intercept penalized (L2, λ=0.5)", ylabel="mean predicted P(digit is 0)", ylim=(0, 0.6))
axes[3].text(
    0.03,
    0.97,
    f"by hand, 'val loss' {float(hand_reported):.3f}\nwith the penalty; data loss {float(hand_val):.3f}",
    transform=axes[3].transAxes,
    va="top",
    fontsize=8,
)
axes[4].bar(
    ["by hand:\nL1 in the loss", "lightreg:\nproximal L1"], [zeros_hand, zeros_prox], color=["tab:red", "tab:blue"]
)
axes[4].bar_label(axes[4].containers[0])
axes[4].set(title="5. Adam + L1: exact zeros", ylabel="weights exactly 0 (of 640)")
axes[4].margins(y=0.12)
plt.show()

# %%
# What lightreg says when the same terms are written by hand inside a lightreg model: each one stops the fit at the
# first step with one line. A negative strength is refused when the callback is built.


class ByHand(LogisticRegression):
    term = None  # set below: the hand-written term, a function of the linear layer

    def extra_loss_terms(self, batch, output):
        return {"by_hand": self.term(self.net.linear)}


for term in (
    lambda layer: torch.tensor(0.5 * 0.2),
    lambda layer: lam * torch.norm(layer.weight.data, p=1),
    lambda layer: -lam * layer.weight.abs().sum(),
):
    model = ByHand(input_shape=(64,), num_classes=10, optimizer=SGD, print_epochs=False)
    model.term = term
    try:
        L.Trainer(max_epochs=1, **TRAINER).fit(model, datamodule=ArrayDataModule(x, y_digit, batch_size=None))
    except UserError as error:
        print("lightreg: error:", error)
try:
    RegularizationCallback(L1(), -lam)
except UserError as error:
    print("lightreg: error:", error)
