"""Seeded synthetic classification where only the first ``n_informative`` columns carry signal."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification

from lightreg.data.tabular import TabularData, TabularDataModule
from lightreg.errors import UserError

RULES = ("linear", "clusters", "ring")


def make_synthetic(
    n_samples: int, n_features: int, n_informative: int, rule: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features ~ N(0, 1); labels depend on columns ``0..n_informative-1`` only.

    ``linear``: ``x0 − 0.7·x1 (+ 0.5·x_k for further informative k) + N(0, 0.3²) > 0``;
    ``clusters``: :func:`sklearn.datasets.make_classification` with ``shuffle=False`` (informative first);
    ``ring``: ``Σ_k x_k² < median`` over the informative columns (needs a non-linear model).
    """
    rng = np.random.default_rng(seed)
    if rule == "clusters":
        x, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_informative,
            n_redundant=0,
            n_repeated=0,
            n_classes=2,
            shuffle=False,
            random_state=seed,
        )
        return x, y.astype(np.int64)
    x = rng.standard_normal((n_samples, n_features))
    informative = x[:, :n_informative]
    if rule == "linear":
        coef = np.concatenate([[1.0, -0.7][:n_informative], np.full(max(n_informative - 2, 0), 0.5)])
        score = informative @ coef + 0.3 * rng.standard_normal(n_samples)
        y = score > 0
    else:
        radius2 = (informative**2).sum(axis=1)
        y = radius2 < np.median(radius2)
    return x, y.astype(np.int64)


class SyntheticDataModule(TabularDataModule):
    """The seed-question-001 setup by default: 1000 samples (800 train / 200 val), 10 features, 2 informative,
    2 classes. Columns are named ``x0 … x{d-1}``; the informative ones are ``x0 … x{k-1}``."""

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 10,
        n_informative: int = 2,
        rule: str = "linear",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if rule not in RULES:
            raise UserError(f"data.rule must be one of {RULES}, got {rule!r}")
        if not 1 <= n_informative <= n_features:
            raise UserError(f"data.n_informative must be in [1, n_features={n_features}], got {n_informative}")
        if n_samples < 10:
            raise UserError(f"data.n_samples must be at least 10, got {n_samples}")
        self.n_samples, self.n_features, self.n_informative, self.rule = n_samples, n_features, n_informative, rule

    def load_train(self) -> TabularData:
        x, y = make_synthetic(self.n_samples, self.n_features, self.n_informative, self.rule, self.seed)
        names = [f"x{i}" for i in range(self.n_features)]
        return TabularData(x=x, y=y, feature_names=names, task="binary")
