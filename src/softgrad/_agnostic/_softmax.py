r"""Forward functions: softmax, log_softmax, logsumexp — one Array API code base.

Design notes (read once, they hold for every function here):

* Shift by the max: with :math:`z = x - \max_j x_j` every :math:`e^{z_j} \le 1`,
  so ``exp`` never overflows and the value is unchanged (softmax is shift
  invariant). The shift carries no derivative, so autodiff does not trace it.
* Split the sum at the max: :math:`\sum_j e^{z_j} = t + r` where :math:`t` counts
  the entries equal to the max (each contributes exactly 1) and
  :math:`r = \sum_j (e^{z_j} - [z_j = 0])` holds the rest. Then
  :math:`\log\sum_j e^{z_j} = \log t + \operatorname{log1p}(r/t)`, which keeps
  log_softmax and logsumexp accurate when every other probability is tiny
  (the defect of pytorch#113708 and scipy#18295). Writing the rest as
  ``e - [z = 0]`` keeps its derivative :math:`e^{z_j}` for every entry.
* Masks: entries with ``where=False`` and entries equal to −inf are replaced by
  a −inf *constant* before anything else, so no derivative, however large the
  masked value, can reach them (the NaN gradient of jax#17117 cannot happen).
  A row with no entry left gives softmax 0, log_softmax −inf, logsumexp −inf.
* +inf entries: the limit of softmax as those logits grow together is a
  uniform distribution over them, and that is what a row holding +inf gives.
* NaN anywhere in a row makes that row NaN, and only that row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from softgrad._lib._array import (
    Array,
    Namespace,
    array_namespace,
    constant,
    device,
    normalize_axis,
    stop_gradient,
    to_compute,
    validate_where,
)

__all__ = ["checked", "log_softmax", "logsumexp", "softmax"]


@dataclass(frozen=True)
class _Rows:
    """The shared pieces of one reduction over ``axis`` (all keep the reduced axis)."""

    z: Array  # x - shift, −inf where excluded; 0 exactly at the row's max
    exp_z: Array  # exp(z)
    total: Array  # Σ exp(z), 0 for a row with nothing left
    log_total: Array  # log Σ exp(z) by the log1p split; 0 (not −inf) for an empty row
    empty: Array  # True where the row has no entry left (fully masked or all −inf)
    shift: Array  # the max where finite, else 0
    pos_inf: Array  # True where the row's max is +inf
    row_max: Array  # the max (±inf or NaN on special rows), autodiff cut


def _rows(xp: Namespace, x: Array, axis: int, where: Array | None) -> _Rows:
    # No infinite constant is built unless the input holds one or a mask
    # excludes an entry: under ``jax.debug_infs`` finite input makes no inf.
    zero = constant(xp, 0.0, x)
    keep = xp.logical_not(xp.logical_and(xp.isinf(x), x < zero))  # NaN stays, poisons its row
    # excluded entries become constants, so no derivative reaches them: the
    # −inf entries are their own value with autodiff cut, masked ones −inf
    x = xp.where(keep, x, stop_gradient(xp, x))
    if where is not None:
        x = xp.where(where, x, constant(xp, -math.inf, x))

    row_max = stop_gradient(xp, xp.max(x, axis=axis, keepdims=True))
    row_inf = xp.isinf(row_max)
    pos_inf = xp.logical_and(row_inf, row_max > zero)
    shift = xp.where(xp.isfinite(row_max), row_max, zero)
    z = x - shift
    # a row holding +inf: the limit shares the mass among its +inf entries
    # (−row_max is the −inf of such a row, built from the data)
    at_inf = xp.where(xp.logical_and(xp.isinf(x), x > zero), zero, -row_max)
    z = xp.where(pos_inf, at_inf, z)

    exp_z = xp.exp(z)
    at_max = xp.astype(z == zero, x.dtype)
    n_max = xp.sum(at_max, axis=axis, keepdims=True)
    rest = xp.sum(exp_z - at_max, axis=axis, keepdims=True)
    total = n_max + rest

    empty = xp.logical_and(row_inf, row_max < zero)  # nothing left (a NaN max is not empty)
    safe_n = xp.where(n_max == zero, constant(xp, 1.0, x), n_max)
    log_total = xp.log(safe_n) + xp.log1p(rest / safe_n)
    return _Rows(z, exp_z, total, log_total, empty, shift, pos_inf, row_max)


def checked(
    x: Array, axis: int, where: Array | None, *, func: str = "softmax", name: str = "x"
) -> tuple[Namespace, Array, Any, int, Array | None]:
    """Check the arguments of a function of one array once.

    Returns the namespace, ``x`` in its compute dtype, the dtype to return,
    the axis made non-negative and the mask broadcast to ``x.shape`` (or None).
    """
    xp = array_namespace(x, where, names=(name, "where"))
    x, out_dtype = to_compute(xp, x, name=name, func=func)
    axis = normalize_axis(axis, x.ndim)
    return xp, x, out_dtype, axis, validate_where(xp, where, tuple(x.shape))


def _empty_axis(x: Array, axis: int) -> bool:
    return bool(x.shape[axis] == 0)


def softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Softmax along ``axis``: non-negative entries that sum to one.

    Parameters
    ----------
    x : array, shape (..., n, ...)
        Logits. Integer and boolean input is promoted to the default float;
        float16/bfloat16 are computed in float32 and returned in their dtype.
    axis : int, default -1
        The axis the probabilities are spread over.
    where : bool array broadcastable to ``x.shape``, optional
        Entries to include. Excluded entries get probability 0.

    Returns
    -------
    array, same shape as ``x``
        :math:`S(x)`; 0 at excluded and −inf entries, all 0 on a row with no
        entry left, uniform over the +inf entries of a row holding +inf, NaN on
        a row holding NaN.

    Notes
    -----
    .. math::

        S_i(x) = \frac{e^{x_i}}{\sum_j e^{x_j}}
               = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad m = \max_j x_j,

    and its derivative is :math:`\partial S_i / \partial x_j = S_i(\delta_{ij} - S_j)`,
    i.e. :math:`J = \operatorname{diag}(S) - S S^\top` (see
    :func:`softmax_jacobian`, :func:`softmax_vjp`). Subtracting the max keeps
    every exponential in :math:`(0, 1]`; the computed value is within a few
    units of :math:`\epsilon(|x_i - m| + n)` of the exact one [1]_.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the
       log-sum-exp and softmax functions", IMA J. Numer. Anal. 41 (2021),
       doi:10.1093/imanum/draa038.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax
    >>> softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax(np.array([1.0, 2.0, 3.0]), where=np.array([True, True, False]))
    array([0.26894142, 0.73105858, 0.        ])
    >>> softmax(np.array([0.0, np.inf, np.inf]))
    array([0. , 0.5, 0.5])
    """
    xp, x, out_dtype, axis, where = checked(x, axis, where, func="softmax")
    if _empty_axis(x, axis):
        return xp.astype(x, out_dtype)
    r = _rows(xp, x, axis, where)
    s = r.exp_z / xp.where(r.empty, constant(xp, 1.0, x), r.total)
    return xp.astype(s, out_dtype)


def log_softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Logarithm of :func:`softmax`, accurate where the probabilities underflow.

    Parameters
    ----------
    x : array, shape (..., n, ...)
        Logits (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to normalise over.
    where : bool array broadcastable to ``x.shape``, optional
        Entries to include; excluded entries give −inf.

    Returns
    -------
    array, same shape as ``x``
        :math:`\log S(x)`; −inf at excluded and −inf entries and on a row with
        no entry left.

    Notes
    -----
    .. math::

        \log S_i(x) = (x_i - m) - \log\Bigl(t + \sum_{j:\,x_j<m} e^{x_j - m}\Bigr),

    with :math:`m` the max and :math:`t` the number of entries equal to it. The
    logarithm is taken as :math:`\log t + \operatorname{log1p}(r/t)`, so the
    largest entry keeps full relative accuracy even when every other
    probability is below machine epsilon (pytorch#113708 is the failure this
    avoids). Derivative: :math:`\partial \log S_i/\partial x_j = \delta_{ij} - S_j`.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax
    >>> log_softmax(np.array([1.0, 2.0, 3.0]))
    array([-2.40760596, -1.40760596, -0.40760596])
    >>> float(log_softmax(np.array([0.0, -50.0]))[0])  # -exp(-50), not 0
    -1.9287498479639178e-22
    """
    xp, x, out_dtype, axis, where = checked(x, axis, where, func="log_softmax")
    if _empty_axis(x, axis):
        return xp.astype(x, out_dtype)
    r = _rows(xp, x, axis, where)
    return xp.astype(r.z - r.log_total, out_dtype)


def logsumexp(
    x: Array, /, axis: int = -1, *, where: Array | None = None, keepdims: bool = False
) -> Array:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    Parameters
    ----------
    x : array, shape (..., n, ...)
        Input (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to reduce.
    where : bool array broadcastable to ``x.shape``, optional
        Entries to include in the sum.
    keepdims : bool, default False
        Keep the reduced axis with length 1.

    Returns
    -------
    array
        :math:`\log\sum_j e^{x_j}`: −inf for an empty or fully excluded row,
        +inf for a row holding +inf, NaN for a row holding NaN.

    Notes
    -----
    .. math::

        \operatorname{LSE}(x) = m + \log t + \operatorname{log1p}\Bigl(\frac{1}{t}
        \sum_{j:\,x_j<m} e^{x_j - m}\Bigr), \qquad
        \frac{\partial\,\operatorname{LSE}}{\partial x_j} = S_j(x).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import logsumexp
    >>> float(logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log 2, no overflow
    1000.6931471805599
    >>> float(logsumexp(np.array([0.0, -40.0])))  # scipy#18295 returned 0 here
    4.248354255291589e-18
    """
    xp, x, out_dtype, axis, where = checked(x, axis, where, func="logsumexp")
    if _empty_axis(x, axis):
        shape = list(x.shape)
        shape[axis] = 1
        out = xp.full(tuple(shape), -math.inf, dtype=x.dtype, device=device(x))
    else:
        r = _rows(xp, x, axis, where)
        # ±inf rows take their max (+inf or −inf): no infinite constant is built
        out = xp.where(xp.logical_or(r.pos_inf, r.empty), r.row_max, r.shift + r.log_total)
    if not keepdims:
        out = xp.squeeze(out, axis=axis)
    return xp.astype(out, out_dtype)
