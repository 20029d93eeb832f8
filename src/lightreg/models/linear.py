"""Logistic (and linear) regression: the model most hand-written L1/L2 questions start from."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from lightreg.models.base import LightregModule


class LogisticRegression(LightregModule):
    """``net = Flatten → Linear(d, k)``: k = 1 logit (binary), C logits (multiclass) or one value
    (regression, i.e. linear regression). Parameters: ``net.linear.weight`` (k, d), ``net.linear.bias``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), linear=nn.Linear(self.num_inputs, self.num_outputs)))
