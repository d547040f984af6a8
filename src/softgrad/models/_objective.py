r"""The multinomial logistic objective of one flat parameter vector.

The objective is scikit-learn ``LogisticRegression``'s multinomial one, to the
scaling, so that one estimator can be swapped for the other:

.. math::

    f(W, b) = \frac{1}{\sum_i s_i} \sum_i s_i\,\mathrm{CE}(W x_i + b, y_i)
              + \frac{\lVert W\rVert_F^2}{2\,C \sum_i s_i},

with sample weights :math:`s_i` (all 1 by default), an unpenalised intercept
and ``C = inf`` meaning no penalty. Every derivative comes from softgrad's
closed forms, none from an autodiff library: with logits
:math:`Z = X W^\top + b` and :math:`G = \partial\,\mathrm{CE}/\partial Z = S - Y`
(rows scaled by :math:`s_i / \sum s`),

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
matrix products with ``X``: the objective caches the logits of the last
point, so a line-search trial costs one product (the loss needs only
:math:`Z`) and the gradient at the accepted point costs the second one.
Float32 data keeps its products in float32 (half the bytes to stream).

This module is the seam between the solvers and the data: a solver sees only
``loss``, ``loss_and_grad``, ``hessp`` and ``batch_loss_and_grad`` of a flat
vector, so an objective whose rows live elsewhere (blocks of a Dask array,
say) can be given to the same solvers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

# the public functions: fused kernels for large NumPy inputs, the Array API code otherwise
from softgrad import cross_entropy_and_grad, cross_entropy_hvp

__all__ = ["MultinomialObjective"]

FloatArray = NDArray[np.floating[Any]]


class MultinomialObjective:
    r"""The penalised multinomial loss of flat parameters ``w = [W.ravel(), b]``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features), float32 or float64
        The data, kept in its own dtype.
    y : ndarray of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes ``K`` (rows of ``W``).
    C : float, default 1.0
        Inverse penalty strength; ``np.inf`` means no penalty (:math:`\lambda = 0`).
    fit_intercept : bool, default True
        Whether ``w`` ends with the ``K`` unpenalised biases.
    sample_weight : ndarray, shape (n_samples,), optional
        Non-negative weights :math:`s_i` with a positive sum.

    Notes
    -----
    ``loss``, ``loss_and_grad`` and ``hessp`` take and return float64 vectors,
    as scipy's optimisers want them; the stochastic solvers' mini-batch
    gradient (:meth:`batch_loss_and_grad`) stays in the data's dtype. The last
    point's logits and cross-entropy gradient are cached, so a line-search
    trial followed by the gradient at the accepted point costs one product with
    ``X`` each, and one cross-entropy pass in all.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> obj = MultinomialObjective(X, np.array([0, 1, 1]), n_classes=2, C=np.inf)
    >>> w = np.zeros(obj.n_params)  # W = 0, b = 0: every class has probability 1/2
    >>> round(obj.loss(w), 6) == round(float(np.log(2)), 6)
    True
    >>> obj.loss_and_grad(w)[1].round(3)  # [Gᵀ X, Gᵀ 1] with G = (S - Y) / 3
    array([ 0.333,  0.   , -0.333,  0.   ,  0.167, -0.167])
    """

    def __init__(
        self,
        X: FloatArray,
        y: NDArray[np.intp],
        *,
        n_classes: int,
        C: float = 1.0,
        fit_intercept: bool = True,
        sample_weight: FloatArray | None = None,
    ) -> None:
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.n_classes = n_classes
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype
        self.fit_intercept = fit_intercept
        self.sw_sum = (
            float(self.n_samples) if sample_weight is None else float(np.sum(sample_weight))
        )
        # per-row factor s_i / sum(s): the mean's weights
        self.row_scale: FloatArray | None = (
            None if sample_weight is None else (sample_weight / self.sw_sum).astype(X.dtype)
        )
        self.sw_mean = 1.0 if sample_weight is None else float(np.mean(sample_weight))
        # C = inf: no penalty, λ = 1/inf = 0 exactly
        self.l2 = 1.0 / (C * self.sw_sum)
        self.n_params = n_classes * self.n_features + (n_classes if fit_intercept else 0)
        self.n_evals = 0  # objective evaluations: logits computed (one product with X each)
        self.n_grads = 0  # gradients: one more product with X each
        self.hvp_rows = 0.0  # rows touched by Hessian-vector products (two products each)
        self._w: FloatArray | None = None
        self._cache: tuple[float, FloatArray] | None = None  # data loss, dCE/dZ at _w

    # parameters <-> (W, b)
    def unpack(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Views ``(W, b)`` of a flat vector (``b`` is zeros without an intercept)."""
        k, d = self.n_classes, self.n_features
        W = w[: k * d].reshape(k, d)
        b = w[k * d :] if self.fit_intercept else np.zeros(k, dtype=w.dtype)
        return W, b

    def pack(self, W: FloatArray, b: FloatArray, dtype: DTypeLike = np.float64) -> FloatArray:
        """The flat vector ``[W.ravel(), b]`` (``b`` dropped without an intercept)."""
        parts = [np.asarray(W, dtype=dtype).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(b, dtype=dtype))
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

    def penalty(self, w: FloatArray) -> float:
        r""":math:`\tfrac{\lambda}{2}\lVert W\rVert_F^2` (0 for ``C = inf``)."""
        W, _ = self.unpack(w)
        return 0.5 * self.l2 * float(np.vdot(W, W))

    def loss(self, w: FloatArray) -> float:
        """The objective at ``w`` (one product with ``X``, none if ``w`` was the last point)."""
        return self._data_loss_and_grad(w)[0] + self.penalty(w)

    def loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient at ``w``: ``Gᵀ X + λW`` and ``Gᵀ 1``."""
        W, _ = self.unpack(w)
        data_loss, g = self._data_loss_and_grad(w)
        self.n_grads += 1
        gW = (g.T @ self.X).astype(np.float64) + self.l2 * W
        grad = self.pack(gW, g.sum(axis=0, dtype=np.float64))
        return data_loss + self.penalty(w), grad

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

    def batch_loss_and_grad(
        self, rows: NDArray[np.intp], w: FloatArray
    ) -> tuple[float, FloatArray]:
        r"""A mini-batch estimate: data loss on ``rows`` and the gradient of it plus the penalty.

        Unbiased for the full objective: with batch :math:`B`,
        :math:`\sum_{i \in B} s_i\,\mathrm{CE}_i / (|B|\,\bar s)` estimates the
        data term and the penalty's gradient :math:`\lambda W` is exact.
        Everything stays in ``w``'s dtype (float32 data and ``w``: float32
        updates); the returned gradient is flat like ``w``.
        """
        xb, yb = self.X[rows], self.y[rows]
        W, b = self.unpack(w)
        scale = np.full(len(rows), 1.0 / (len(rows) * self.sw_mean), dtype=xb.dtype)
        if self.sample_weight is not None:
            scale *= self.sample_weight[rows]
        z = xb @ W.T
        if self.fit_intercept:
            z += b
        losses, g = cross_entropy_and_grad(z, yb, reduction="none")
        g *= scale[:, None]
        gW = g.T @ xb + xb.dtype.type(self.l2) * W
        grad = np.concatenate([gW.ravel(), g.sum(axis=0)]) if self.fit_intercept else gW.ravel()
        return float(np.dot(losses, scale)), grad
