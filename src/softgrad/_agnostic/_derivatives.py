r"""Closed-form derivatives of softmax and log_softmax.

The post's result is the whole module:

.. math::

    \frac{\partial S_i}{\partial x_j} = S_i(\delta_{ij} - S_j), \qquad
    \frac{\partial \log S_i}{\partial x_j} = \delta_{ij} - S_j .

The Jacobians are built only when asked for (``*_jacobian``, O(n²) memory).
Applying one to a vector never builds it: the VJP/JVP functions are O(n) and
take the softmax *output* ``s``, which is what a backward pass has saved.
Because :math:`J = \operatorname{diag}(S) - S S^\top` is symmetric, the softmax
VJP and JVP are the same formula. Excluded entries (``where=False``, −inf
logits) have derivative exactly 0, never NaN.
"""

from __future__ import annotations

import math

from softgrad._agnostic._docs import fill_doc
from softgrad._agnostic._softmax import checked, softmax
from softgrad._lib._array import (
    Array,
    Namespace,
    array_namespace,
    constant,
    device,
    to_compute,
)

__all__ = [
    "log_softmax_jacobian",
    "log_softmax_jvp",
    "log_softmax_vjp",
    "softmax_hessian",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]


_DOC = fill_doc(
    x_axis="""
        x : array, shape (..., n, ...)
            Logits.
        axis : int, default -1
            The softmax axis.
        """,
    axis_where="""
        axis : int, default -1
            The softmax axis.
        where : bool array, optional
            Entries included in the forward pass; the result is 0 elsewhere.
        """,
)


def _included(xp: Namespace, x: Array, where: Array | None) -> Array:
    """Entries that take part: not masked out and not −inf."""
    keep = x != constant(xp, -math.inf, x)
    return keep if where is None else xp.logical_and(keep, where)


def _zero_outside(xp: Namespace, where: Array | None, a: Array) -> Array:
    """``a`` with the entries outside the mask set to 0 (``a`` itself without a mask)."""
    return a if where is None else xp.where(where, a, constant(xp, 0.0, a))


def _prepare_pair(
    s: Array, v: Array, axis: int, where: Array | None, names: tuple[str, str]
) -> tuple[Namespace, Array, Array, int, Array | None, object]:
    array_namespace(s, v, where, names=(*names, "where"))  # both arrays of one library
    if tuple(s.shape) != tuple(v.shape):
        msg = (
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(s.shape)} and "
            f"{tuple(v.shape)}"
        )
        raise ValueError(msg)
    xp, s, out_dtype, axis, where = checked(s, axis, where, name=names[0])
    v, _ = to_compute(xp, v, name=names[1])
    if v.dtype != s.dtype:
        v = xp.astype(v, s.dtype)
    return xp, s, v, axis, where, out_dtype


@_DOC
def softmax_jacobian(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""The full Jacobian of :func:`softmax`, :math:`J = \operatorname{diag}(S) - S S^\top`.

    Parameters
    ----------
    {{x_axis}}
    where : bool array broadcastable to ``x.shape``, optional
        Entries to include (as in :func:`softmax`).

    Returns
    -------
    array, shape (..., n, n)
        ``J[..., i, j] = ∂S_i/∂x_j`` with the softmax axis moved last (the other
        axes keep their order). Rows and columns of excluded entries are 0.

    Notes
    -----
    .. math::

        J_{ij} = \frac{\partial S_i}{\partial x_j} = S_i(\delta_{ij} - S_j).

    :math:`J` is symmetric, its rows sum to 0 (softmax is shift invariant), it
    is positive semidefinite and singular. To apply it, use :func:`softmax_vjp`
    or :func:`softmax_jvp`, which cost O(n) instead of O(n²).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax_jacobian
    >>> softmax_jacobian(np.log(np.array([0.5, 0.25, 0.25])))
    array([[ 0.25  , -0.125 , -0.125 ],
           [-0.125 ,  0.1875, -0.0625],
           [-0.125 , -0.0625,  0.1875]])
    """
    xp = array_namespace(x, where, names=("x", "where"))
    s = softmax(x, axis, where=where)
    s = xp.moveaxis(s, axis, -1)
    n = s.shape[-1]
    eye = xp.eye(n, dtype=s.dtype, device=device(s))
    return s[..., :, None] * (eye - s[..., None, :])


@_DOC
def log_softmax_jacobian(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""The full Jacobian of :func:`log_softmax`, :math:`\delta_{ij} - S_j`.

    Parameters
    ----------
    {{x_axis}}
    where : bool array broadcastable to ``x.shape``, optional
        Entries to include.

    Returns
    -------
    array, shape (..., n, n)
        ``J[..., i, j] = ∂ log S_i/∂x_j``, softmax axis moved last. Rows and
        columns of excluded entries (masked or −inf, whose log-probability is
        the constant −inf) are 0.

    Notes
    -----
    .. math::

        \frac{\partial \log S_i}{\partial x_j} = \delta_{ij} - S_j,
        \qquad J = I - \mathbf{1} S^\top .

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax_jacobian
    >>> log_softmax_jacobian(np.log(np.array([0.5, 0.5])))
    array([[ 0.5, -0.5],
           [-0.5,  0.5]])
    """
    xp, xc, _, ax, mask = checked(x, axis, where)
    s = softmax(x, ax, where=where)
    keep = _included(xp, xc, mask)
    s = xp.moveaxis(s, ax, -1)
    keep = xp.astype(xp.moveaxis(keep, ax, -1), s.dtype)
    eye = xp.eye(s.shape[-1], dtype=s.dtype, device=device(s))
    return (eye - s[..., None, :]) * keep[..., :, None] * keep[..., None, :]


@_DOC
def softmax_vjp(s: Array, g: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Vector–Jacobian product of softmax, :math:`g^\top J = s \odot (g - \langle g, s\rangle)`.

    This is the backward pass of softmax and the answer to the post's readers'
    question: the per-output derivatives combine by the chain rule,
    :math:`\partial L/\partial x_j = \sum_i \partial L/\partial S_i \cdot
    \partial S_i/\partial x_j` — they are *added*, weighted by the upstream
    gradient.

    Parameters
    ----------
    s : array, shape (..., n, ...)
        The softmax output (what the forward pass saved).
    g : array, same shape as ``s``
        Upstream gradient :math:`\partial L / \partial S`.
    {{axis_where}}

    Returns
    -------
    array, same shape as ``s``
        :math:`\partial L / \partial x`.

    Notes
    -----
    .. math::

        (g^\top J)_j = \sum_i g_i S_i(\delta_{ij} - S_j)
                     = S_j \Bigl(g_j - \sum_i g_i S_i\Bigr).

    O(n) time and memory; the Jacobian is never built.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax, softmax_vjp
    >>> s = softmax(np.array([1.0, 2.0, 3.0]))
    >>> softmax_vjp(s, np.array([1.0, 0.0, 0.0]))  # gradient of S_1
    array([ 0.08192507, -0.02203304, -0.05989202])
    """
    xp, s, g, axis, where, out_dtype = _prepare_pair(s, g, axis, where, ("s", "g"))
    g = _zero_outside(xp, where, g)
    out = s * (g - xp.sum(g * s, axis=axis, keepdims=True))
    return xp.astype(_zero_outside(xp, where, out), out_dtype)


@_DOC
def softmax_jvp(s: Array, v: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Jacobian–vector product of softmax, :math:`J v = s \odot (v - \langle s, v\rangle)`.

    Parameters
    ----------
    s : array, shape (..., n, ...)
        The softmax output.
    v : array, same shape as ``s``
        Tangent (a direction in logit space).
    {{axis_where}}

    Returns
    -------
    array, same shape as ``s``
        The directional derivative of softmax along ``v``.

    Notes
    -----
    .. math::

        (J v)_i = \sum_j S_i(\delta_{ij} - S_j) v_j = S_i\Bigl(v_i - \sum_j S_j v_j\Bigr).

    The same formula as :func:`softmax_vjp` because :math:`J` is symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax_jvp
    >>> s = np.array([0.5, 0.25, 0.25])
    >>> softmax_jvp(s, np.ones(3))  # shifting every logit changes nothing
    array([0., 0., 0.])
    """
    return softmax_vjp(s, v, axis, where=where)


def log_softmax_vjp(s: Array, g: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Vector–Jacobian product of log_softmax, :math:`g - s \sum_i g_i`.

    Parameters
    ----------
    s : array, shape (..., n, ...)
        The softmax output (``exp(log_softmax(x))``).
    g : array, same shape as ``s``
        Upstream gradient :math:`\partial L / \partial \log S`.
    axis : int, default -1
        The softmax axis.
    where : bool array, optional
        Entries included in the forward pass; the result is 0 elsewhere and
        ``g`` there is ignored.

    Returns
    -------
    array, same shape as ``s``
        :math:`\partial L / \partial x`, 0 at the excluded entries.

    Notes
    -----
    .. math::

        \sum_i g_i (\delta_{ij} - S_j) = g_j - S_j \sum_i g_i .

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax_vjp
    >>> s = np.array([0.5, 0.25, 0.25])
    >>> log_softmax_vjp(s, np.array([-1.0, 0.0, 0.0]))  # cross-entropy, label 0: S - y
    array([-0.5 ,  0.25,  0.25])
    """
    xp, s, g, axis, where, out_dtype = _prepare_pair(s, g, axis, where, ("s", "g"))
    g = _zero_outside(xp, where, g)
    out = g - s * xp.sum(g, axis=axis, keepdims=True)
    return xp.astype(_zero_outside(xp, where, out), out_dtype)


@_DOC
def log_softmax_jvp(s: Array, v: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Jacobian–vector product of log_softmax, :math:`v - \langle s, v\rangle`.

    Parameters
    ----------
    s : array, shape (..., n, ...)
        The softmax output.
    v : array, same shape as ``s``
        Tangent.
    {{axis_where}}

    Returns
    -------
    array, same shape as ``s``

    Notes
    -----
    .. math::

        \sum_j (\delta_{ij} - S_j) v_j = v_i - \sum_j S_j v_j .

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax_jvp
    >>> log_softmax_jvp(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    array([ 0.5, -0.5])
    """
    xp, s, v, axis, where, out_dtype = _prepare_pair(s, v, axis, where, ("s", "v"))
    v = _zero_outside(xp, where, v)
    out = v - xp.sum(s * v, axis=axis, keepdims=True)
    return xp.astype(_zero_outside(xp, where, out), out_dtype)


@_DOC
def softmax_hessian(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Second derivatives of softmax, :math:`H_{ijk} = \partial^2 S_i / \partial x_j \partial x_k`.

    Parameters
    ----------
    {{x_axis}}
    where : bool array, optional
        Entries to include; every entry of ``H`` that involves an excluded
        index is 0.

    Returns
    -------
    array, shape (..., n, n, n)
        ``H[..., i, j, k]``, softmax axis moved last. Symmetric in ``j, k``.

    Notes
    -----
    Differentiating :math:`S_i(\delta_{ij} - S_j)` once more with respect to
    :math:`x_k`:

    .. math::

        H_{ijk} = S_i(\delta_{ik} - S_k)(\delta_{ij} - S_j) - S_i S_j(\delta_{jk} - S_k).

    Memory is O(n³): meant for small n (teaching, checking, Newton steps on
    few classes).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax_hessian
    >>> h = softmax_hessian(np.log(np.array([0.75, 0.25])))
    >>> h[0]  # ∂²S_1/∂x_j∂x_k = S_1(1-S_1)(1-2S_1) times [[1, -1], [-1, 1]]
    array([[-0.09375,  0.09375],
           [ 0.09375, -0.09375]])
    """
    xp = array_namespace(x, where, names=("x", "where"))
    s = softmax(x, axis, where=where)
    s = xp.moveaxis(s, axis, -1)
    eye = xp.eye(s.shape[-1], dtype=s.dtype, device=device(s))
    s_i = s[..., :, None, None]
    s_j = s[..., None, :, None]
    s_k = s[..., None, None, :]
    d_ij = eye[:, :, None]
    d_ik = eye[:, None, :]
    d_jk = eye[None, :, :]
    return s_i * (d_ik - s_k) * (d_ij - s_j) - s_i * s_j * (d_jk - s_k)
