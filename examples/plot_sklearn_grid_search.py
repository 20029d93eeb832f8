"""
scikit-learn estimators in a Pipeline, λ chosen by GridSearchCV
===============================================================

:class:`lightreg.sklearn.LightregClassifier` and :class:`~lightreg.sklearn.LightregRegressor` train a lightreg
model behind scikit-learn's estimator interface, so they work inside a ``Pipeline`` (here after a
``StandardScaler``, fitted on each training fold only) and under ``GridSearchCV``. The strength is ``lambda_``
(lightreg's unit: data loss as the sample mean plus ``λ·Σ|w|``) or scikit-learn's ``C = 1/(n_samples·λ)``. A linear
model with L1 ends each fit with a full-batch proximal finish, so its zeros are those of the optimum.
"""

import logging
import warnings

import lightning  # noqa: F401  (imported first, so that its log level can be lowered below)
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lightreg.sklearn import LightregClassifier

torch.set_num_threads(1)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*(LeafSpec|logging interval|many workers).*")

x, y = load_breast_cancer(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

pipeline = make_pipeline(
    StandardScaler(), LightregClassifier(penalty="l1", max_epochs=10, batch_size=None, random_state=0)
)
lambdas = [0.001, 0.003, 0.01, 0.03, 0.1]
search = GridSearchCV(
    pipeline,
    {"lightregclassifier__lambda_": lambdas},
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
    scoring="neg_log_loss",
)
search.fit(x_train, y_train)
best = search.best_estimator_[-1]
print(
    f"best λ {search.best_params_['lightregclassifier__lambda_']}: {int((best.coef_ != 0).sum())} of 30 features kept"
)
print(f"test accuracy of the refitted pipeline: {search.best_estimator_.score(x_test, y_test):.3f}")

mean = -search.cv_results_["mean_test_score"]
std = search.cv_results_["std_test_score"]
fig, (ax, ax_coef) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
ax.errorbar(lambdas, mean, yerr=std, marker="o", capsize=3)
ax.axvline(search.best_params_["lightregclassifier__lambda_"], color="tab:red", ls=":", label="chosen λ")
ax.set(xscale="log", xlabel="lambda_", ylabel="log loss (3-fold CV, mean ± std)", title="GridSearchCV over λ")
ax.legend()
names = load_breast_cancer().feature_names
order = np.argsort(-np.abs(best.coef_[0]))
ax_coef.bar(range(30), best.coef_[0][order])
ax_coef.set_xticks(range(30), names[order], rotation=90, fontsize=7)
ax_coef.set(
    ylabel="coefficient (standardized)",
    title=f"the refitted model: {int((best.coef_ != 0).sum())} of 30 coefficients non-zero",
)
plt.show()
