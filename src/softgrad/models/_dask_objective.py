r"""The multinomial objective of a Dask array: each evaluation is one pass over its row blocks.

The math is :class:`~softgrad.models.MultinomialObjective`'s, split by rows.
The data term is a sum over rows, so over row blocks :math:`X_1, \dots, X_B`:

.. math::

    f(w) = \sum_b \sum_{i \in b} \frac{s_i}{\sum s}\,\mathrm{CE}_i + \frac{\lambda}{2}\lVert W\rVert^2,
    \qquad
    \nabla_W f = \sum_b G_b^\top X_b + \lambda W, \qquad \nabla_b f = \sum_b G_b^\top \mathbf 1,

and the Hessian-vector product is likewise a sum of per-block terms
:math:`R_b^\top X_b` with :math:`R_b` the post's Jacobian
:math:`\mathrm{diag}(S) - S S^\top` applied to each row of :math:`U_b = X_b V^\top + v_b`.
Each block's task computes its loss, gradient (or HVP) and row weight in one
flat float64 vector of ``n_params + 2`` entries, next to its data, and Dask
sums the vectors in a tree (``Array.sum``); only those small vectors travel.
The driver holds only the parameter vector: the solvers of
:mod:`softgrad.models._solvers` run unchanged on top.

The loss and the gradient come from the same pass (one product to get the
logits, one back through :math:`X^\top`), so :meth:`DaskObjective.loss` also
caches the gradient for the ``loss_and_grad`` that follows an accepted
line-search step. A Newton-CG row subset (``hessp(w, rows)``) is split by
block on the driver, so each block's task gets only its own rows and the
result equals the in-memory subsampled product.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad._agnostic._losses import cross_entropy_hvp
from softgrad._delegation import cross_entropy_and_grad
from softgrad._lib._extras import require
from softgrad.models._objective import blas_pools, one_blas_thread_already

__all__ = [
    "BlockBatches",
    "DaskObjective",
    "OneBlasThread",
    "block_hvp",
    "block_loss_and_grad",
    "one_blas_thread",
]

FloatArray = NDArray[np.floating[Any]]


class OneBlasThread:
    """One BLAS thread while any caller is inside; the original count when the last leaves.

    A block's products (``X @ Wᵀ``, ``Gᵀ X``) are skinny: thousands of rows,
    a few classes. OpenBLAS splits them over its threads, and where Dask
    runs several tasks at once in one process (the local threaded scheduler,
    ``LocalCluster(processes=False)``, a worker with several threads) those
    threads wait on each other's cores: measured on 2 busy cores, ``Gᵀ X`` of
    750,000 rows took 0.47-1.8 s with 2 BLAS threads and 0.06 s with one.
    Counting the callers keeps one task's exit from restoring the threads
    under another task still running; the limit is process-wide, as BLAS's
    thread count is. Nothing is changed where the environment already asks
    for one thread (Dask's worker processes set ``OPENBLAS_NUM_THREADS=1``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._limit: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0 and not one_blas_thread_already():
                pools = blas_pools()
                self._limit = None if pools is None else pools.limit(limits=1, user_api="blas")
            self._inside += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._limit is not None:
                self._limit.restore_original_limits()
                self._limit = None


one_blas_thread = OneBlasThread()
"""The process's :class:`OneBlasThread`: every block task enters this one."""


def _unpack(
    w: FloatArray, k: int, d: int, fit_intercept: bool, dtype: Any
) -> tuple[FloatArray, FloatArray | None]:
    W = w[: k * d].reshape(k, d).astype(dtype, copy=False)
    b = w[k * d :].astype(dtype, copy=False) if fit_intercept else None
    return W, b


def _affine(X: FloatArray, W: FloatArray, b: FloatArray | None) -> FloatArray:
    z: FloatArray = X @ W.T
    if b is not None:
        z += b
    return z


def _flat(
    value: float, gW: FloatArray, gb: FloatArray | None, weight: float, dtype: Any
) -> FloatArray:
    """``[value, gW.ravel(), gb, weight]`` as one vector (float64 for the sums)."""
    parts = [np.array([value]), gW.ravel()]
    if gb is not None:
        parts.append(gb)
    parts.append(np.array([weight]))
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])


def block_loss_and_grad(
    X: FloatArray,
    y: NDArray[np.intp],
    s: FloatArray | None,
    w: FloatArray,
    *,
    n_classes: int,
    fit_intercept: bool,
    total: float,
) -> FloatArray:
    r"""One block's share of the data loss and its gradient, divided by ``total``.

    Returns ``[Σ sᵢ CEᵢ, (Gᵀ X).ravel(), Gᵀ 1, Σ sᵢ] / total`` (the intercept
    part only with ``fit_intercept``) with :math:`G = \mathrm{diag}(s)\,(S - Y)`,
    in float64; the products stay in ``X``'s dtype. ``s`` of ``None`` means
    weights of 1.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    >>> out = block_loss_and_grad(X, y, None, np.zeros(6), n_classes=2,
    ...                           fit_intercept=True, total=2.0)
    >>> bool(np.isclose(out[0], np.log(2))), float(out[-1])  # mean loss, share of the weight
    (True, 1.0)
    """
    k, d = n_classes, X.shape[1]
    W, b = _unpack(w, k, d, fit_intercept, X.dtype)
    with one_blas_thread:
        losses, g = cross_entropy_and_grad(_affine(X, W, b), y, reduction="none")
        if s is None:
            value, weight = float(np.sum(losses, dtype=np.float64)), float(X.shape[0])
        else:
            g *= s[:, None].astype(g.dtype, copy=False)
            value, weight = float(np.dot(losses.astype(np.float64), s)), float(np.sum(s))
        gb = g.sum(axis=0, dtype=np.float64) if fit_intercept else None
        out = _flat(value, g.T @ X, gb, weight, np.float64)
    out /= total
    return out


def block_hvp(
    X: FloatArray,
    y: NDArray[np.intp],
    s: FloatArray | None,
    rows: NDArray[np.intp] | None,
    w: FloatArray,
    v: FloatArray,
    *,
    n_classes: int,
    fit_intercept: bool,
) -> FloatArray:
    r"""One block's unnormalised Hessian-vector product term, with the weight of its rows.

    Returns ``[0, (Rᵀ X).ravel(), Rᵀ 1, Σ sᵢ]`` over the block's ``rows``
    (all rows when ``None``), where row :math:`i` of :math:`R` is
    :math:`s_i (\mathrm{diag}(S_i) - S_i S_i^\top) u_i`. The driver divides the
    tree sum by the last entry, the subset's total weight.
    """
    if rows is not None:
        X, y = X[rows], y[rows]
        s = None if s is None else s[rows]
    k, d = n_classes, X.shape[1]
    W, b = _unpack(w, k, d, fit_intercept, X.dtype)
    V, vb = _unpack(v, k, d, fit_intercept, X.dtype)
    with one_blas_thread:
        r = cross_entropy_hvp(_affine(X, W, b), y, _affine(X, V, vb), reduction="none")
        weight = float(X.shape[0])
        if s is not None:
            r *= s[:, None].astype(r.dtype, copy=False)
            weight = float(np.sum(s))
        rb = r.sum(axis=0, dtype=np.float64) if fit_intercept else None
        return _flat(0.0, r.T @ X, rb, weight, np.float64)


class DaskObjective:
    r"""The penalised multinomial loss over the row blocks of Dask arrays.

    Has the interface of :class:`~softgrad.models.MultinomialObjective` that
    the solvers use (``loss``, ``loss_and_grad``, ``hessp``, ``pack``,
    ``unpack``, ``penalty``) plus ``block_loss_and_grad`` for the stochastic
    solvers, whose mini-batches are the blocks.

    Parameters
    ----------
    X : dask.array.Array, shape (n_samples, n_features)
        Float32 or float64, one chunk across the columns.
    y : dask.array.Array of int, shape (n_samples,)
        Class indices, chunked like ``X``'s rows.
    n_classes : int
    C : float, default 1.0
        Inverse penalty strength; ``np.inf`` for none.
    fit_intercept : bool, default True
    sample_weight : dask.array.Array, shape (n_samples,), optional
        Chunked like ``X``'s rows; its sum ``sw_sum`` must be given with it.
    sw_sum : float, optional
        ``Σ sᵢ`` (computed once by the caller, in the pass that checks the data).
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        *,
        n_classes: int,
        C: float = 1.0,
        fit_intercept: bool = True,
        sample_weight: Any = None,
        sw_sum: float | None = None,
    ) -> None:
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n_classes = n_classes
        self.n_samples, self.n_features = (int(n) for n in X.shape)
        self.dtype = np.dtype(X.dtype)
        self.fit_intercept = fit_intercept
        self.sw_sum = float(self.n_samples) if sw_sum is None else float(sw_sum)
        self.sw_mean = self.sw_sum / self.n_samples
        self.l2 = 1.0 / (C * self.sw_sum)
        self.n_params = n_classes * self.n_features + (n_classes if fit_intercept else 0)
        self.offsets = np.cumsum((0, *X.chunks[0]))  # first row of each block
        self.n_blocks = len(X.chunks[0])
        self._blocks = list(
            zip(
                X.to_delayed().ravel(),
                y.to_delayed().ravel(),
                [None] * self.n_blocks
                if sample_weight is None
                else list(sample_weight.to_delayed().ravel()),
                strict=True,
            )
        )
        self.n_evals = self.n_grads = 0  # passes over the data for losses and gradients
        self.hvp_rows = 0.0
        self._w: FloatArray | None = None
        self._cache: tuple[float, FloatArray] | None = None

    @property
    def _options(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes, "fit_intercept": self.fit_intercept}

    def unpack(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Views ``(W, b)`` of a flat vector (``b`` is zeros without an intercept)."""
        k, d = self.n_classes, self.n_features
        b = w[k * d :] if self.fit_intercept else np.zeros(k, dtype=w.dtype)
        return w[: k * d].reshape(k, d), b

    def pack(self, W: FloatArray, b: FloatArray, dtype: Any = np.float64) -> FloatArray:
        """The flat vector ``[W.ravel(), b]`` (``b`` dropped without an intercept)."""
        parts = [np.asarray(W, dtype=dtype).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(b, dtype=dtype))
        return np.concatenate(parts)

    def penalty(self, w: FloatArray) -> float:
        r""":math:`\tfrac{\lambda}{2}\lVert W\rVert_F^2` (0 for ``C = inf``)."""
        W, _ = self.unpack(w)
        return 0.5 * self.l2 * float(np.vdot(W, W))

    def _tree_sum(self, tasks: Sequence[Any]) -> FloatArray:
        """Dask's tree reduction of the blocks' flat vectors, computed."""
        da = require("dask.array", "dask", feature="SoftmaxClassifier on Dask inputs")
        size = self.n_params + 2
        stacked = da.stack([da.from_delayed(t, shape=(size,), dtype=np.float64) for t in tasks])
        out: FloatArray = np.asarray(stacked.sum(axis=0).compute(), dtype=np.float64)
        return out

    def _pass(self, w: FloatArray, blocks: Sequence[int] | None = None) -> FloatArray:
        """``[loss, gradient, weight]`` of the data term over ``blocks`` (all by default)."""
        delayed = require("dask", "dask").delayed
        chosen = range(self.n_blocks) if blocks is None else blocks
        total = (
            self.sw_sum
            if blocks is None
            else self.sw_mean * float(sum(self.offsets[i + 1] - self.offsets[i] for i in chosen))
        )
        func = delayed(block_loss_and_grad, pure=True)
        return self._tree_sum(
            [func(*self._blocks[i], w, total=total, **self._options) for i in chosen]
        )

    def _data_loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        if self._w is not None and self._cache is not None and np.array_equal(self._w, w):
            return self._cache
        out = self._pass(w)
        self.n_evals += 1
        self._w, self._cache = w.copy(), (float(out[0]), out[1:-1])
        return self._cache

    def loss(self, w: FloatArray) -> float:
        """The objective at ``w``: one pass, which also caches the gradient there."""
        return self._data_loss_and_grad(w)[0] + self.penalty(w)

    def loss_and_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient: ``Σ_b G_bᵀ X_b + λW`` and ``Σ_b G_bᵀ 1``."""
        data_loss, g = self._data_loss_and_grad(w)
        self.n_grads += 1
        W, _ = self.unpack(w)
        grad = g.copy()
        grad[: W.size] += self.l2 * W.ravel()
        return data_loss + self.penalty(w), grad

    def _rows_by_block(self, rows: NDArray[np.intp]) -> list[NDArray[np.intp] | None]:
        """Each block's local indices of the sorted global ``rows``."""
        cuts = np.searchsorted(rows, self.offsets)
        return [rows[cuts[i] : cuts[i + 1]] - self.offsets[i] for i in range(self.n_blocks)]

    def hessp(
        self, w: FloatArray, rows: NDArray[np.intp] | None = None
    ) -> Callable[[FloatArray], FloatArray]:
        """``v ↦ H(w) v``, one pass per product; on ``rows`` only when given (Newton-CG)."""
        delayed = require("dask", "dask").delayed
        local: list[NDArray[np.intp] | None] = (
            [None] * self.n_blocks if rows is None else self._rows_by_block(np.sort(rows))
        )
        chosen = [i for i, r in enumerate(local) if r is None or len(r) > 0]
        n_rows = self.n_samples if rows is None else len(rows)
        func = delayed(block_hvp, pure=True)

        def hvp(v: FloatArray) -> FloatArray:
            self.hvp_rows += n_rows
            X, y, s = zip(*(self._blocks[i] for i in chosen), strict=True)
            out = self._tree_sum(
                [
                    func(X[j], y[j], s[j], local[i], w, v, **self._options)
                    for j, i in enumerate(chosen)
                ]
            )
            h: FloatArray = out[1:-1] / max(float(out[-1]), float(np.finfo(np.float64).tiny))
            V, _ = self.unpack(v)
            h[: V.size] += self.l2 * V.ravel()
            return h

        return hvp

    def batch_loss_and_grad(
        self, blocks: NDArray[np.intp], w: FloatArray
    ) -> tuple[float, FloatArray]:
        """A mini-batch estimate on whole blocks (the stochastic solvers' batches).

        Unbiased like :meth:`MultinomialObjective.batch_loss_and_grad`: the
        blocks' rows weighted by :math:`s_i / (m \\bar s)`; the penalty's
        gradient is exact. The gradient is returned in ``w``'s dtype.
        """
        out = self._pass(np.asarray(w, dtype=np.float64), [int(i) for i in blocks])
        W, _ = self.unpack(w)
        grad = out[1:-1]
        grad[: W.size] += self.l2 * W.ravel().astype(np.float64)
        return float(out[0]), grad.astype(w.dtype, copy=False)


class BlockBatches:
    """The stochastic solvers' view of a :class:`DaskObjective`: "rows" are blocks.

    ``n_samples`` is the number of blocks, so :func:`~softgrad.models._solvers.stochastic`
    with ``batch_size=1`` takes one block per update, in a fresh random order
    each epoch.
    """

    def __init__(self, obj: DaskObjective) -> None:
        self.obj = obj
        self.n_samples = obj.n_blocks

    def batch_loss_and_grad(
        self, rows: NDArray[np.intp], w: FloatArray
    ) -> tuple[float, FloatArray]:
        return self.obj.batch_loss_and_grad(rows, w)

    def penalty(self, w: FloatArray) -> float:
        return self.obj.penalty(w)
