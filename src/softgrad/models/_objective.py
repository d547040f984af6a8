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

The inner loop is lean: the data, the labels and the row weights are checked
once by the estimator, so an evaluation calls NumPy directly on buffers
allocated once (the logits, overwritten by :math:`S - Y`, and the per-sample
losses), with no argument checking, namespace lookup or dispatch, and it
never loads the compiled kernels (a fit never waits for numba). The row formulas are the
closed forms of :func:`softgrad.cross_entropy_and_grad` and
:func:`softgrad.cross_entropy_hvp`, which the tests compare them with.
For ``newton-cholesky`` the objective also forms the whole Hessian,

.. math::

    H = \sum_i \frac{s_i}{\sum s}\,\tilde x_i \tilde x_i^\top
        \otimes \bigl(\mathrm{diag}(S_i) - S_i S_i^\top\bigr)
        + \lambda\,I_W, \qquad \tilde x_i = [x_i, 1],

from two matrix products (:meth:`MultinomialObjective.hessian`).

This module is the seam between the solvers and the data: a solver sees only
``loss``, ``loss_and_grad``, ``hessp`` and ``batch_loss_and_grad`` of a flat
vector, so an objective whose rows live elsewhere (blocks of a Dask array,
say) can be given to the same solvers.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "MultinomialObjective",
    "blas_pools",
    "blas_threads",
    "lbfgs_memory",
    "one_blas_thread_already",
]

FloatArray = NDArray[np.floating[Any]]

HESSIAN_BLOCK_BYTES = 8 << 20  # hessian(): rows per block so that S ⊗ x̃ takes about this much
CE_COLUMNS = 1 << 15  # samples per chunk of the cross-entropy pass (its scratch vectors)


def _cross_entropy_columns(
    zt: FloatArray, y: NDArray[np.intp], scale: FloatArray, gt: FloatArray, ce: FloatArray
) -> float:
    r"""Weighted cross-entropy :math:`\sum_i c_i\,\mathrm{CE}_i` and ``c (S - Y)``, in buffers.

    The logits come transposed, ``zt`` of shape ``(K, n)`` (C-contiguous):
    sample :math:`i` is column :math:`i`, so every per-sample max and sum is
    an elementwise operation over ``K`` contiguous rows (fast in NumPy; a
    reduction along a short last axis is not). :math:`\mathrm{CE}_i =
    \log\sum_j e^{z_{ji} - m_i} + m_i - z_{y_i i}` with the column max
    :math:`m_i`; ``y`` holds the true classes, ``scale`` the weights
    :math:`c_i`. ``gt`` (shape of ``zt``) receives ``c (S - Y)`` and ``ce``
    (``n``) the :math:`\mathrm{CE}_i`. ``gt`` may be ``zt`` itself: each
    column's :math:`z_{y_i i}` is read before the column is overwritten, so
    the logits need no buffer of their own. The columns are taken
    :data:`CE_COLUMNS` at a time, so the per-sample scratch vectors are
    small; every operation is per column, and the sum is one dot product, so
    the result does not depend on the chunking.
    """
    n = zt.shape[1]
    flat_z, flat_g = zt.reshape(-1), gt.reshape(-1)
    for start in range(0, n, CE_COLUMNS):
        cols = slice(start, min(start + CE_COLUMNS, n))
        z, g, c = zt[:, cols], gt[:, cols], scale[cols]
        target = np.multiply(y[cols], n, dtype=np.intp)  # flat indices of z_{y_i, i}
        target += np.arange(cols.start, cols.stop)
        col_max = np.max(z, axis=0)
        picked = np.take(flat_z, target)  # z_{y_i, i}, before gt (maybe zt) is written
        # shift by the max: exp never overflows and S is unchanged
        np.subtract(z, col_max, out=g)
        np.exp(g, out=g)
        col_sum = np.sum(g, axis=0)
        g *= np.divide(c, col_sum)  # c S
        ce_cols = np.log(col_sum, out=ce[cols])
        ce_cols += col_max
        ce_cols -= picked  # CE_i
        g_true = np.take(flat_g, target)
        g_true -= c
        np.put(flat_g, target, g_true)  # c (S - Y)
    return float(np.dot(ce, scale))


def _softmax_columns(zt: FloatArray) -> FloatArray:
    """``softmax(zt, axis=0)`` in place (each column shifted by its max first)."""
    zt -= zt.max(axis=0)
    np.exp(zt, out=zt)
    zt /= zt.sum(axis=0)
    return zt


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
    ``loss``, ``loss_and_grad``, ``hessp`` and ``hessian`` take and return
    float64 vectors, as the solvers want them; the stochastic solvers'
    mini-batch gradient (:meth:`batch_loss_and_grad`) stays in the data's
    dtype. The last point's logits and cross-entropy gradient are cached, so a
    line-search trial followed by the gradient at the accepted point costs one
    product with ``X`` each, and one cross-entropy pass in all. The arguments
    are trusted (the estimator checks them): nothing is checked per evaluation.

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
        n, d = X.shape
        k, dt = n_classes, X.dtype
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n_samples, self.n_features, self.n_classes, self.dtype = n, d, k, dt
        self.fit_intercept = fit_intercept
        self.n_params = k * d + (k if fit_intercept else 0)
        self.sw_sum = float(n) if sample_weight is None else float(np.sum(sample_weight))
        self.sw_mean = self.sw_sum / n
        # per-row factor s_i / Σs of the weighted mean (1/n without weights)
        self.row_scale: FloatArray = (
            np.full(n, 1.0 / n, dtype=dt)
            if sample_weight is None
            else (sample_weight / self.sw_sum).astype(dt)
        )
        self.l2 = 1.0 / (C * self.sw_sum)  # C = inf: λ = 1/inf = 0 exactly
        # counters: logits computed (one product with X each), gradients (one more),
        # rows touched by Hessian-vector products (two products each)
        self.n_evals, self.n_grads, self.hvp_rows = 0, 0, 0.0
        self.n_hessians = 0  # whole Hessians formed (newton-cholesky)
        # buffers, allocated once, samples along columns: the logits Zᵀ, overwritten by
        # c (S - Y)ᵀ in place, and the per-sample cross-entropies
        self._gt = np.empty((k, n), dtype=dt)
        self._ce = np.empty(n, dtype=dt)
        self._lent: FloatArray | None = None  # rows of X held in the buffer of G (_lend_rows)
        self._w: FloatArray | None = None  # the point of the cached loss and G
        self._loss = 0.0

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

    def _logits(self, X: FloatArray, w: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """``Zᵀ = W Xᵀ + b``, shape ``(K, len(X))``, in the data's dtype."""
        W, b = self.unpack(w)
        zt: FloatArray = np.matmul(W.astype(X.dtype), X.T, out=out)
        if self.fit_intercept:
            zt += b.astype(X.dtype)[:, None]
        return zt

    def _data_loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """Mean weighted cross-entropy at ``w`` and ``G = ∂/∂Z``, cached for the last ``w``."""
        if self._w is not None and np.array_equal(self._w, w):
            return self._loss, self._gt
        self._w = None  # the buffer is rewritten: no cache until it is whole again
        self._lent = None  # nor rows lent to a Hessian (_lend_rows)
        zt = self._logits(self.X, w, out=self._gt)
        self.n_evals += 1
        self._loss = _cross_entropy_columns(zt, self.y, self.row_scale, zt, self._ce)
        self._w = w.copy()
        return self._loss, self._gt

    def penalty(self, w: FloatArray) -> float:
        r""":math:`\tfrac{\lambda}{2}\lVert W\rVert_F^2` (0 for ``C = inf``)."""
        W, _ = self.unpack(w)
        return 0.5 * self.l2 * float(np.vdot(W, W))

    def loss(self, w: FloatArray) -> float:
        """The objective at ``w`` (one product with ``X``, none if ``w`` was the last point)."""
        return self._data_loss_and_grad(w)[0] + self.penalty(w)

    def loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient at ``w``: ``Gᵀ X + λW`` and ``Gᵀ 1``."""
        data_loss, g = self._data_loss_and_grad(w)
        self.n_grads += 1
        return data_loss + self.penalty(w), self._pull_back(w, g, self.X, self.l2)

    def _pull_back(self, v: FloatArray, rt: FloatArray, X: FloatArray, l2: float) -> FloatArray:
        """``[Rᵀ X + λ V, Rᵀ 1]`` flat, float64: logits-level ``Rᵀ`` (K, n) mapped to parameters."""
        V, _ = self.unpack(v)
        out = np.empty(self.n_params)
        k, d = self.n_classes, self.n_features
        gW = out[: k * d].reshape(k, d)
        gW[...] = rt @ X
        gW += l2 * V
        if self.fit_intercept:
            out[k * d :] = rt.sum(axis=1, dtype=np.float64)
        return out

    def _row_weights(self, rows: NDArray[np.intp]) -> FloatArray:
        """The weights of a mean over ``rows``."""
        scale = self.row_scale[rows]
        return scale / max(float(np.sum(scale)), float(np.finfo(scale.dtype).tiny))

    def _lend_rows(self, rows: NDArray[np.intp]) -> FloatArray:
        """``X[rows]``, gathered into the buffer of ``G`` when it fits (its cache dropped).

        Between the gradient at a point and the next point's loss the buffer
        of ``G`` is idle: a Hessian's row sample can live there instead of in
        a copy of its own (on 750,000 x 20 with 4 classes, 14 MB of a fit's
        peak). :meth:`_data_loss_and_grad` takes the buffer back.
        """
        m, d = len(rows), self.n_features
        if m * d > self._gt.size:
            return self.X[rows]
        self._w = None  # G is overwritten: no cached point any more
        X_rows = self._gt.reshape(-1)[: m * d].reshape(m, d)
        np.take(self.X, rows, axis=0, out=X_rows, mode="clip")  # "raise" buffers a copy
        self._lent = X_rows
        return X_rows

    def hessp(
        self, w: FloatArray, rows: NDArray[np.intp] | None = None
    ) -> Callable[[FloatArray], FloatArray]:
        """``v ↦ H(w) v``: the logits-level HVP pulled back through ``X``.

        With ``rows``, the data term's Hessian is estimated on those rows only
        (reweighted to the full mean); the penalty's is exact. Those rows are
        held in the idle buffer of ``G`` when they fit (gathered again, into
        a copy, should a loss be evaluated between two products).
        """
        if rows is None:
            X, scale = self.X, self.row_scale
        else:
            X, scale = self._lend_rows(rows), self._row_weights(rows)
        lent = rows is not None and X is self._lent
        St = _softmax_columns(self._logits(X, w))

        def hvp(v: FloatArray) -> FloatArray:
            nonlocal X, lent
            if lent and X is not self._lent:  # an evaluation took the buffer back
                X, lent = self.X[rows], False
            self.hvp_rows += X.shape[0]
            ut = self._logits(X, v)
            # the post's Jacobian diag(S) − S Sᵀ applied to each sample's column of Uᵀ
            ut -= np.sum(St * ut, axis=0)
            ut *= St
            ut *= scale
            return self._pull_back(v, ut, X, self.l2)

        return hvp

    def hessian(self, w: FloatArray) -> FloatArray:
        r"""The whole Hessian at ``w``, shape ``(n_params, n_params)``, float64.

        With :math:`\tilde x_i = [x_i, 1]` (just :math:`x_i` without an
        intercept) and :math:`c_i = s_i / \sum s`, in the order
        (class, feature) it is

        .. math::

            \sum_i c_i\,(\mathrm{diag}(S_i) \otimes \tilde x_i \tilde x_i^\top)
            - B^\top B, \qquad B_i = \sqrt{c_i}\; S_i \otimes \tilde x_i,

        two matrix products per block of rows; it is then permuted to the
        order of ``w`` (``W`` row by row, then ``b``) and :math:`\lambda` is
        added to the diagonal of the ``W`` entries.
        """
        self.n_hessians += 1
        k, d = self.n_classes, self.n_features
        dp = d + int(self.fit_intercept)
        p = k * dp
        H = np.zeros((p, p))
        diag_blocks = np.zeros((p, dp))
        step = max(1, HESSIAN_BLOCK_BYTES // (8 * p))
        for start in range(0, self.n_samples, step):
            rows = slice(start, start + step)
            Xb = self.X[rows].astype(np.float64)
            if self.fit_intercept:
                Xb = np.hstack([Xb, np.ones((Xb.shape[0], 1))])
            root_c = np.sqrt(self.row_scale[rows].astype(np.float64))[:, None]
            S = _softmax_columns(self._logits(self.X[rows], w).astype(np.float64)).T
            B = ((root_c * S)[:, :, None] * Xb[:, None, :]).reshape(-1, p)
            H -= B.T @ B
            diag_blocks += B.T @ (root_c * Xb)
        for c in range(k):
            block = slice(c * dp, (c + 1) * dp)
            H[block, block] += diag_blocks[block]
        # (class, feature) order -> the order of w: W row by row, then b
        order = np.arange(p).reshape(k, dp)
        order = np.concatenate([order[:, :d].ravel(), order[:, d:].ravel()])
        H_w: FloatArray = H[np.ix_(order, order)]
        H_w[np.diag_indices(k * d)] += self.l2
        return H_w

    def flat_directions(self) -> FloatArray:
        r"""Orthonormal columns spanning the directions along which nothing changes.

        Softmax is invariant to adding one vector to every class's logits:
        adding :math:`c` to every bias (always, with an intercept) and, with no
        penalty (``C = inf``), adding :math:`c` to column :math:`j` of every
        class's weights. The Hessian is zero along them and the gradient
        orthogonal to them; shape ``(n_params, r)``, possibly ``r = 0``.
        """
        k, d = self.n_classes, self.n_features
        columns = []
        if self.l2 == 0.0:
            for j in range(d):
                u = np.zeros(self.n_params)
                u[j : k * d : d] = 1.0
                columns.append(u)
        if self.fit_intercept:
            u = np.zeros(self.n_params)
            u[k * d :] = 1.0
            columns.append(u)
        if not columns:
            return np.zeros((self.n_params, 0))
        U: FloatArray = np.stack(columns, axis=1) / np.sqrt(k)
        return U

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
        xb = self.X[rows]
        m = len(rows)
        scale = self.row_scale[rows] * xb.dtype.type(self.n_samples / m)
        zt = self._logits(xb, w.astype(xb.dtype, copy=False))
        gt = np.empty_like(zt)
        loss = _cross_entropy_columns(zt, self.y[rows], scale, gt, np.empty(m, dtype=zt.dtype))
        W, _ = self.unpack(w)
        gW = gt @ xb + xb.dtype.type(self.l2) * W
        grad = np.concatenate([gW.ravel(), gt.sum(axis=1)]) if self.fit_intercept else gW.ravel()
        return loss, grad


# products with X of at most SERIAL_PRODUCT_MAX multiply-adds run on one BLAS thread:
# a threaded GEMM of well under a millisecond gains little on a quiet machine and
# waits whole scheduler slices for busy cores on a loaded one (measured on digits,
# load 7 on 2 cores: a default-threads fit 0.17 s with the limit, 6.5 s for
# LogisticRegression without). Below SERIAL_PRODUCT_MIN OpenBLAS runs a GEMM on one
# thread by itself, and the limit's one-off cost (threadpoolctl scans the loaded
# libraries, ~10-60 ms per process) is not paid.
SERIAL_PRODUCT_MIN = 1 << 16
SERIAL_PRODUCT_MAX = 1 << 22


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@functools.cache
def blas_pools() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries (scanned once), or None."""
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - scikit-learn's dependency, always there with it
        return None
    return ThreadpoolController()


def one_blas_thread_already() -> bool:
    """True when the environment already gives BLAS one thread (nothing to limit)."""
    return (os.cpu_count() or 1) == 1 or any(
        os.environ.get(var, "").strip() == "1" for var in BLAS_THREAD_VARIABLES
    )


def blas_threads(obj: MultinomialObjective) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the fit when each product with ``X`` is small, else no change."""
    size = obj.n_samples * obj.n_features * obj.n_classes
    if not SERIAL_PRODUCT_MIN < size <= SERIAL_PRODUCT_MAX or one_blas_thread_already():
        return contextlib.nullcontext()
    pools = blas_pools()
    if pools is None:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    limited: contextlib.AbstractContextManager[Any] = pools.limit(limits=1, user_api="blas")
    return limited


def lbfgs_memory(obj: MultinomialObjective) -> int:
    """L-BFGS pairs to keep: ``LBFGS_MEMORY_LARGE`` when a product with ``X`` is larger
    than ``SERIAL_PRODUCT_MAX`` multiply-adds (an evaluation dwarfs the recursion),
    scikit-learn's 10 otherwise (small fits, where the recursion's overhead shows)."""
    from softgrad.models._solvers import LBFGS_MEMORY, LBFGS_MEMORY_LARGE

    size = obj.n_samples * obj.n_features * obj.n_classes
    return LBFGS_MEMORY_LARGE if size > SERIAL_PRODUCT_MAX else LBFGS_MEMORY
