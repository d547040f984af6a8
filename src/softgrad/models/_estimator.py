"""SoftmaxClassifier: the blog post's network — D inputs, one fully connected layer, K softmax outputs.

Validates parameters and data, builds the objective (:mod:`~softgrad.models._objective`),
runs a solver (:mod:`~softgrad.models._solvers`; ``"auto"`` picks by shape), stores
scikit-learn's fitted attributes. Dask input goes to :mod:`softgrad.models._dask`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from softgrad import kernels
from softgrad._delegation import log_softmax, softmax
from softgrad.models import _dask
from softgrad.models._dask import is_dask
from softgrad.models._io import load_model, save_model
from softgrad.models._objective import MultinomialObjective, blas_threads, lbfgs_memory
from softgrad.models._solvers import (
    Result,
    StochasticState,
    choose_solver,
    lbfgs,
    newton_cg,
    newton_cholesky,
    stochastic,
    stochastic_epoch,
)
from softgrad.models._validation import PARAMETER_CONSTRAINTS, validate_params

__all__ = ["SoftmaxClassifier"]

Solver = Literal["auto", "lbfgs", "newton-cg", "newton-cholesky", "sgd", "adam"]
Callback = Callable[[int, float], Any]
FloatArray = NDArray[np.floating[Any]]

PREDICT_BLOCK = 1 << 22
"""Logits :meth:`SoftmaxClassifier.predict` holds at once (32 MiB of float64): it takes
the rows a block at a time, so labels for many rows need no (n_samples, n_classes) array."""


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    r"""Multinomial logistic regression — the post's one-layer softmax network — trained by softgrad.

    The network maps D inputs through one fully connected layer to K softmax
    outputs, :math:`p(y \mid x) = \mathrm{softmax}(W x + b)`, and minimises the
    same objective as :class:`sklearn.linear_model.LogisticRegression`
    (multinomial, L2 penalty ``1/C``, unpenalised intercept, sample weights),
    so converged ``lbfgs``, ``newton-cg`` and ``newton-cholesky`` fits reach the
    same optimum.

    Parameters
    ----------
    C : float, default 1.0
        Inverse L2 regularisation strength (larger: weaker penalty);
        ``np.inf`` fits without a penalty, as in scikit-learn.
    fit_intercept : bool, default True
        Learn the bias ``b`` (never penalised).
    solver : {"auto", "lbfgs", "newton-cg", "newton-cholesky", "sgd", "adam"}, default "auto"
        ``auto``: ``newton-cg`` from 32,768 rows and 64 rows per parameter
        (its Hessian on row subsamples drawn from ``random_state``, or from a
        seed of the data's shape when it is None: refits agree), else
        ``newton-cholesky`` for models of at most 256 parameters
        (``n_classes * (n_features + 1)``), else ``lbfgs`` (the rule is :func:`softgrad.models._solvers.choose_solver`;
        the choice is kept in ``solver_``).
        ``lbfgs``: limited-memory BFGS fed the fused loss and gradient.
        ``newton-cg``: Newton steps solved by conjugate gradients on the
        closed-form Hessian-vector product, with a backtracking line search.
        ``newton-cholesky``: Newton steps on the whole closed-form Hessian
        :math:`\sum_i \tilde x_i \tilde x_i^\top \otimes (\mathrm{diag}(S_i) - S_i S_i^\top) + I/C`,
        factored by Cholesky (few parameters, many rows).
        ``sgd`` (momentum 0.9) and ``adam``: mini-batch epochs.
    max_iter : int, default 1000
        Iterations (``lbfgs``, ``newton-cg``, ``newton-cholesky``) or epochs
        (``sgd``, ``adam``).
        ``0`` returns the initial state (zeros, or the previous coefficients
        with ``warm_start``) and its objective in ``loss_curve_``, with a
        ``ConvergenceWarning`` unless it is already optimal, as scikit-learn does.
    tol : float, default 1e-4
        The exact solvers stop when the largest gradient entry is at most
        ``tol``; ``sgd``/``adam`` when the epoch loss has not improved by
        ``tol`` for 10 epochs.
    batch_size : int, default 200
        Mini-batch rows for ``sgd``/``adam`` (clipped to the number of samples).
    learning_rate : float, default 0.01
        Step size for ``sgd``/``adam``.
    random_state : int, numpy Generator or None, default None
        Seeds the mini-batch shuffling and newton-cg's Hessian subsamples.
    warm_start : bool, default False
        Start from the previous fit's coefficients.
    verbose : int, default 0
        Print one line per iteration when positive.
    callback : callable or None, default None
        Called as ``callback(iteration, objective)`` after each iteration
        or epoch (the CLI's progress bar uses it).

    Attributes
    ----------
    coef_ : ndarray, shape (n_classes, n_features)
        The weights :math:`W` (one row per class; two rows for two classes).
    intercept_ : ndarray, shape (n_classes,)
        The biases :math:`b`, centred to sum to zero (the loss is invariant
        to a common shift).
    classes_ : ndarray, shape (n_classes,)
        The class labels, sorted.
    n_iter_ : int
        Iterations or epochs run by the last fit.
    solver_ : str
        The solver the last ``fit`` used (``solver``, or what ``auto`` chose).
    n_features_in_ : int
        Number of features seen in ``fit``.
    loss_curve_ : list of float
        The objective after each iteration (epoch for ``sgd``/``adam``).

    Notes
    -----
    .. math::

        \min_{W,b}\ \frac{1}{\sum_i s_i}\sum_i s_i\,\mathrm{CE}(W x_i + b,\ y_i)
        + \frac{\lVert W\rVert_F^2}{2\,C\sum_i s_i},
        \qquad \frac{\partial\,\mathrm{CE}}{\partial z} = S - e_y .

    The gradient and the Hessian-vector product come from
    :func:`softgrad.cross_entropy_and_grad` and :func:`softgrad.cross_entropy_hvp`
    (the post's Jacobian :math:`S_i(\delta_{ij} - S_j)`); no autodiff is used.

    Float32 input keeps float32 matrix products in every solver; ``lbfgs`` and
    ``newton-cg`` hold their own iterates in float64 (scipy's L-BFGS-B works
    in float64 only) and ``coef_`` is returned in the input's dtype.

    With two classes the model keeps two rows of weights; their penalty is
    half of the binomial one, so it matches ``LogisticRegression(C=2*C)``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from softgrad import SoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxClassifier(max_iter=500).fit(X, y)
    >>> clf.coef_.shape, clf.classes_
    ((3, 4), array([0, 1, 2]))
    >>> round(clf.score(X, y), 2)
    0.97
    >>> clf.predict_proba(X[:1]).round(3)
    array([[0.982, 0.018, 0.   ]])
    """

    # the allowed values of every parameter, checked in one place (models/_validation.py)
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        solver: Solver = "auto",
        max_iter: int = 1000,
        tol: float = 1e-4,
        batch_size: int = 200,
        learning_rate: float = 0.01,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        callback: Callback | None = None,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        """Check every parameter against ``_parameter_constraints`` (scikit-learn's hook)."""
        validate_params(self.get_params(deep=False), type(self)._parameter_constraints)

    def _validate_fit(
        self, X: Any, y: Any, sample_weight: Any, reset: bool
    ) -> tuple[FloatArray, Any, FloatArray | None]:
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=False,
            dtype=[np.float64, np.float32],
            order="C",
            ensure_all_finite=True,
            y_numeric=False,
        )
        check_classification_targets(y)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=X.dtype)
            if not np.all(np.isfinite(sw)) or np.any(sw < 0):
                msg = "sample_weight must be finite and non-negative"
                raise ValueError(msg)
            if not np.any(sw > 0):
                msg = "sample_weight must have at least one positive entry"
                raise ValueError(msg)
        return X, y, sw

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftmaxClassifier:
        """Fit the weights and biases to ``(X, y)``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Training data, finite.
        y : array-like, shape (n_samples,)
            Class labels (any hashable values; at least two classes).
        sample_weight : array-like, shape (n_samples,), optional
            Non-negative per-sample weights.

        Returns
        -------
        SoftmaxClassifier
            ``self``, fitted.
        """
        if is_dask(X):  # Dask array or DataFrame: fitted block by block on the cluster
            return _dask.fit(self, X, y, sample_weight)  # type: ignore[no-any-return]
        self._validate_params()
        warm = self.warm_start and hasattr(self, "coef_")
        X, y, sw = self._validate_fit(X, y, sample_weight, reset=True)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            msg = (
                f"{type(self).__name__} needs samples of at least 2 classes, but the data "
                f"contain only one class: {classes[0]!r}"
            )
            raise ValueError(msg)
        k, d = len(classes), X.shape[1]
        if warm and (
            np.shape(getattr(self, "coef_", ())) != (k, d)
            or not np.array_equal(getattr(self, "classes_", ()), classes)
        ):
            warm = False
        self.classes_ = classes
        if warm:
            W0, b0 = np.asarray(self.coef_), np.asarray(self.intercept_)
        else:
            W0, b0 = np.zeros((k, d)), np.zeros(k)
        obj = self._objective(X, y_idx.astype(np.intp, copy=False).ravel(), sw)
        self.solver_ = (
            choose_solver(X.shape[0], obj.n_params) if self.solver == "auto" else self.solver
        )
        callback = self._iteration_callback()
        if self.solver_ in ("sgd", "adam"):
            w0 = obj.pack(W0, b0, dtype=X.dtype)
            state, rng = self._stochastic_state(w0, reset=True)
            res = stochastic(
                obj,
                w0,
                state,
                **self._stochastic_options(X.shape[0]),
                max_iter=int(self.max_iter),
                tol=float(self.tol),
                rng=rng,
                callback=callback,
            )
        else:
            res = self._fit_exact(obj, obj.pack(W0, b0), callback)
        if not res.converged:
            self._warn_not_converged(res)
        self._set_coefs(*obj.unpack(res.w), X.dtype)
        self.n_iter_ = res.n_iter
        self.loss_curve_ = res.loss_curve
        return self

    def _objective(
        self, X: FloatArray, y_idx: NDArray[np.intp], sw: FloatArray | None
    ) -> MultinomialObjective:
        return MultinomialObjective(
            X,
            y_idx,
            n_classes=len(self.classes_),
            C=float(self.C),
            fit_intercept=bool(self.fit_intercept),
            sample_weight=sw,
        )

    def _fit_exact(
        self, obj: MultinomialObjective, w0: FloatArray, callback: Callback | None
    ) -> Result:
        """``lbfgs``, ``newton-cg`` or ``newton-cholesky`` from ``w0``; records ``fit_stats_``."""
        options: dict[str, Any] = {"max_iter": int(self.max_iter), "tol": float(self.tol)}
        options["callback"] = callback
        with blas_threads(obj):
            if self.solver_ == "lbfgs":
                res = lbfgs(obj, w0, **options, memory=lbfgs_memory(obj))
            elif self.solver_ == "newton-cholesky":
                res = newton_cholesky(obj, w0, **options)
            else:
                rs = self.random_state  # None: newton_cg seeds by the shape (reproducible)
                rng = None if rs is None else np.random.default_rng(rs)
                max_cg = max(20, 20 * obj.n_classes)
                res = newton_cg(obj, w0, **options, max_cg=max_cg, rng=rng)
        self.fit_stats_ = {
            "loss_evals": obj.n_evals,
            "gradients": obj.n_grads,
            "hvp_rows": obj.hvp_rows,
            "hessians": obj.n_hessians,
            # products with X, in units of one pass over all rows (a whole Hessian: one
            # product for its logits; its Gram products are K times wider and not counted)
            "data_passes": obj.n_evals
            + obj.n_grads
            + 2 * obj.hvp_rows / obj.n_samples
            + obj.n_hessians,
        }
        return res

    def _stochastic_state(
        self, w0: FloatArray, *, reset: bool
    ) -> tuple[StochasticState, np.random.Generator]:
        """The momentum/Adam state and the shuffling generator.

        ``fit`` (``reset``) starts both afresh; ``partial_fit`` carries them
        over between calls.
        """
        state = None if reset else getattr(self, "_state", None)
        if state is None or state.m.shape != w0.shape:
            state = StochasticState(w0.size, w0.dtype)
        self._state = state
        if reset:
            return state, np.random.default_rng(self.random_state)
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.random_state)
        return state, self._rng

    def _stochastic_options(self, n_samples: int) -> dict[str, Any]:
        """The update rule and its settings (``partial_fit`` uses Adam's unless ``sgd``)."""
        return {
            "rule": "sgd" if self.solver == "sgd" else "adam",
            "learning_rate": float(self.learning_rate),
            "batch_size": min(int(self.batch_size), n_samples),
        }

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SoftmaxClassifier:
        """One epoch of mini-batch updates on ``(X, y)``.

        ``sgd`` uses its momentum rule and every other solver Adam's (L-BFGS
        and Newton-CG are not incremental). The first call needs ``classes``,
        every class that will ever appear.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
        classes : array-like, shape (n_classes,), optional
            Required on the first call, ignored afterwards (must match).
        sample_weight : array-like, shape (n_samples,), optional

        Returns
        -------
        SoftmaxClassifier
            ``self``.
        """
        self._validate_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            msg = "classes must be given on the first call to partial_fit"
            raise ValueError(msg)
        X, y, sw = self._validate_fit(X, y, sample_weight, reset=first)
        if first:
            all_classes = np.unique(np.asarray(classes))
            if len(all_classes) < 2:
                msg = f"{type(self).__name__} needs at least 2 classes, got {all_classes!r}"
                raise ValueError(msg)
            self.classes_ = all_classes
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            msg = (
                f"classes={classes!r} differs from the classes of the first call {self.classes_!r}"
            )
            raise ValueError(msg)
        y = np.asarray(y).ravel()
        y_idx = np.searchsorted(self.classes_, y)
        y_idx = np.clip(y_idx, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[y_idx], y):
            unknown = sorted(set(y.tolist()) - set(self.classes_.tolist()), key=str)
            msg = f"y holds labels {unknown!r} not in classes {self.classes_!r}"
            raise ValueError(msg)
        k, d = len(self.classes_), X.shape[1]
        if first:
            W, b = np.zeros((k, d)), np.zeros(k)
            self.n_iter_, self.loss_curve_ = 0, []
        else:
            W, b = self.coef_, self.intercept_
        obj = self._objective(X, y_idx.astype(np.intp), sw)
        w = obj.pack(W, b, dtype=X.dtype)
        state, rng = self._stochastic_state(w, reset=False)
        loss = stochastic_epoch(obj, w, state, **self._stochastic_options(X.shape[0]), rng=rng)
        self._set_coefs(*obj.unpack(w), X.dtype)
        self.n_iter_ += 1
        self.loss_curve_.append(loss)
        return self

    def _warn_not_converged(self, res: Result) -> None:
        max_iter = int(self.max_iter)
        if self.solver_ in ("sgd", "adam"):
            hint = (
                f"the loss was still improving by more than tol after max_iter={max_iter} "
                "epochs; increase max_iter, raise tol, or tune learning_rate"
            )
        else:
            hint = (
                f"{self.solver_} did not reach tol within max_iter={max_iter} iterations"
                f"{f' ({res.message})' if res.message else ''}; increase max_iter, raise tol, "
                "or standardise the features (sklearn.preprocessing.StandardScaler)"
            )
        warnings.warn(f"SoftmaxClassifier: {hint}", ConvergenceWarning, stacklevel=3)

    def _iteration_callback(self) -> Callback | None:
        user = self.callback
        if not self.verbose and user is None:
            return None

        def callback(iteration: int, value: float) -> None:
            if self.verbose:
                print(f"{self.solver_} iteration {iteration}: objective {value:.6g}")
            if user is not None:
                user(iteration, value)

        return callback

    def _set_coefs(self, W: FloatArray, b: FloatArray, dtype: Any) -> None:
        b = np.asarray(b, dtype=np.float64)
        if self.fit_intercept:
            b = b - b.mean()  # the loss is invariant to a common shift; pick the centred one
        self.coef_ = np.ascontiguousarray(W, dtype=dtype)
        self.intercept_ = b.astype(dtype)

    # ------------------------------------------------------------------ prediction

    def _features(self, X: Any) -> FloatArray:
        """``X`` checked against the fit (features, dtype), as scikit-learn's estimators do."""
        check_is_fitted(self)
        valid: FloatArray = validate_data(
            self, X, reset=False, accept_sparse=False, dtype=[np.float64, np.float32]
        )
        return valid

    def _logits_of(self, X: FloatArray) -> FloatArray:
        """:math:`X W^\top + b` for checked features, in their dtype."""
        z: FloatArray = X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_.astype(
            X.dtype, copy=False
        )
        return z

    def _logits(self, X: Any) -> FloatArray:
        return self._logits_of(self._features(X))

    def decision_function(self, X: Any) -> FloatArray:
        """The logits :math:`X W^\\top + b`, shape (n_samples, n_classes).

        With two classes, the logit difference :math:`z_1 - z_0` (shape (n_samples,)),
        positive where the second class is predicted, as scikit-learn expects.
        """
        if is_dask(X):  # lazy: a Dask array chunked like X's rows
            return _dask.predict_method(self, "decision_function", X)  # type: ignore[no-any-return]
        z = self._logits(X)
        if len(self.classes_) == 2:
            d: FloatArray = z[:, 1] - z[:, 0]
            return d
        return z

    def _link(self, X: Any, name: str, link: Any) -> FloatArray:
        """``link(logits)`` (softmax or log_softmax); lazy for Dask input (chunked like X's rows).

        The compiled kernels serve only if this process has loaded them
        already: a prediction never waits for numba.
        """
        if is_dask(X):
            return _dask.predict_method(self, name, X)  # type: ignore[no-any-return]
        z = self._logits(X)
        with kernels.policy(enabled=kernels.loaded()):
            out: FloatArray = link(z, axis=-1)
        return out

    def predict_proba(self, X: Any) -> FloatArray:
        """The softmax outputs :math:`S = \\mathrm{softmax}(X W^\\top + b)`, rows summing to 1."""
        return self._link(X, "predict_proba", softmax)

    def predict_log_proba(self, X: Any) -> FloatArray:
        """``log_softmax`` of the logits, accurate for tiny probabilities."""
        return self._link(X, "predict_log_proba", log_softmax)

    def predict(self, X: Any) -> NDArray[Any]:
        """The class with the largest logit for each row.

        Rows are taken :data:`PREDICT_BLOCK` logits at a time (each row's label
        depends on that row alone): predicting 10 million rows of 100 classes
        holds 32 MiB of logits, not 8 GB.
        """
        if is_dask(X):  # lazy: a Dask array chunked like X's rows
            return _dask.predict_method(self, "predict", X)  # type: ignore[no-any-return]
        X = self._features(X)
        rows = max(1, PREDICT_BLOCK // len(self.classes_))
        best = [np.argmax(self._logits_of(X[i : i + rows]), axis=1) for i in range(0, len(X), rows)]
        out: NDArray[Any] = self.classes_[np.concatenate(best)]
        return out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``(X, y)`` (weighted by ``sample_weight``), as scikit-learn's."""
        if is_dask(X):  # one pass on the cluster
            return _dask.score(self, X, y, sample_weight)
        return float(super().score(X, y, sample_weight))

    # ------------------------------------------------------------------ persistence

    def save(
        self, path: str | os.PathLike[str], *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Write the fitted model to ``path`` as ``.npz``, atomically, with an integrity checksum.

        The file holds only plain arrays (no pickles): the weights, the class
        labels (as a str, int or float array), the parameters as JSON, a format
        version and a sha256 checksum of all of them. The checksum detects a
        damaged file; it is not a signature (anyone can recompute it). The file
        is written to a new temporary file in the same folder and renamed into
        place, so a reader never sees half a file.

        Parameters
        ----------
        path : path-like
            Destination file (conventionally ending in ``.npz``); not a folder.
        metadata : mapping of str to str, optional
            Extra strings stored with the model (the CLI stores the feature and
            target column names); read back as ``metadata_`` by :meth:`load`.

        Raises
        ------
        ValueError
            If the class labels cannot be stored as a str, int or float array.
        IsADirectoryError
            If ``path`` is a folder (the message names ``path``).
        OSError
            If the file cannot be written (the message names ``path``).
        """
        check_is_fitted(self)
        save_model(self, path, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SoftmaxClassifier:
        """Read a model written by :meth:`save`; never executes code from the file.

        Parameters
        ----------
        path : path-like
            A file written by :meth:`save`.

        Returns
        -------
        SoftmaxClassifier
            Fitted, with the saved parameters and ``metadata_`` (a dict of str).

        Raises
        ------
        ModelFileError
            If the file is missing, truncated, corrupt (its sha256 integrity
            checksum does not match), of another format, of a newer format
            version, or holds invalid parameters.
        """
        model: SoftmaxClassifier = load_model(cls, path)
        return model
