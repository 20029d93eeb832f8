"""scikit-learn estimators that train a lightreg model: ``LightregClassifier`` and ``LightregRegressor``.

They fit through the same pieces as the CLI: a :class:`~lightreg.models.LightregModule` subclass
(:class:`~lightreg.models.LogisticRegression` or :class:`~lightreg.models.MLP`), a
:class:`~lightreg.callbacks.RegularizationCallback` and a Lightning ``Trainer`` set up for speed (CPU, no logger,
no checkpoints, no progress bar, no model summary). A linear model with a convex sparse penalty in ``mode="exact"``
(the default for ``"l1"``, ``"elastic_net"`` and ``"group_lasso"``) skips the Trainer: its optimum does not depend on
minibatch epochs, so ``fit`` runs the full-batch proximal solve (:class:`~lightreg.solvers.ProximalFinish`) on the
whole training set directly, from the intercept-only model. Small models train on one torch thread
(:func:`lightreg.solvers.threads.training_threads`). ``fit`` validates its parameters (scikit-learn keeps
``__init__`` free of logic, so ``set_params``/``clone`` work); a bad value raises ``ValueError`` naming it.

Units (docs/penalties.md, "Units and converters"): the data loss is the sample mean, the penalty ``λ·R(w)``. Hence
``C = 1/(n_samples·λ)`` for scikit-learn's ``LogisticRegression`` (L1, L2 and elastic net alike) and ``λ = 2α`` for
``Lasso``/``ElasticNet`` (their loss is half the mean squared error).
"""

from __future__ import annotations

import math
import warnings
from importlib.resources import files
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from lightreg.callbacks import regularizer
from lightreg.callbacks.exact_finish import UNSETTLED_FINISH, ExactFinish
from lightreg.cli.quiet import UNWATCHED_FIT, quiet_lightning
from lightreg.data.arrays import ArrayDataModule
from lightreg.models import MLP, LightregModule, LogisticRegression
from lightreg.penalties import PenaltyTerm, select_parameters
from lightreg.solvers import ProximalFinish
from lightreg.solvers.threads import training_threads

MODELS: dict[str, type[LightregModule]] = {"logistic": LogisticRegression, "linear": LogisticRegression, "mlp": MLP}
ESTIMATOR_PENALTIES = (None, "l1", "l2", "elastic_net", "group_lasso", "mcp", "scad")
OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
DIRECT_PENALTIES = ("l1", "elastic_net", "group_lasso")
"""Convex sparse penalties whose ``mode="exact"`` fit of a linear model is one full-batch solve (no Trainer)."""


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")


class _LightregEstimator(BaseEstimator):
    """Shared parameters and fitting of :class:`LightregClassifier` and :class:`LightregRegressor`.

    Args:
        penalty: ``"l1"`` (default), ``"l2"``, ``"elastic_net"``, ``"group_lasso"`` (input columns), the nonconvex
            ``"mcp"`` and ``"scad"`` (:mod:`lightreg.penalties.nonconvex`), or ``None``.
        lambda_: penalty strength λ >= 0 (the CLI's ``lambda``). Give ``lambda_`` or ``C``, not both.
        C: inverse strength as in scikit-learn, ``λ = 1/(n_samples·C)`` with ``n_samples`` of this ``fit``.
            Neither given: ``C = 1.0`` (scikit-learn's default).
        l1_ratio: elastic-net mixing ρ in [0, 1] (``penalty="elastic_net"`` only; default 0.5).
        gamma: concavity of ``"mcp"`` (> 1, default 3) and ``"scad"`` (> 2, default 3.0), skglm's ``gamma``.
        model: ``"logistic"``/``"linear"`` (one linear layer) or ``"mlp"``.
        hidden_sizes: widths of the MLP's hidden layers.
        max_epochs: passes over the training data.
        mode: ``"prox"``, ``"grad"`` or ``"exact"`` (:class:`~lightreg.callbacks.RegularizationCallback`);
            ``None`` = ``"exact"`` for a linear model with a sparse penalty (the full-batch FISTA finish: the convex
            optimum, as scikit-learn's solvers), else the callback's default.
        batch_size: samples per step (``None`` = full batch).
        optimizer: ``"adam"`` (default: its steps stay bounded on unscaled features, where SGD can diverge),
            ``"sgd"`` (momentum 0.9), ``"adamw"``, ``"adagrad"``, ``"rmsprop"`` (the CLI's configs).
        lr: learning rate; ``None`` = the optimizer config's default (Adam 0.01, SGD 0.1).
        random_state: seed of the initialization and the batch order. Default ``0``: every ``fit`` on the same data
            gives the same model. ``None`` (scikit-learn's meaning): a fresh random seed per ``fit``, so two fits
            differ; an int or a ``RandomState`` seeds it.
    """

    _task_default_model = "logistic"

    def __init__(
        self,
        penalty: str | None = "l1",
        lambda_: float | None = None,
        C: float | None = None,
        l1_ratio: float | None = None,
        gamma: float | None = None,
        model: str = "logistic",
        hidden_sizes: tuple[int, ...] = (64,),
        max_epochs: int = 20,
        mode: str | None = None,
        batch_size: int | None = 64,
        optimizer: str = "adam",
        lr: float | None = None,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.penalty = penalty
        self.lambda_ = lambda_
        self.C = C
        self.l1_ratio = l1_ratio
        self.gamma = gamma
        self.model = model
        self.hidden_sizes = hidden_sizes
        self.max_epochs = max_epochs
        self.mode = mode
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.random_state = random_state

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")  # ``lambda_`` ends with "_" but is a parameter, not a fitted attribute

    # -- parameters ----------------------------------------------------------------------------------------------
    def strength(self, n_samples: int) -> float:
        """λ for a training set of ``n_samples`` rows, from ``lambda_`` or ``C`` (``C = 1/(n_samples·λ)``)."""
        if self.penalty not in ESTIMATOR_PENALTIES:
            raise ValueError(f"penalty must be one of {ESTIMATOR_PENALTIES}, got {self.penalty!r}")
        if self.lambda_ is not None and self.C is not None:
            raise ValueError(
                f"give lambda_ or C, not both (got lambda_={self.lambda_!r}, C={self.C!r}); C = 1/(n_samples*lambda_)"
            )
        if self.penalty is None:
            if self.lambda_ not in (None, 0) or self.C is not None or self.l1_ratio is not None:
                raise ValueError(
                    f"penalty=None trains without regularization, but lambda_={self.lambda_!r}, C={self.C!r}, "
                    f"l1_ratio={self.l1_ratio!r} were given; set penalty= or drop them"
                )
            return 0.0
        for name, value in (("lambda_", self.lambda_), ("C", self.C)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.lambda_ is not None:
            if self.lambda_ < 0:
                raise ValueError(f"lambda_ must be >= 0, got {self.lambda_!r}: a penalty is added, never subtracted")
            return float(self.lambda_)
        C = 1.0 if self.C is None else self.C
        if C <= 0:
            raise ValueError(f"C must be > 0 (C = 1/(n_samples*lambda)), got {C!r}")
        return 1.0 / (n_samples * float(C))

    def _check_params(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _positive_int("max_epochs", self.max_epochs)
        _positive_int("batch_size", self.batch_size, allow_none=True)
        if self.lr is not None and (
            isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0
        ):
            raise ValueError(f"lr must be a number > 0 or None, got {self.lr!r}")
        if self.l1_ratio is not None and self.penalty != "elastic_net":
            raise ValueError(f"l1_ratio applies to penalty='elastic_net' only, got penalty={self.penalty!r}")
        if self.gamma is not None and self.penalty not in ("mcp", "scad"):
            raise ValueError(f"gamma applies to penalty='mcp' or 'scad' only, got penalty={self.penalty!r}")

    def _optimizer(self) -> Any:
        config = OmegaConf.load(files("lightreg.conf") / "optimizer" / f"{self.optimizer}.yaml")
        if self.lr is not None:
            config.lr = float(self.lr)
        return instantiate(config)

    def _callbacks(self, n_samples: int) -> list[Any]:
        lam = self.strength(n_samples)
        if self.penalty is None:
            return []
        linear = MODELS[self.model] is LogisticRegression
        mode = self.mode
        if mode is None and linear and self.penalty != "l2":
            mode = "exact"
        options = {"groups": "columns"} if self.penalty == "group_lasso" else {}
        with warnings.catch_warnings():  # lambda_=0 is a legitimate choice here (an unpenalized fit)
            warnings.filterwarnings("ignore", message=".*lambda is 0, so NO regularization")
            return [regularizer(self.penalty, lam, l1_ratio=self.l1_ratio, gamma=self.gamma, mode=mode, **options)]

    def _solves_directly(self, callbacks: list[Any]) -> bool:
        """A linear model under one convex sparse penalty in ``mode="exact"``: the optimum is one full-batch solve."""
        return (
            MODELS[self.model] is LogisticRegression
            and self.penalty in DIRECT_PENALTIES
            and len(callbacks) == 1
            and callbacks[0].mode == "exact"
        )

    # -- fitting -------------------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, y: np.ndarray, task: str, num_classes: int | None, y_dtype: torch.dtype) -> None:
        self._check_params()
        if X.shape[0] < 2:
            raise ValueError(f"fitting needs at least 2 samples, got n_samples = {X.shape[0]}")
        callbacks = self._callbacks(X.shape[0])
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        x_t = torch.tensor(X, dtype=torch.float32)  # a copy: X may be a read-only memmap
        y_t = torch.tensor(y, dtype=y_dtype)
        kwargs: dict[str, Any] = {"hidden_sizes": list(self.hidden_sizes)} if self.model == "mlp" else {}
        direct = self._solves_directly(callbacks)
        with quiet_lightning(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = MODELS[self.model](
                input_shape=(X.shape[1],),
                num_classes=num_classes,
                task=task,
                optimizer=None if direct else self._optimizer(),
                print_epochs=False,
                **kwargs,
            )
            with training_threads("auto", module, on_cpu=True):
                if direct:
                    self.n_iter_ = _solve_full_batch(module, x_t, y_t, callbacks[0])
                else:
                    data = ArrayDataModule(x_t, y_t, batch_size=self.batch_size, seed=seed)
                    trainer = L.Trainer(
                        max_epochs=self.max_epochs,
                        accelerator="cpu",
                        devices=1,
                        limit_val_batches=0,
                        callbacks=callbacks,
                        **UNWATCHED_FIT,
                    )
                    with warnings.catch_warnings():  # said below as scikit-learn's ConvergenceWarning
                        warnings.filterwarnings("ignore", message=UNSETTLED_FINISH)
                        trainer.fit(module, datamodule=data)
                    finisher = ExactFinish.of(trainer)
                    if finisher is not None and finisher.report is not None and finisher.owner is not None:
                        _warn_unconverged(finisher.report, finisher.owner.finish, stacklevel=3)
                    module.trainer = None  # no Trainer (hooks, loaders) inside a pickled estimator
                    self.n_iter_ = trainer.current_epoch
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            raise ValueError(
                f"training diverged (non-finite weights) with optimizer={self.optimizer!r}, lr={self.lr!r}: "
                "scale the features (sklearn.preprocessing.StandardScaler) or lower lr"
            )
        self.module_ = module.eval()
        self.lambda_fitted_ = self.strength(X.shape[0])
        if MODELS[self.model] is LogisticRegression:
            self._set_coef(
                module.net.linear.weight.detach().numpy().copy(), module.net.linear.bias.detach().numpy().copy()
            )

    def _set_coef(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.coef_, self.intercept_ = weight.astype(np.float64), bias.astype(np.float64)

    @torch.no_grad()
    def _output(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.module_(torch.tensor(X, dtype=torch.float32)).numpy().astype(np.float64)


def _solve_full_batch(module: LightregModule, x: torch.Tensor, y: torch.Tensor, callback: Any) -> int:
    """Minimize ``data_loss + λR`` of a linear ``module`` on all of ``(x, y)`` by the callback's full-batch proximal
    solve, started from the intercept-only model (zero weights, ``null_output`` bias: the optimum for a large λ);
    returns the solver's iterations. The penalty covers the parameters the callback would select (the weights)."""
    linear = module.net.linear
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(module.null_output(y).to(linear.bias.dtype))
    term = PenaltyTerm(
        callback.penalty, callback.strength, dict(select_parameters(module, callback.include, callback.exclude))
    )
    report = callback.finish.run(module, [(x, y)], [term])
    _warn_unconverged(report, callback.finish, stacklevel=4)
    return int(report["iterations"])


def _warn_unconverged(report: dict[str, float], finish: ProximalFinish, stacklevel: int) -> None:
    """scikit-learn's ``ConvergenceWarning`` when the full-batch solve (``report`` of ``finish.run``) hit its cap;
    ``stacklevel`` counts from the caller, so that the warning points at the user's ``fit`` line."""
    if not report["converged"]:
        warnings.warn(
            f"the full-batch solve stopped at max_iter={finish.max_iter} with KKT residual {report['kkt']:.3g} "
            f"above tol={finish.tol:g}: the coefficients may not be the optimum's; scale the features "
            "(sklearn.preprocessing.StandardScaler)",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )


class LightregClassifier(ClassifierMixin, _LightregEstimator):
    """Penalized logistic regression (``model="logistic"``) or MLP classifier trained by lightreg.

    Binary labels train one logit with BCE, more classes a softmax with cross entropy (scikit-learn's
    ``LogisticRegression`` multinomial loss). Fitted: ``classes_``, ``module_`` (the LightregModule),
    ``coef_``/``intercept_`` (linear model: shapes ``(1, d)``/``(1,)`` binary, ``(k, d)``/``(k,)`` otherwise),
    ``lambda_fitted_`` (the λ used), ``n_iter_`` (epochs; the solver's iterations for a linear model in mode exact). See :class:`_LightregEstimator` for the parameters.
    """

    def fit(self, X: Any, y: Any) -> LightregClassifier:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"a classifier needs samples of at least 2 classes in the data, got 1 class: {self.classes_[0]!r}"
            )
        binary = len(self.classes_) == 2
        self._fit(
            X,
            encoded,
            "binary" if binary else "multiclass",
            len(self.classes_),
            torch.float32 if binary else torch.long,
        )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: ``(n,)`` for two classes (positive = ``classes_[1]``), ``(n, k)`` otherwise."""
        out = self._output(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1.0 - p, p])
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]


class LightregRegressor(RegressorMixin, _LightregEstimator):
    """Penalized linear regression (``model="linear"``: MSE + λR, the lasso with ``λ = 2α``) or MLP regressor.

    Fitted: ``module_``, ``coef_`` ``(d,)`` and ``intercept_`` (float) for the linear model, ``lambda_fitted_``,
    ``n_iter_``. Targets are used as given (scale them for the MLP). See :class:`_LightregEstimator`.
    """

    def __init__(
        self,
        penalty: str | None = "l1",
        lambda_: float | None = None,
        C: float | None = None,
        l1_ratio: float | None = None,
        gamma: float | None = None,
        model: str = "linear",
        hidden_sizes: tuple[int, ...] = (64,),
        max_epochs: int = 20,
        mode: str | None = None,
        batch_size: int | None = 64,
        optimizer: str = "adam",
        lr: float | None = None,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        super().__init__(
            penalty=penalty,
            lambda_=lambda_,
            C=C,
            l1_ratio=l1_ratio,
            gamma=gamma,
            model=model,
            hidden_sizes=hidden_sizes,
            max_epochs=max_epochs,
            mode=mode,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            random_state=random_state,
        )

    def fit(self, X: Any, y: Any) -> LightregRegressor:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        self._fit(X, y, "regression", None, torch.float32)
        return self

    def _set_coef(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.coef_, self.intercept_ = weight[0].astype(np.float64), float(bias[0])

    def predict(self, X: Any) -> np.ndarray:
        return self._output(X)[:, 0]


__all__ = ["LightregClassifier", "LightregRegressor"]
