"""The scikit-learn estimators: parameters, scikit-learn's own estimator checks, GridSearchCV, and agreement with
scikit-learn's L1 logistic regression on breast_cancer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from lightreg.sklearn import LightregClassifier, LightregRegressor

# Checks that cannot hold, with the reason (also listed in docs/choosing-lambda.md); empty: every check of scikit-learn
# 1.9 passes. (check_array_api_input and check_*_data_not_an_array are skipped by scikit-learn itself when
# SCIPY_ARRAY_API is unset or pandas is missing.)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(x), y


def _l1_logistic_objective(x: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray, lam: float) -> float:
    z = x @ coef.ravel() + intercept[0]
    return float(np.mean(np.logaddexp(0, z) - y * z) + lam * np.abs(coef).sum())


# -- parameters ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lambda_": 0.01, "C": 1.0}, "give lambda_ or C, not both"),
        ({"lambda_": -1.0}, "lambda_ must be >= 0"),
        ({"C": 0.0}, "C must be > 0"),
        ({"penalty": None, "lambda_": 0.1}, "penalty=None trains without regularization"),
        ({"penalty": "l3"}, "penalty must be one of"),
        ({"model": "cnn"}, "model must be one of"),
        ({"l1_ratio": 0.5}, "l1_ratio applies to penalty='elastic_net' only"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
    ],
)
def test_bad_parameters_raise_at_fit(params: dict, match: str) -> None:
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    estimator = LightregClassifier(**params)  # scikit-learn's rule: no validation in __init__
    assert estimator.get_params()["lambda_"] == params.get("lambda_")
    with pytest.raises(ValueError, match=match):
        estimator.fit(x, y)


@pytest.mark.parametrize(
    ("params", "n", "expected"), [({"C": 2.0}, 100, 1 / 200), ({"lambda_": 0.3}, 100, 0.3), ({}, 50, 1 / 50)]
)
def test_strength_from_lambda_or_c(params: dict, n: int, expected: float) -> None:
    assert LightregClassifier(**params).strength(n) == pytest.approx(expected)


@pytest.mark.slow  # two fits
def test_classifier_fits_predicts_and_is_sparse() -> None:
    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    clf = LightregClassifier(lambda_=0.05, max_epochs=3, random_state=0).fit(x, y + 10)
    assert list(clf.classes_) == [10, 11, 12]
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    assert (clf.coef_ == 0).any(), "L1 in exact mode leaves exact zeros"
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(x, y + 10) > 0.8
    again = clone(clf).fit(x, y + 10)
    np.testing.assert_array_equal(again.coef_, clf.coef_)  # random_state makes fits repeatable


@pytest.mark.slow  # two fits
def test_regressor_linear_and_mlp() -> None:
    x, y = load_diabetes(return_X_y=True)
    x, y = StandardScaler().fit_transform(x), (y - y.mean()) / y.std()
    lasso = LightregRegressor(lambda_=0.05, max_epochs=3, random_state=0).fit(x, y)
    assert lasso.coef_.shape == (10,) and isinstance(lasso.intercept_, float)
    assert 0 < np.count_nonzero(lasso.coef_) < 10 and lasso.score(x, y) > 0.4
    mlp = LightregRegressor(model="mlp", hidden_sizes=(8,), lambda_=1e-3, max_epochs=5, random_state=0).fit(x, y)
    assert not hasattr(mlp, "coef_") and mlp.predict(x).shape == (len(y),)


# -- scikit-learn's own checks -------------------------------------------------------------------------------------
@pytest.mark.slow  # ~100 small fits through the Lightning Trainer (≈ 40 s + 10 s on 2 busy cores)
@pytest.mark.parametrize(
    "estimator",
    [LightregClassifier(max_epochs=5, random_state=0), LightregRegressor(max_epochs=5, random_state=0)],
    ids=type,
)
def test_check_estimator(estimator) -> None:
    results = check_estimator(estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None)
    failed = {r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"}
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) >= 45


@pytest.mark.slow  # 3 folds x 3 values
def test_grid_search_over_lambda(breast_cancer) -> None:
    x, y = breast_cancer
    search = GridSearchCV(LightregClassifier(max_epochs=2, random_state=0), {"lambda_": [1.0, 0.01, 1e-4]}, cv=3).fit(
        x, y
    )
    assert search.best_params_["lambda_"] != 1.0  # λ = 1 zeroes every weight: chance level
    scores = dict(zip(search.cv_results_["param_lambda_"], search.cv_results_["mean_test_score"]))
    assert scores[1.0] < 0.7 < scores[0.01]
    assert np.count_nonzero(search.best_estimator_.coef_) > 0


@pytest.mark.slow  # three fits with the full-batch finish
@pytest.mark.parametrize("lam", [0.1, 0.03, 0.01])
def test_matches_sklearn_l1_logistic_on_breast_cancer(breast_cancer, lam: float) -> None:
    x, y = breast_cancer
    n = len(y)
    reference = LogisticRegression(
        l1_ratio=1.0, C=1 / (n * lam), solver="liblinear", tol=1e-10, max_iter=100_000, intercept_scaling=1e4
    ).fit(x, y)  # a large intercept_scaling: liblinear penalizes the intercept as a feature
    ours = LightregClassifier(penalty="l1", C=1 / (n * lam), max_epochs=2, random_state=0).fit(x, y)
    assert ours.lambda_fitted_ == pytest.approx(lam)
    f_ref = _l1_logistic_objective(x, y, reference.coef_, reference.intercept_, lam)
    f_ours = _l1_logistic_objective(x, y, ours.coef_, ours.intercept_, lam)
    assert abs(f_ours - f_ref) <= 1e-3 * f_ref, (f_ours, f_ref)
    np.testing.assert_array_equal(ours.coef_ != 0, reference.coef_ != 0)


@pytest.mark.parametrize("penalty", ["l1", pytest.param("mcp", marks=pytest.mark.slow)])
def test_an_unconverged_direct_solve_warns_convergence(monkeypatch: pytest.MonkeyPatch, penalty: str) -> None:
    """The exact linear fit that stops at its iteration cap says so (scikit-learn's ConvergenceWarning, pointing at
    the caller's line), never silently: the convex direct solve and the nonconvex fit's finish inside a Trainer
    alike; the default cap converges on the same data."""
    from sklearn.exceptions import ConvergenceWarning

    from lightreg.solvers import ProximalFinish

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LightregClassifier(penalty=penalty, lambda_=0.01, max_epochs=2).fit(X, y)
    original = ProximalFinish.__init__

    def capped(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.max_iter = 2

    monkeypatch.setattr(ProximalFinish, "__init__", capped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LightregClassifier(penalty=penalty, lambda_=0.01, max_epochs=2).fit(X, y)
    said = [w for w in caught if "max_iter=2" in str(w.message)]
    assert len(said) == 1 and said[0].category is ConvergenceWarning, [str(w.message) for w in caught]
    assert said[0].filename == __file__ and "KKT residual" in str(said[0].message)
