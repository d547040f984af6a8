r"""softmax, log_softmax, logsumexp and cross-entropy for JAX, with closed-form derivatives.

Each of the three row functions is one ``jax.custom_jvp`` whose tangent rule
is the closed form, linear in the tangent, so JAX transposes it for reverse
mode and ``jit``, ``grad``, ``vmap``, ``jvp``, ``jacfwd``/``jacrev`` and
``hessian`` all compose (the rules call the custom functions themselves, so
second derivatives are closed-form too):

.. math::

    dS = S \odot (dx - \langle dx, S\rangle), \qquad
    d\log S = dx - \langle dx, S\rangle, \qquad
    d\,\mathrm{LSE} = \langle dx, S\rangle .

Cross-entropy is :math:`-\sum_c B_c \log S_c` on top of the log_softmax
above, with the effective target :math:`B` and the reduction of the Array API
reference (:mod:`softgrad._agnostic._losses`); reverse mode through it gives
:math:`(a S - B)/\text{denominator}` from the closed forms.

Numerics (the behaviour contract of :func:`softgrad.softmax`):

* Excluded entries (``where=False`` and −inf) are *selected out* before
  anything is computed from them: no derivative reaches them and their
  tangents are zeroed, so no NaN appears in a gradient however large or
  non-finite the masked values are (the case of jax#17117).
* Finite input never makes an infinite intermediate: excluded entries are
  replaced by the dtype's lowest finite value for the max and by 0 in the
  exponent, and an empty row's −inf comes from ``log(0)`` of its own sum. The
  only infinities are the documented results (log_softmax at an excluded
  entry, logsumexp of a row with no entry left), so ``jax.debug_infs(True)``
  passes on finite input.
* A row holding +inf gives the limit (the mass shared equally among its +inf
  entries); NaN in a row makes that row NaN, masked entries included.
* log_softmax and logsumexp take the logarithm as
  :math:`\log t + \operatorname{log1p}(r/t)` (``t`` entries at the max, ``r``
  the rest), accurate when every other probability is tiny.

The public functions check their arguments with the messages of the NumPy
version, apply the dtype policy (float16/bfloat16 computed in float32) and
run one ``jax.jit``-compiled computation, so eager calls pay one dispatch.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Unpack

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from softgrad._agnostic import _losses
from softgrad._agnostic._losses import CrossEntropyOptions
from softgrad._lib._array import array_namespace, normalize_axis, to_compute, validate_where
from softgrad.jax._rows import _log_total, _plain, _plain_log_total, _rows, _special_rows

__all__ = [
    "cross_entropy",
    "cross_entropy_and_grad",
    "log_softmax",
    "logsumexp",
    "softmax",
]

Array = Any


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _softmax(x: Array, keep: Array | None, axis: int) -> Array:
    # the exact path for every call: measured faster than jax.nn's pattern with
    # a cond (:func:`_plain`) at 4096 × 4096 and 32768 × 128, slower only at
    # 256 × 32000, on XLA:CPU with 2 threads (its select-exp loop runs on both)
    r = _rows(x, keep, axis)
    return r.e / jnp.where(r.total == 0, 1, r.total)  # 0/NaN = NaN fills a NaN row


@_softmax.defjvp
def _softmax_jvp(axis: int, primals: Any, tangents: Any) -> tuple[Array, Array]:
    (x, keep), (dx, _) = primals, tangents
    s = _softmax(x, keep, axis)
    if keep is not None:  # a masked NaN/inf tangent adds nothing (0 · inf would be NaN)
        dx = jnp.where(s == 0, 0, dx)
    return s, s * dx - s * jnp.sum(dx * s, axis, keepdims=True)


class _LogSoftmax(NamedTuple):
    r"""log S and the residuals of its derivative: one exponential per entry, vectors per row.

    ``S = where(isnan(e), s_fill, e · inv)``; ``e = −0.0`` marks an entry where
    nothing flows (log S = −inf), and so does a NaN ``e`` on a row whose
    ``y_fill`` is −inf (a row of −inf only).
    """

    y: Array  # log S
    e: Array  # exp(x − max): −0.0 where nothing flows, NaN on a row with max ±inf or NaN
    inv: Array  # 1 / Σ e per row (0 on a row with max ±inf)
    s_fill: Array  # S where e is NaN: 1/k at a +inf row's k entries, 0 on a −inf row, NaN
    y_fill: Array  # log S where x − max is NaN: −log k, −inf, NaN


def _log_softmax_rows(x: Array, keep: Array, axis: int) -> _LogSoftmax:
    r = _rows(x, keep, axis)
    z = r.z
    if r.active is not None:
        # excluded entries: −inf, from the data where it holds one (−inf input,
        # −max of a +inf row); a where=False entry is −inf by definition
        fill = jnp.where(keep, jnp.where(r.pos_inf, -r.row_max, x), -jnp.inf)
        z = jnp.where(r.active, z, fill)
    y = z - _log_total(r, axis)
    nan_rows = r.total * 0  # NaN on a NaN row, else 0
    e = jnp.where(jnp.isinf(y) & (y < 0), -0.0, r.e)
    return _LogSoftmax(y, e, 1 / jnp.where(r.total == 0, 1, r.total), nan_rows, nan_rows)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _log_softmax_parts(x: Array, keep: Array | None, axis: int) -> _LogSoftmax:
    r"""log S with the residuals of its derivative (:class:`_LogSoftmax`).

    :func:`_log_softmax` returns ``y``; reverse mode keeps ``e`` and per-row
    vectors (what ``jax.nn`` keeps), so the backward pass reads the cotangent
    and ``e`` and computes no exponential; a call that needs no derivative
    drops them (XLA removes what nothing reads). Without a mask this is
    ``jax.nn``'s computation plus selects on ``isnan`` that cost no memory
    traffic: rows whose max is ±inf or NaN change only per-row vectors, which a
    ``lax.cond`` computes apart when there is one, so no full array passes
    through a conditional (that would copy it) and ``y`` need not be written
    out when only some of it is read (cross-entropy gathers it).
    """
    if keep is not None:
        return _log_softmax_rows(x, keep, axis)
    p = _plain(x, axis, mark=True)

    def common() -> tuple[Array, Array, Array, Array]:
        zero = jnp.zeros_like(p.total)
        return _plain_log_total(p, axis), 1 / p.total, zero, zero

    lt, inv, s_fill, y_fill = lax.cond(p.special, lambda: _special_rows(x, p, axis), common)
    y = jnp.where(jnp.isnan(p.z), y_fill, p.z - lt)
    return _LogSoftmax(y, p.e, inv, s_fill, y_fill)


@_log_softmax_parts.defjvp
def _log_softmax_parts_jvp(
    axis: int, primals: Any, tangents: Any
) -> tuple[_LogSoftmax, _LogSoftmax]:
    (x, keep), (dx, _) = primals, tangents
    out = _log_softmax_parts(x, keep, axis)
    e, inv = out.e, out.inv
    nan_e = jnp.isnan(e)
    s = jnp.where(nan_e, out.s_fill, e * inv)
    # log S is −inf exactly there: no tangent in or out, whatever dx holds
    excluded = ((e == 0) & jnp.signbit(e)) | (nan_e & (out.y_fill == -jnp.inf))
    dx = jnp.where(excluded, 0, dx)
    dy = jnp.where(excluded, 0, dx - jnp.sum(dx * s, axis, keepdims=True))
    de = jnp.where(e > 0, e * dx, 0)  # d exp(x − max), the max held as in jax.nn
    dinv = -inv * jnp.sum(de, axis, keepdims=True) * inv
    zero = jnp.zeros_like(out.s_fill)
    return out, _LogSoftmax(dy, de, dinv, zero, zero)


def _log_softmax(x: Array, keep: Array | None, axis: int) -> Array:
    return _log_softmax_parts(x, keep, axis).y


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _logsumexp(x: Array, keep: Array | None, axis: int) -> Array:
    r = _rows(x, keep, axis)
    # +inf and NaN rows come out of the sum by themselves; an empty row's −inf
    # is log of its zero total (no infinite constant is built)
    return jnp.where(r.total == 0, jnp.log(r.total), r.row_max + _log_total(r, axis))


@_logsumexp.defjvp
def _logsumexp_jvp(axis: int, primals: Any, tangents: Any) -> tuple[Array, Array]:
    (x, keep), (dx, _) = primals, tangents
    s = _softmax(x, keep, axis)
    dx = jnp.where(s == 0, 0, dx)
    return _logsumexp(x, keep, axis), jnp.sum(dx * s, axis, keepdims=True)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _run(op: Any, x: Array, keep: Array | None, axis: int, out_dtype: Any) -> Array:
    return op(x, keep, axis).astype(out_dtype)


def _checked(x: Any, axis: int, where: Any, func: str) -> tuple[Array, Any, int, Array | None]:
    """``x`` in its compute dtype, the result dtype, the axis and the broadcast mask."""
    xp = array_namespace(x, where, names=("x", "where"))
    z, out_dtype = to_compute(xp, x, func=func)
    ax = normalize_axis(axis, z.ndim)
    return z, out_dtype, ax, validate_where(xp, where, tuple(z.shape))


def softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Softmax along ``axis`` with the closed-form derivative (``jax.custom_jvp``).

    Parameters
    ----------
    x : jax.Array, shape (..., n, ...)
        Logits. float16/bfloat16 are computed in float32 and returned in their
        dtype; integers and booleans give the default float.
    axis : int, default -1
        The axis the probabilities are spread over.
    where : bool jax.Array broadcastable to ``x.shape``, optional
        Entries to include; excluded entries get probability 0 and tangent 0.

    Returns
    -------
    jax.Array, same shape as ``x``
        :math:`S(x)`: all 0 on a row with no entry left, uniform over the +inf
        entries of a row holding +inf, NaN on a row holding NaN.

    Notes
    -----
    .. math::

        S_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
        dS = S \odot \bigl(dx - \langle dx, S\rangle\bigr),

    the Jacobian :math:`\operatorname{diag}(S) - S S^\top` applied without
    forming it, in forward and (by transposition) reverse mode. The values
    equal ``jax.nn.softmax`` within rounding; unlike it, a row holding +inf
    gives the limit instead of NaN, and a masked entry's gradient is exactly
    0 even when the masked logit is ±inf or NaN.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import softgrad.jax as sgj
    >>> x = jnp.array([1.0, 2.0, 3.0], jnp.float32)
    >>> sgj.softmax(x)
    Array([0.0900, 0.2447, 0.6652], dtype=float32)
    >>> jnp.round(jax.grad(lambda x: sgj.softmax(x)[2])(x), 4)  # S_3 (δ_3j − S_j)
    Array([-0.0599, -0.1628,  0.2227], dtype=float32)
    """
    z, out_dtype, ax, keep = _checked(x, axis, where, "softmax")
    if z.shape[ax] == 0:
        return z.astype(out_dtype)
    return _run(_softmax, z, keep, ax, out_dtype)


def log_softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    r"""Log-softmax along ``axis`` with the closed-form derivative (``jax.custom_jvp``).

    Parameters
    ----------
    x : jax.Array, shape (..., n, ...)
        Logits (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to normalise over.
    where : bool jax.Array broadcastable to ``x.shape``, optional
        Entries to include; excluded entries give −inf and tangent 0.

    Returns
    -------
    jax.Array, same shape as ``x``
        :math:`\log S(x)`, accurate when the other probabilities underflow.

    Notes
    -----
    .. math::

        \log S_i = (x_i - m) - \log t - \operatorname{log1p}\Bigl(\frac1t
        \sum_{j:\,x_j<m} e^{x_j - m}\Bigr), \qquad
        d\log S = dx - \langle dx, S\rangle \ \text{(0 at excluded entries)}.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import softgrad.jax as sgj
    >>> sgj.log_softmax(jnp.array([0.0, -50.0], jnp.float32))[0]  # −e^{−50}, not 0
    Array(-1.92875e-22, dtype=float32)
    >>> x = jnp.array([0.0, 0.0, 5.0], jnp.float32)
    >>> jax.grad(lambda x: sgj.log_softmax(x, where=x < 1)[0])(x)  # 0 where masked
    Array([ 0.5, -0.5,  0. ], dtype=float32)
    """
    z, out_dtype, ax, keep = _checked(x, axis, where, "log_softmax")
    if z.shape[ax] == 0:
        return z.astype(out_dtype)
    return _run(_log_softmax, z, keep, ax, out_dtype)


def logsumexp(
    x: Array, /, axis: int = -1, *, where: Array | None = None, keepdims: bool = False
) -> Array:
    r"""Log-sum-exp along ``axis``; its derivative is the softmax (``jax.custom_jvp``).

    Parameters
    ----------
    x : jax.Array, shape (..., n, ...)
        Input (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to reduce.
    where : bool jax.Array broadcastable to ``x.shape``, optional
        Entries to include in the sum.
    keepdims : bool, default False
        Keep the reduced axis with length 1.

    Returns
    -------
    jax.Array
        −inf for an empty or fully excluded row, +inf for a row holding +inf,
        NaN for a row holding NaN.

    Notes
    -----
    .. math::

        \operatorname{LSE}(x) = m + \log t + \operatorname{log1p}\Bigl(\frac1t
        \sum_{j:\,x_j<m} e^{x_j - m}\Bigr), \qquad
        d\,\operatorname{LSE} = \langle dx, S(x)\rangle .

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import softgrad.jax as sgj
    >>> sgj.logsumexp(jnp.array([1000.0, 1000.0], jnp.float32))  # 1000 + log 2, no overflow
    Array(1000.69, dtype=float32)
    >>> jax.grad(sgj.logsumexp)(jnp.array([1.0, 1.0], jnp.float32))
    Array([0.5, 0.5], dtype=float32)
    """
    z, out_dtype, ax, keep = _checked(x, axis, where, "logsumexp")
    if z.shape[ax] == 0:
        shape = tuple(1 if k == ax else n for k, n in enumerate(z.shape))
        out = jnp.full(shape, -jnp.inf, dtype=z.dtype)
    else:
        out = _run(_logsumexp, z, keep, ax, out_dtype)
    return out.astype(out_dtype) if keepdims else jnp.squeeze(out, ax).astype(out_dtype)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _cross_entropy(
    logits: Array,
    target: Array,
    weight: Array | None,
    axis: int,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: _losses.Reduction,
) -> Array:
    spec = _losses.cross_entropy_spec(
        logits,
        target,
        axis,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
    z, out_dtype = to_compute(jnp, logits, name="logits")
    z = jnp.moveaxis(z, axis, -1)
    logp = _log_softmax(z, None, z.ndim - 1)
    if spec.targets == "probability":
        # the reference's effective target and reduction, on this module's log_softmax
        pr = _losses._problem(logits, spec)
        return _losses._loss(dataclasses.replace(pr, logp=logp))
    return _losses.reduce_loss(spec, _index_loss(spec, logp)).astype(out_dtype)


def _index_loss(spec: _losses.CrossEntropySpec, logp: Array) -> Array:
    r"""Per-sample :math:`-\sum_c B_c \log S_c` for class indices, by gathering :math:`\log S_y`.

    With :math:`B = (1-\varepsilon) w_y e_y + \tfrac{\varepsilon}{C} w` the sum
    is :math:`(1-\varepsilon) w_y \log S_y + \tfrac{\varepsilon}{C}\sum_c w_c \log S_c`:
    one gather instead of the one-hot :math:`B` (what ``jax.nn`` users write),
    and 0 for an ignored sample. A zero coefficient times a −inf log-probability
    counts 0 (:math:`0 \log 0 = 0`), as in the reference.
    """
    assert spec.counted is not None  # index targets always carry it
    eps, weight = spec.label_smoothing, spec.weight
    label = jnp.where(spec.counted, spec.target, 0)
    picked = jnp.take_along_axis(logp, label[..., None], axis=-1)[..., 0]
    coef = (1.0 - eps) * (1.0 if weight is None else weight[label])
    loss = jnp.where(coef == 0, 0, coef * picked)
    if eps:
        w_logp = logp if weight is None else jnp.where(weight == 0, 0, weight * logp)
        loss = loss + (eps / spec.n_classes) * jnp.sum(w_logp, axis=-1)
    return jnp.where(spec.counted, -loss, 0)


def _check_values(spec: _losses.CrossEntropySpec, target: Array, weight: Array | None) -> None:
    """The value checks the reference leaves to concrete arrays, on the JAX arrays that are.

    The reference cannot tell a traced JAX array from a concrete one, so it
    skips the label range and the weights' finiteness for every JAX array;
    here they run (on small host copies) unless the array is traced.
    """
    xp = array_namespace(np.empty(0))
    if spec.targets == "index" and not isinstance(target, jax.core.Tracer):
        _losses._check_labels(xp, np.asarray(target), spec.n_classes, spec.ignore_index)
    if weight is not None and not isinstance(weight, jax.core.Tracer):
        _losses._check_weight(xp, np.asarray(weight), spec.n_classes, np.float64)


def cross_entropy(
    logits: Array, target: Array, /, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> Array:
    r"""Cross-entropy between softmax(logits) and a target, differentiated in closed form.

    Parameters
    ----------
    logits : jax.Array, shape (..., C, ...)
        Unnormalised scores; ``axis`` is the class axis.
    target : jax.Array
        Integer class indices with the logits' shape without the class axis,
        or class probabilities with the logits' shape.
    axis : int, default -1
        The class axis.
    **options
        ``weight`` (shape (C,)), ``ignore_index`` (default -100),
        ``label_smoothing`` (in [0, 1]) and ``reduction``
        (``"mean"``, ``"sum"``, ``"none"``), as in :func:`softgrad.cross_entropy`.

    Returns
    -------
    jax.Array
        0-d for ``"mean"``/``"sum"``, one loss per sample for ``"none"``.

    Notes
    -----
    :math:`\ell = -\sum_c B_c \log S_c` with the effective target :math:`B` of
    :func:`softgrad.cross_entropy` (weights, smoothing, ignored labels);
    reverse mode through the closed-form log_softmax gives
    :math:`\partial\ell/\partial z = a S - B` (over the mean's denominator),
    :math:`a = \sum_c B_c`. Probability targets and weights are differentiable
    too (through ordinary autodiff).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import softgrad.jax as sgj
    >>> z = jnp.log(jnp.array([[0.5, 0.25, 0.25]], jnp.float32))
    >>> jax.grad(sgj.cross_entropy)(z, jnp.array([0]))  # S − y
    Array([[-0.5 ,  0.25,  0.25]], dtype=float32)
    """
    weight = options.get("weight")
    ignore_index = options.get("ignore_index", _losses.DEFAULT_IGNORE_INDEX)
    label_smoothing = options.get("label_smoothing", 0.0)
    reduction = options.get("reduction", "mean")
    # every argument error is raised here, with concrete label values when there are any
    spec = _losses.cross_entropy_spec(logits, target, axis, **options)
    _check_values(spec, target, weight)
    return _cross_entropy(
        logits, target, weight, spec.axis, ignore_index, float(label_smoothing), reduction
    )


def cross_entropy_and_grad(
    logits: Array, target: Array, /, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> tuple[Array, Array]:
    r"""Cross-entropy and its gradient with respect to the logits (see :func:`cross_entropy`).

    Returns
    -------
    loss : jax.Array
        As :func:`cross_entropy` returns it.
    grad : jax.Array, same shape as ``logits``
        :math:`a S - B` over the mean's denominator; for ``reduction="none"``
        the gradient of the summed losses.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import softgrad.jax as sgj
    >>> loss, grad = sgj.cross_entropy_and_grad(jnp.zeros((1, 2), jnp.float32), jnp.array([1]))
    >>> grad
    Array([[ 0.5, -0.5]], dtype=float32)
    """
    xp = array_namespace(logits, names=("logits",))
    z, out_dtype = to_compute(xp, logits, name="logits", func="cross_entropy")
    if z.dtype != out_dtype:  # float16/bfloat16: the gradient in the logits' dtype
        z = logits
    loss, pullback = jax.vjp(lambda v: cross_entropy(v, target, axis, **options), z)
    (grad,) = pullback(jnp.ones_like(loss))
    return loss, grad
