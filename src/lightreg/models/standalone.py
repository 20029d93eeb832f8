"""A trained model as one plain-torch module: raw rows in, logits or target-unit values out.

``StandaloneModel(x) = units(body((x - feature_mean) / feature_std))`` where ``body`` is the model's ``net`` (or the
whole model when its class overrides ``forward``) and ``units(o) = target_mean + target_std · o`` for regression (the
identity otherwise, and for a whole model, whose ``forward`` already gives target units). Pure torch: no Lightning,
so it traces (``torch.jit.trace``), exports to ONNX, and can be rebuilt from a state dict and :meth:`facts`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightreg.errors import UserError
from lightreg.task_kinds import TASKS

BASE_FORWARD = ("lightreg.models.base", "LightregModule")
"""Module and class of the ``forward`` that is ``net(x)`` followed by the target units."""


def forward_owner(model: nn.Module) -> type:
    """The class in ``type(model).__mro__`` that defines the ``forward`` the model runs."""
    return next(cls for cls in type(model).__mro__ if "forward" in vars(cls))


def forward_is_net(model: nn.Module) -> bool:
    """Whether ``model``'s ``forward`` is the base one, ``net(x)`` (then in target units): nothing outside ``net``."""
    owner = forward_owner(model)
    return (owner.__module__, owner.__qualname__) == BASE_FORWARD


class StandaloneModel(nn.Module):
    """Raw inputs → logits (classification) or predictions in the target's units (regression).

    Args:
        body: the network; it reads standardized inputs.
        task: ``binary`` | ``multiclass`` | ``regression``.
        input_shape: shape of one raw sample, e.g. ``(30,)`` or ``(1, 28, 28)``.
        feature_mean, feature_std: per input value (``input_shape``), the training split's standardization;
            an image model's per-channel pixel normalization in raw pixel units, repeated over the pixels;
            ``None`` = 0 and 1 (inputs used as given).
        target_mean, target_std: regression: ``y = target_mean + target_std · body(x)`` (ignored when ``whole``).
        classes: the original label of each class index (classifiers), else ``None``.
        feature_names: the name of each input feature, in the order ``forward`` reads them.
        whole: ``body`` is the whole model (its ``forward`` gives target units itself).
    """

    def __init__(
        self,
        body: nn.Module,
        task: str,
        input_shape: tuple[int, ...] | list[int],
        feature_mean: Tensor | None = None,
        feature_std: Tensor | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        classes: list | None = None,
        feature_names: list[str] | None = None,
        whole: bool = False,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise UserError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        if feature_names is not None and len(self.input_shape) == 1 and len(feature_names) != self.input_shape[0]:
            raise UserError(f"{len(feature_names)} feature names for {self.input_shape[0]} inputs")
        self.body = body
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self.feature_names = [str(n) for n in feature_names] if feature_names is not None else None
        self.whole = bool(whole)
        mean = torch.zeros(self.input_shape) if feature_mean is None else feature_mean.detach().float()
        std = torch.ones(self.input_shape) if feature_std is None else feature_std.detach().float()
        self.register_buffer("feature_mean", mean.reshape(self.input_shape).clone())
        self.register_buffer("feature_std", std.reshape(self.input_shape).clone())
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    @classmethod
    def of(cls, model: Any) -> StandaloneModel:
        """The standalone form of a trained :class:`~lightreg.models.LightregModule` (in eval mode; it shares the
        model's parameters). A model whose class overrides ``forward`` is kept whole, so a skip path is not lost."""
        whole = not forward_is_net(model)
        shape = tuple(model.input_shape)
        standalone = cls(
            body=model if whole else model.net,
            task=model.task,
            input_shape=shape,
            feature_mean=model.feature_mean.detach().cpu().reshape(shape),
            feature_std=model.feature_std.detach().cpu().reshape(shape),
            target_mean=float(model.target_mean),
            target_std=float(model.target_std),
            classes=model.classes,
            feature_names=model.feature_names,
            whole=whole,
        )
        return standalone.eval()

    def has_feature_scale(self) -> bool:
        """Whether the model standardizes its inputs (``feature_mean``/``feature_std`` not all 0 and 1): an image
        model then reads raw pixels; one saved without a scale reads images as its data module fed them in training."""
        return not bool((self.feature_mean == 0).all() and (self.feature_std == 1).all())

    def facts(self) -> dict[str, Any]:
        """The constructor's arguments besides the tensors (plain Python: JSON-able)."""
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "classes": self.classes,
            "feature_names": self.feature_names,
            "whole": self.whole,
        }

    def forward(self, x: Tensor) -> Tensor:
        """Logits, or for regression the predictions in the target's units, of raw inputs ``x`` (``(n, *input_shape)``)."""
        output = self.body((x - self.feature_mean) / self.feature_std)
        if self.task == "regression" and not self.whole:
            return output * self.target_std + self.target_mean
        return output

    def labels(self, output: Tensor) -> list:
        """Predicted labels of :meth:`forward`'s ``output``: original class labels, or values in target units."""
        if self.task == "regression":
            return output.reshape(-1).tolist()
        index = (output.reshape(-1) > 0).long() if self.task == "binary" else output.argmax(dim=-1)
        return [self.classes[i] for i in index.tolist()] if self.classes is not None else index.tolist()

    def probabilities(self, output: Tensor) -> Tensor:
        """Class probabilities ``(n, C)`` of :meth:`forward`'s ``output`` (binary: ``[1 - p, p]``)."""
        if self.task == "regression":
            raise UserError("class probabilities are for classifiers; a regression model predicts values")
        if self.task == "binary":
            p = torch.sigmoid(output.reshape(-1))
            return torch.stack((1 - p, p), dim=1)
        return torch.softmax(output, dim=-1)


__all__ = ["StandaloneModel", "forward_is_net", "forward_owner"]
