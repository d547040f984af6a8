r"""The blog post's network — D inputs, one fully connected layer, K softmax outputs — trainable.

Design notes
------------
The objective is scikit-learn ``LogisticRegression``'s multinomial one, to the
scaling, so that one estimator can be swapped for the other:

.. math::

    f(W, b) = \frac{1}{\sum_i s_i} \sum_i s_i\,\mathrm{CE}(W x_i + b, y_i)
              + \frac{\lVert W\rVert_F^2}{2\,C \sum_i s_i},

with sample weights :math:`s_i` (all 1 by default) and an unpenalised
intercept. Every derivative comes from softgrad's closed forms, none from an
autodiff library: with logits :math:`Z = X W^\top + b` and
:math:`G = \partial\,\mathrm{CE}/\partial Z = S - Y` (rows scaled by
:math:`s_i / \sum s`),

.. math::

    \nabla_W f = G^\top X + \lambda W, \qquad \nabla_b f = G^\top \mathbf 1,
    \qquad \lambda = \frac{1}{C \sum_i s_i},

and the Hessian applied to a direction :math:`(V, v_b)` is the logits-level
HVP (the post's Jacobian :math:`\mathrm{diag}(S) - S S^\top` applied to
:math:`U = X V^\top + v_b`, which is :func:`softgrad.cross_entropy_hvp`)
mapped back through :math:`X^\top`. Newton-CG therefore never forms a
Hessian, and each Hessian-vector product costs two passes over ``X``, like a
gradient.

Evaluations are organised around the one expensive step, the two skinny
matrix products with ``X``: an :class:`_Objective` caches the logits of the
last point, so a line-search trial costs one product (the loss needs only
:math:`Z`) and the gradient at the accepted point costs the second one.
Float32 data keeps its products in float32 (half the bytes to stream);
L-BFGS-B and the conjugate gradients keep their own vectors in float64.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from softgrad._agnostic._losses import cross_entropy_hvp

# the public functions: fused kernels for large NumPy inputs, the Array API code otherwise
from softgrad._delegation import cross_entropy_and_grad, log_softmax, softmax

__all__ = ["ModelFileError", "SoftmaxClassifier"]

Solver = Literal["lbfgs", "newton-cg", "sgd", "adam"]
_SOLVERS = ("lbfgs", "newton-cg", "sgd", "adam")
Callback = Callable[[int, float], Any]
FloatArray = NDArray[np.floating[Any]]

FORMAT_VERSION = 1
_FORMAT_NAME = "softgrad.SoftmaxClassifier"
_HESSIAN_ROWS = 8192  # newton-cg: rows of a subsampled Hessian on large data
_N_ITER_NO_CHANGE = 10  # stochastic solvers: epochs without a tol improvement before stopping
_MOMENTUM = 0.9
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


class ModelFileError(ValueError):
    """A model file that cannot be read: missing, truncated, tampered with or of another format."""


# --------------------------------------------------------------------------- objective


class _Objective:
    """The penalised multinomial loss of flat parameters ``w = [W.ravel(), b]``.

    ``X`` is kept in its own dtype (float32 or float64); ``w`` and every
    returned gradient are float64, as scipy's optimisers want them. The last
    point's logits and cross-entropy gradient are cached, so a line-search
    trial followed by the gradient at the accepted point costs one product
    with ``X`` each, and one cross-entropy pass in all.
    """

    def __init__(
        self,
        X: FloatArray,
        y: NDArray[np.intp],
        sample_weight: FloatArray | None,
        n_classes: int,
        C: float,
        fit_intercept: bool,
    ) -> None:
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.n_classes = n_classes
        self.n_features = X.shape[1]
        self.fit_intercept = fit_intercept
        n = X.shape[0]
        self.sw_sum = float(n) if sample_weight is None else float(np.sum(sample_weight))
        # per-row factor s_i / sum(s): the mean's weights
        self.row_scale: FloatArray | None = (
            None if sample_weight is None else (sample_weight / self.sw_sum).astype(X.dtype)
        )
        self.l2 = 1.0 / (C * self.sw_sum)
        self.n_params = n_classes * self.n_features + (n_classes if fit_intercept else 0)
        self.n_evals = 0  # objective evaluations: logits computed (one product with X each)
        self.n_grads = 0  # gradients: one more product with X each
        self.hvp_rows = 0.0  # rows touched by Hessian-vector products (two products each)
        self._w: FloatArray | None = None
        self._cache: tuple[float, FloatArray] | None = None  # data loss, dCE/dZ at _w

    # parameters <-> (W, b)
    def unpack(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        k, d = self.n_classes, self.n_features
        W = w[: k * d].reshape(k, d)
        b = w[k * d :] if self.fit_intercept else np.zeros(k, dtype=w.dtype)
        return W, b

    def pack(self, W: FloatArray, b: FloatArray) -> FloatArray:
        parts = [np.asarray(W, dtype=np.float64).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(b, dtype=np.float64))
        return np.concatenate(parts)

    def _logits(self, X: FloatArray, w: FloatArray) -> FloatArray:
        W, b = self.unpack(w)
        z: FloatArray = X @ W.T.astype(X.dtype, copy=False)
        if self.fit_intercept:
            z += b.astype(X.dtype, copy=False)
        return z

    def _data_loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """Mean weighted cross-entropy at ``w`` and ``G = ∂/∂Z``, cached for the last ``w``."""
        if self._w is not None and self._cache is not None and np.array_equal(self._w, w):
            return self._cache
        z = self._logits(self.X, w)
        self.n_evals += 1
        if self.row_scale is None:
            loss, g = cross_entropy_and_grad(z, self.y, reduction="mean")
            value = float(loss)
        else:
            # cross_entropy's weight= is per class: per-sample weights scale the rows
            losses, g = cross_entropy_and_grad(z, self.y, reduction="none")
            g *= self.row_scale[:, None]
            value = float(np.dot(losses.astype(np.float64), self.row_scale))
        self._w, self._cache = w.copy(), (value, g)
        return value, g

    def _penalty(self, W: FloatArray) -> float:
        return 0.5 * self.l2 * float(np.vdot(W, W))

    def loss(self, w: FloatArray) -> float:
        """The objective at ``w`` (one product with ``X``, none if ``w`` was the last point)."""
        W, _ = self.unpack(w)
        return self._data_loss_and_grad(w)[0] + self._penalty(W)

    def loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient at ``w``: ``Gᵀ X + λW`` and ``Gᵀ 1``."""
        W, _ = self.unpack(w)
        data_loss, g = self._data_loss_and_grad(w)
        self.n_grads += 1
        gW = (g.T @ self.X).astype(np.float64) + self.l2 * W
        grad = self.pack(gW, g.sum(axis=0, dtype=np.float64))
        return data_loss + self._penalty(W), grad

    def hessp(
        self, w: FloatArray, rows: NDArray[np.intp] | None = None
    ) -> Callable[[FloatArray], FloatArray]:
        """``v ↦ H(w) v``: the logits-level HVP pulled back through ``X``.

        With ``rows``, the data term's Hessian is estimated on those rows only
        (reweighted to the full mean); the penalty's is exact.
        """
        if rows is None:
            X, y, sw = self.X, self.y, self.sample_weight
        else:
            X, y = self.X[rows], self.y[rows]
            sw = None if self.sample_weight is None else self.sample_weight[rows]
        # per-row factor of the mean on this subset (1/m, or s_i / Σ_subset s)
        scale = (
            np.full(X.shape[0], 1.0 / X.shape[0], dtype=X.dtype)
            if sw is None
            else (sw / max(float(np.sum(sw)), np.finfo(np.float64).tiny)).astype(X.dtype)
        )
        z = self._logits(X, w)
        dt = X.dtype

        def hvp(v: FloatArray) -> FloatArray:
            self.hvp_rows += X.shape[0]
            V, vb = self.unpack(v)
            u = X @ V.T.astype(dt, copy=False)
            if self.fit_intercept:
                u += vb.astype(dt, copy=False)
            # the post's Jacobian diag(S) − S Sᵀ applied to each row of U
            r = cross_entropy_hvp(z, y, u, reduction="none")
            r *= scale[:, None]
            hW = (r.T @ X).astype(np.float64) + self.l2 * V
            return self.pack(hW, r.sum(axis=0, dtype=np.float64))

        return hvp


# --------------------------------------------------------------------------- solvers


@dataclass
class _Result:
    w: FloatArray
    n_iter: int
    converged: bool
    loss_curve: list[float]
    message: str = ""


def _lbfgs(
    obj: _Objective, w0: FloatArray, max_iter: int, tol: float, callback: Callback | None
) -> _Result:
    from scipy.optimize import minimize

    curve: list[float] = []

    def record(intermediate_result: Any) -> None:
        curve.append(float(intermediate_result.fun))
        if callback is not None:
            callback(len(curve), curve[-1])

    res = minimize(
        obj.loss_and_grad,
        w0,
        method="L-BFGS-B",
        jac=True,
        callback=record,
        # scikit-learn's settings, so that both stop at the same point
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    n_iter = int(res.nit)
    converged = bool(res.success)
    if not curve:
        curve.append(float(res.fun))
    return _Result(np.asarray(res.x, dtype=np.float64), n_iter, converged, curve, str(res.message))


def _conjugate_gradient(
    hvp: Callable[[FloatArray], FloatArray], g: FloatArray, max_iter: int, rtol: float
) -> FloatArray:
    """Approximately solve ``H p = -g`` by (truncated) conjugate gradients."""
    p = np.zeros_like(g)
    r = -g.copy()
    d = r.copy()
    rr = float(r @ r)
    stop = rtol * math.sqrt(rr)
    for _ in range(max_iter):
        if math.sqrt(rr) <= stop:
            break
        hd = hvp(d)
        curvature = float(d @ hd)
        if curvature <= 1e-12 * float(d @ d):
            # flat or negative curvature (the intercepts' common shift): stop here
            if not p.any():
                p = -g.copy()
            break
        alpha = rr / curvature
        p += alpha * d
        r -= alpha * hd
        rr_new = float(r @ r)
        d = r + (rr_new / rr) * d
        rr = rr_new
    return p


def _newton_cg(
    obj: _Objective,
    w0: FloatArray,
    max_iter: int,
    tol: float,
    callback: Callback | None,
    rng: np.random.Generator | None = None,
) -> _Result:
    """Newton's method, each step solved by CG on closed-form HVPs, Armijo backtracking.

    On large data (``n >= 4 * _HESSIAN_ROWS``) each Newton step's HVPs use a fresh
    random subset of ``max(_HESSIAN_ROWS, n // 8)`` rows (Byrd et al. 2011); the
    gradient, the line search and the stopping test stay exact, so the optimum
    is the same, and each CG step costs a fraction of a pass over ``X``.
    """
    n = obj.X.shape[0]
    m = max(_HESSIAN_ROWS, n // 8) if n >= 4 * _HESSIAN_ROWS else n
    rng = rng if rng is not None else np.random.default_rng()
    w = w0.copy()
    f, g = obj.loss_and_grad(w)
    curve: list[float] = []
    max_cg = max(20, 2 * obj.n_classes * 10)
    for it in range(1, max_iter + 1):
        if float(np.max(np.abs(g))) <= tol:
            return _Result(w, it - 1, True, curve or [f])
        g_norm1 = float(np.sum(np.abs(g)))
        # forcing term: a loose solve far away, a tight one near the optimum (superlinear)
        eta = min(0.5, math.sqrt(g_norm1))
        rows = None if m == n else np.sort(rng.choice(n, size=m, replace=False))
        p = _conjugate_gradient(obj.hessp(w, rows), g, max_cg, eta)
        slope = float(g @ p)
        if slope >= 0:  # not a descent direction (rounding): fall back to the gradient
            p, slope = -g, -float(g @ g)
        # the loss is only known to the data dtype's rounding: a decrease smaller than
        # that cannot be seen, so a Newton step predicting one is judged by its gradient
        noise = 16 * float(np.finfo(obj.X.dtype).eps) * max(abs(f), 1.0)
        step, accepted, blind = 1.0, False, False
        for _ in range(30):
            w_new = w + step * p
            f_new = obj.loss(w_new)  # one product with X per trial
            if f_new <= f + 1e-4 * step * slope:
                accepted = True
                break
            if step == 1.0 and -slope <= noise and f_new <= f + noise:
                accepted = blind = True
                break
            step *= 0.5
        if not accepted:
            return _Result(w, it, False, curve or [f], "line search failed")
        g_max = float(np.max(np.abs(g)))
        f_new, g_new = obj.loss_and_grad(w_new)  # reuses the trial's logits: one product
        if blind and float(np.max(np.abs(g_new))) >= g_max:
            # no visible progress at the rounding level of the data's dtype: stop here
            return _Result(w, it, g_max <= tol, curve or [f], "no progress at the data's precision")
        w, f, g = w_new, f_new, g_new
        curve.append(f)
        if callback is not None:
            callback(it, f)
    return _Result(w, max_iter, float(np.max(np.abs(g))) <= tol, curve or [f])


class _StochasticState:
    """Momentum / Adam state that survives between ``partial_fit`` calls."""

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.m = np.zeros(shape, dtype=dtype)
        self.v = np.zeros(shape, dtype=dtype)
        self.t = 0


def _minibatch_loss_and_grad(
    xb: FloatArray,
    yb: NDArray[np.intp],
    scale: FloatArray,
    W: FloatArray,
    b: FloatArray,
    *,
    l2: float,
    fit_intercept: bool,
) -> tuple[float, FloatArray]:
    """Data loss ``Σ scale_i CE_i`` and the gradient of it plus ``λ/2 ||W||²``, flat.

    Everything stays in the data's dtype (float32 data: float32 updates).
    """
    z = xb @ W.T
    if fit_intercept:
        z += b
    losses, g = cross_entropy_and_grad(z, yb, reduction="none")
    g *= scale[:, None]
    gW = g.T @ xb + xb.dtype.type(l2) * W
    grad = np.concatenate([gW.ravel(), g.sum(axis=0)]) if fit_intercept else gW.ravel()
    return float(np.dot(losses, scale)), grad


def _stochastic_epoch(
    solver: str,
    X: FloatArray,
    y: NDArray[np.intp],
    sw: FloatArray | None,
    W: FloatArray,
    b: FloatArray,
    state: _StochasticState,
    *,
    l2: float,
    fit_intercept: bool,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
) -> float:
    """One pass of mini-batch updates over shuffled rows, in place; returns the mean loss seen."""
    n, k = X.shape[0], W.shape[0]
    sw_mean = 1.0 if sw is None else float(np.mean(sw))
    order = rng.permutation(n)
    total = 0.0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        # unbiased for the full objective: Σ_B s_i CE_i / (|B| mean(s)) + λ/2 ||W||²
        scale = np.full(len(idx), 1.0 / (len(idx) * sw_mean), dtype=X.dtype)
        if sw is not None:
            scale *= sw[idx]
        data_loss, grad = _minibatch_loss_and_grad(
            X[idx], y[idx], scale, W, b, l2=l2, fit_intercept=fit_intercept
        )
        total += data_loss * len(idx)
        state.t += 1
        if solver == "sgd":
            state.m *= _MOMENTUM
            state.m -= learning_rate * grad
            step = state.m
        else:
            b1, b2 = _ADAM_BETAS
            state.m *= b1
            state.m += (1 - b1) * grad
            state.v *= b2
            state.v += (1 - b2) * grad * grad
            m_hat = state.m / (1 - b1**state.t)
            v_hat = state.v / (1 - b2**state.t)
            step = -learning_rate * m_hat / (np.sqrt(v_hat) + _ADAM_EPS)
        W += step[: k * W.shape[1]].reshape(W.shape)
        if fit_intercept:
            b += step[k * W.shape[1] :]
    return float(total / n + 0.5 * l2 * float(np.vdot(W, W)))


# --------------------------------------------------------------------------- estimator


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    r"""Multinomial logistic regression — the post's one-layer softmax network — trained by softgrad.

    The network maps D inputs through one fully connected layer to K softmax
    outputs, :math:`p(y \mid x) = \mathrm{softmax}(W x + b)`, and minimises the
    same objective as :class:`sklearn.linear_model.LogisticRegression`
    (multinomial, L2 penalty ``1/C``, unpenalised intercept, sample weights),
    so converged ``lbfgs`` and ``newton-cg`` fits reach the same optimum.

    Parameters
    ----------
    C : float, default 1.0
        Inverse L2 regularisation strength (larger: weaker penalty).
    fit_intercept : bool, default True
        Learn the bias ``b`` (never penalised).
    solver : {"lbfgs", "newton-cg", "sgd", "adam"}, default "lbfgs"
        ``lbfgs``: scipy's L-BFGS-B fed the fused loss and gradient.
        ``newton-cg``: Newton steps solved by conjugate gradients on the
        closed-form Hessian-vector product, with a backtracking line search.
        ``sgd`` (momentum 0.9) and ``adam``: mini-batch epochs.
    max_iter : int, default 1000
        Iterations (``lbfgs``, ``newton-cg``) or epochs (``sgd``, ``adam``).
    tol : float, default 1e-4
        ``lbfgs``/``newton-cg`` stop when the largest gradient entry is at most
        ``tol``; ``sgd``/``adam`` when the epoch loss has not improved by
        ``tol`` for 10 epochs.
    batch_size : int, default 200
        Mini-batch rows for ``sgd``/``adam`` (clipped to the number of samples).
    learning_rate : float, default 0.01
        Step size for ``sgd``/``adam``.
    random_state : int, numpy Generator or None, default None
        Seeds the mini-batch shuffling.
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

    def __init__(
        self,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        solver: Solver = "lbfgs",
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

    def _check_params(self) -> None:
        if self.solver not in _SOLVERS:
            msg = f"solver must be one of {', '.join(map(repr, _SOLVERS))}, got {self.solver!r}"
            raise ValueError(msg)
        checks: list[tuple[str, Any, bool]] = [
            ("C", self.C, _is_real(self.C) and self.C > 0),
            ("max_iter", self.max_iter, _is_int(self.max_iter) and self.max_iter >= 1),
            ("tol", self.tol, _is_real(self.tol) and self.tol >= 0),
            ("batch_size", self.batch_size, _is_int(self.batch_size) and self.batch_size >= 1),
            (
                "learning_rate",
                self.learning_rate,
                _is_real(self.learning_rate) and self.learning_rate > 0,
            ),
        ]
        for name, value, ok in checks:
            if not ok:
                kind = "an integer >= 1" if name in ("max_iter", "batch_size") else "a float"
                bound = "" if "integer" in kind else (" >= 0" if name == "tol" else " > 0")
                msg = f"{name} must be {kind}{bound}, got {value!r}"
                raise ValueError(msg)

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
        self._check_params()
        warm = self.warm_start and hasattr(self, "coef_")
        X, y, sw = self._validate_fit(X, y, sample_weight, reset=True)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            msg = (
                f"{type(self).__name__} needs samples of at least 2 classes, but the data "
                f"contain only one class: {classes[0]!r}"
            )
            raise ValueError(msg)
        y_idx = y_idx.astype(np.intp).ravel()
        k, d = len(classes), X.shape[1]
        if warm and (
            np.shape(getattr(self, "coef_", ())) != (k, d)
            or not np.array_equal(getattr(self, "classes_", ()), classes)
        ):
            warm = False
        self.classes_ = classes
        if warm:
            W0 = np.asarray(self.coef_, dtype=np.float64)
            b0 = np.asarray(self.intercept_, dtype=np.float64)
        else:
            W0, b0 = np.zeros((k, d)), np.zeros(k)
        callback = self._iteration_callback()
        if self.solver in ("lbfgs", "newton-cg"):
            obj = _Objective(X, y_idx, sw, k, float(self.C), bool(self.fit_intercept))
            args = (obj, obj.pack(W0, b0), int(self.max_iter), float(self.tol), callback)
            if self.solver == "lbfgs":
                res = _lbfgs(*args)
            else:
                res = _newton_cg(*args, rng=np.random.default_rng(self.random_state))
            W, b = obj.unpack(res.w)
            self.fit_stats_ = {
                "loss_evals": obj.n_evals,
                "gradients": obj.n_grads,
                "hvp_rows": obj.hvp_rows,
                # products with X, in units of one pass over all rows
                "data_passes": obj.n_evals + obj.n_grads + 2 * obj.hvp_rows / X.shape[0],
            }
            if not res.converged:
                _warn_not_converged(self.solver, self.max_iter, res.message)
        else:
            W, b = W0.astype(X.dtype), b0.astype(X.dtype)
            self._state = _StochasticState((W.size + (k if self.fit_intercept else 0),), X.dtype)
            rng = np.random.default_rng(self.random_state)
            l2 = 1.0 / (float(self.C) * (X.shape[0] if sw is None else float(np.sum(sw))))
            res = _run_stochastic(self, X, y_idx, sw, W, b, l2=l2, rng=rng, callback=callback)
        self._set_coefs(W, b, X.dtype)
        self.n_iter_ = res.n_iter
        self.loss_curve_ = res.loss_curve
        return self

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
        self._check_params()
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
            W = np.zeros((k, d), dtype=X.dtype)
            b = np.zeros(k, dtype=X.dtype)
            self.n_iter_, self.loss_curve_ = 0, []
        else:
            W = np.array(self.coef_, dtype=X.dtype)
            b = np.array(self.intercept_, dtype=X.dtype)
        size = (W.size + (k if self.fit_intercept else 0),)
        state = getattr(self, "_state", None)
        if state is None or state.m.shape != size:
            state = _StochasticState(size, X.dtype)
        self._state = state
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.random_state)
        solver = "sgd" if self.solver == "sgd" else "adam"
        sw_sum = X.shape[0] if sw is None else float(np.sum(sw))
        loss = _stochastic_epoch(
            solver,
            X,
            y_idx.astype(np.intp),
            sw,
            W,
            b,
            state,
            l2=1.0 / (float(self.C) * sw_sum),
            fit_intercept=bool(self.fit_intercept),
            batch_size=min(int(self.batch_size), X.shape[0]),
            learning_rate=float(self.learning_rate),
            rng=self._rng,
        )
        self._set_coefs(W, b, X.dtype)
        self.n_iter_ += 1
        self.loss_curve_.append(loss)
        return self

    def _iteration_callback(self) -> Callback | None:
        user = self.callback
        if not self.verbose and user is None:
            return None

        def callback(iteration: int, value: float) -> None:
            if self.verbose:
                print(f"{self.solver} iteration {iteration}: objective {value:.6g}")
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

    def _logits(self, X: Any) -> FloatArray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=False, dtype=[np.float64, np.float32])
        z: FloatArray = X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_.astype(
            X.dtype, copy=False
        )
        return z

    def decision_function(self, X: Any) -> FloatArray:
        """The logits :math:`X W^\\top + b`, shape (n_samples, n_classes).

        With two classes, the logit difference :math:`z_1 - z_0` (shape (n_samples,)),
        positive where the second class is predicted, as scikit-learn expects.
        """
        z = self._logits(X)
        if len(self.classes_) == 2:
            d: FloatArray = z[:, 1] - z[:, 0]
            return d
        return z

    def predict_proba(self, X: Any) -> FloatArray:
        """The softmax outputs :math:`S = \\mathrm{softmax}(X W^\\top + b)`, rows summing to 1."""
        p: FloatArray = softmax(self._logits(X), axis=-1)
        return p

    def predict_log_proba(self, X: Any) -> FloatArray:
        """``log_softmax`` of the logits, accurate for tiny probabilities."""
        lp: FloatArray = log_softmax(self._logits(X), axis=-1)
        return lp

    def predict(self, X: Any) -> NDArray[Any]:
        """The class with the largest logit for each row."""
        best = np.argmax(self._logits(X), axis=1)
        out: NDArray[Any] = self.classes_[best]
        return out

    # ------------------------------------------------------------------ persistence

    def save(
        self, path: str | os.PathLike[str], *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Write the fitted model to ``path`` as ``.npz``, atomically, with a checksum.

        The file holds only plain arrays (no pickles): the weights, the class
        labels (as a str, int or float array), the parameters as JSON, a format
        version and a sha256 of all of them. It is written to a temporary file
        in the same folder and renamed into place, so a reader never sees half
        a file.

        Parameters
        ----------
        path : path-like
            Destination (conventionally ending in ``.npz``).
        metadata : mapping of str to str, optional
            Extra strings stored with the model (the CLI stores the feature and
            target column names); read back as ``metadata_`` by :meth:`load`.

        Raises
        ------
        ValueError
            If the class labels cannot be stored as a str, int or float array.
        """
        check_is_fitted(self)
        classes = _storable_classes(self.classes_)
        params = {
            k: v for k, v in self.get_params().items() if k not in ("callback", "random_state")
        }
        if isinstance(self.random_state, (int, np.integer)):
            params["random_state"] = int(self.random_state)
        meta = {str(k): str(v) for k, v in (metadata or {}).items()}
        arrays: dict[str, NDArray[Any]] = {
            "format": np.array(_FORMAT_NAME),
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "coef": np.asarray(self.coef_),
            "intercept": np.asarray(self.intercept_),
            "classes": classes,
            "n_iter": np.array(int(self.n_iter_), dtype=np.int64),
            "loss_curve": np.asarray(self.loss_curve_, dtype=np.float64),
            "params": np.array(json.dumps(params, sort_keys=True)),
            "metadata": np.array(json.dumps(meta, sort_keys=True)),
        }
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names_in"] = np.asarray(self.feature_names_in_).astype(str)
        arrays["sha256"] = np.array(_checksum(arrays))
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _default_mode())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

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
            If the file is missing, truncated, tampered with (checksum mismatch),
            of another format, or of a newer format version.
        """
        path = Path(path)
        try:
            # our own handle: np.load leaks its own when the zip turns out broken
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            msg = f"model file {str(path)!r} does not exist"
            raise ModelFileError(msg) from None
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            zipfile.BadZipFile,
            zlib.error,
        ) as exc:
            msg = (
                f"cannot read model file {str(path)!r}: it is truncated, corrupt or not a "
                f".npz model file ({type(exc).__name__})"
            )
            raise ModelFileError(msg) from None
        required = ("format", "format_version", "coef", "intercept", "classes", "params", "sha256")
        missing = [name for name in required if name not in arrays]
        if missing or str(arrays.get("format", "")) != _FORMAT_NAME:
            msg = (
                f"{str(path)!r} is not a softgrad SoftmaxClassifier file "
                f"(missing {', '.join(missing) or 'format tag'})"
            )
            raise ModelFileError(msg)
        version = int(arrays["format_version"])
        if version > FORMAT_VERSION:
            msg = (
                f"{str(path)!r} has format version {version}, newer than this softgrad's "
                f"{FORMAT_VERSION}; upgrade softgrad to read it"
            )
            raise ModelFileError(msg)
        stored = str(arrays.pop("sha256"))
        if _checksum(arrays) != stored:
            msg = f"{str(path)!r} failed its sha256 check: the file was modified or damaged"
            raise ModelFileError(msg)
        try:
            params = json.loads(str(arrays["params"]))
            model = cls(**params)
            coef, intercept = arrays["coef"], arrays["intercept"]
            classes = arrays["classes"]
            if (
                coef.ndim != 2
                or intercept.shape != (coef.shape[0],)
                or classes.shape != (coef.shape[0],)
            ):
                msg = "inconsistent shapes of coef, intercept and classes"
                raise ValueError(msg)
        except (TypeError, ValueError) as exc:
            msg = f"{str(path)!r} holds invalid model data: {exc}"
            raise ModelFileError(msg) from None
        model.coef_ = coef
        model.intercept_ = intercept
        model.classes_ = classes
        model.n_features_in_ = int(coef.shape[1])
        model.n_iter_ = int(arrays.get("n_iter", np.array(0)))
        model.loss_curve_ = [float(v) for v in arrays.get("loss_curve", np.zeros(0))]
        if "feature_names_in" in arrays:
            model.feature_names_in_ = arrays["feature_names_in"].astype(object)
        model.metadata_ = json.loads(str(arrays.get("metadata", np.array("{}"))))
        return model


# --------------------------------------------------------------------------- helpers


def _run_stochastic(
    est: SoftmaxClassifier,
    X: FloatArray,
    y: NDArray[np.intp],
    sw: FloatArray | None,
    W: FloatArray,
    b: FloatArray,
    *,
    l2: float,
    rng: np.random.Generator,
    callback: Callback | None,
) -> _Result:
    curve: list[float] = []
    best, no_change = math.inf, 0
    batch = min(int(est.batch_size), X.shape[0])
    for epoch in range(1, int(est.max_iter) + 1):
        loss = _stochastic_epoch(
            str(est.solver),
            X,
            y,
            sw,
            W,
            b,
            est._state,
            l2=l2,
            fit_intercept=bool(est.fit_intercept),
            batch_size=batch,
            learning_rate=float(est.learning_rate),
            rng=rng,
        )
        if not math.isfinite(loss):
            msg = (
                f"{est.solver} diverged (objective {loss}) at epoch {epoch}: "
                f"lower learning_rate (now {est.learning_rate})"
            )
            raise FloatingPointError(msg)
        curve.append(loss)
        if callback is not None:
            callback(epoch, loss)
        no_change = no_change + 1 if loss > best - float(est.tol) else 0
        best = min(best, loss)
        if no_change >= _N_ITER_NO_CHANGE:
            return _Result(np.zeros(0), epoch, True, curve)
    _warn_not_converged(str(est.solver), int(est.max_iter), "")
    return _Result(np.zeros(0), int(est.max_iter), False, curve)


def _warn_not_converged(solver: str, max_iter: int, message: str) -> None:
    if solver in ("sgd", "adam"):
        hint = (
            f"the loss was still improving by more than tol after max_iter={max_iter} epochs; "
            "increase max_iter, raise tol, or tune learning_rate"
        )
    else:
        hint = (
            f"{solver} did not reach tol within max_iter={max_iter} iterations"
            f"{f' ({message})' if message else ''}; increase max_iter, raise tol, "
            "or standardise the features (sklearn.preprocessing.StandardScaler)"
        )
    warnings.warn(f"SoftmaxClassifier: {hint}", ConvergenceWarning, stacklevel=3)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _storable_classes(classes: NDArray[Any]) -> NDArray[Any]:
    """Class labels as a str, int, bool or float array, or a clear error."""
    arr = np.asarray(classes)
    if arr.dtype.kind in "USiufb":
        return arr.astype(str) if arr.dtype.kind == "S" else arr
    values = arr.tolist()
    for kind in (str, (int, np.integer), (float, np.floating)):
        if all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            return np.array(values)
    kinds = sorted({type(v).__name__ for v in values})
    msg = (
        f"cannot save class labels of type {', '.join(kinds)}: a model file stores labels as "
        "one array of str, int or float (refit with labels of one of those types)"
    )
    raise ValueError(msg)


def _checksum(arrays: Mapping[str, NDArray[Any]]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _default_mode() -> int:
    """``0o666`` less the process umask: what ``open()`` would have given the file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
