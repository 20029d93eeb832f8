"""Real small datasets shipped inside scikit-learn: usable offline, the embedded defaults."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import datasets

from lightreg.data.tabular import TabularData, TabularDataModule
from lightreg.errors import UserError

_LOADERS: dict[str, tuple[Callable, str]] = {
    "digits": (datasets.load_digits, "multiclass"),
    "breast_cancer": (datasets.load_breast_cancer, "binary"),
    "wine": (datasets.load_wine, "multiclass"),
    "iris": (datasets.load_iris, "multiclass"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


class SklearnDataModule(TabularDataModule):
    """One of scikit-learn's bundled datasets: ``digits`` (1797×64, 10 classes), ``breast_cancer``
    (569×30, binary), ``wine`` (178×13, 3 classes), ``iris`` (150×4, 3 classes), ``diabetes`` (442×10,
    regression)."""

    def __init__(self, name: str = "digits", **kwargs) -> None:
        if name not in _LOADERS:
            raise UserError(f"unknown scikit-learn dataset {name!r}; available: {', '.join(_LOADERS)}")
        super().__init__(**kwargs)
        self.name = name

    def load_train(self) -> TabularData:
        loader, task = _LOADERS[self.name]
        bunch = loader()
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
        y = bunch.target.astype(np.float64 if task == "regression" else np.int64)
        return TabularData(x=bunch.data.astype(np.float64), y=y, feature_names=names, task=task)
