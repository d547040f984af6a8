r"""Cross-entropy on top of softmax, its gradient and its Hessian-vector product.

Every option (class weights, ignored targets, label smoothing, probability
targets) folds into one *effective target* :math:`B \ge 0` per sample, with
:math:`a = \sum_c B_c`:

.. math::

    \ell = -\sum_c B_c \log S_c, \qquad
    \frac{\partial \ell}{\partial z} = a\,S - B, \qquad
    \frac{\partial^2 \ell}{\partial z^2}\,v = a\,S \odot (v - \langle S, v\rangle).

For a class index :math:`y` with class weights :math:`w` and smoothing
:math:`\varepsilon` over :math:`C` classes,
:math:`B = (1-\varepsilon)\,w_y\,e_y + \tfrac{\varepsilon}{C}\,w` (zero for an
ignored target); for a probability target :math:`t`,
:math:`B = w \odot ((1-\varepsilon)\,t + \varepsilon/C)`. Without smoothing or
weights the gradient is the familiar :math:`S - y`.

The reductions follow ``torch.nn.functional.cross_entropy`` exactly: ``"mean"``
divides by the summed weights of the non-ignored index targets (their count
without weights), and by the number of samples for probability targets
(pytorch#61309 documents that difference); ``"sum"`` adds; ``"none"`` keeps
one loss per sample, and the gradient returned with it is that of their sum.
A mean over no sample at all (every target ignored, or an empty batch) is
0/0: NaN, as in PyTorch, with a zero gradient.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypedDict, TypeVar, Unpack

from softgrad._agnostic._docs import fill_doc
from softgrad._agnostic._softmax import log_softmax
from softgrad._lib._array import (
    Array,
    Namespace,
    array_namespace,
    compute_dtype,
    constant,
    device,
    is_concrete,
    normalize_axis,
    to_compute,
)

__all__ = [
    "DEFAULT_IGNORE_INDEX",
    "CrossEntropyOptions",
    "CrossEntropySpec",
    "check_option_names",
    "cross_entropy",
    "cross_entropy_and_grad",
    "cross_entropy_and_grad_of",
    "cross_entropy_hvp",
    "cross_entropy_spec",
    "reduce_loss",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
Reduction = Literal["mean", "sum", "none"]


class CrossEntropyOptions(TypedDict, total=False):
    """The keyword options of :func:`cross_entropy` and :func:`cross_entropy_and_grad`."""

    weight: Array | None
    ignore_index: int | None
    label_smoothing: float
    reduction: Reduction


_REDUCTIONS = ("mean", "sum", "none")


DEFAULT_IGNORE_INDEX = -100
"""PyTorch's default ``ignore_index``: labels padded with -100 add nothing."""


@dataclass(frozen=True)
class CrossEntropySpec:
    """One cross-entropy call's checked arguments, shared by the kernel and the reference.

    Built once by :func:`cross_entropy_spec`, which raises every documented
    argument error; the kernel path and the Array API reference both read the
    targets, the weights and the mean's denominator from it, so the two paths
    cannot disagree on what the options mean.
    """

    xp: Namespace
    axis: int
    """The class axis of the logits, non-negative."""
    n_classes: int
    targets: Literal["index", "probability"]
    """Integer class indices, or class probabilities with the logits' shape."""
    target: Array
    weight: Array | None
    """Checked class weights (finite, non-negative), in the logits' compute dtype."""
    ignore_index: int | None
    """Index targets equal to it are ignored (never set for probability targets)."""
    label_smoothing: float
    reduction: Reduction
    counted: Array | None
    """Index targets: True for the samples that count (not ignored)."""
    denominator: Array | None
    """The mean's denominator (0-d, compute dtype); ``None`` for ``"sum"``/``"none"``."""


def _check_options(label_smoothing: float, reduction: str, ignore_index: int | None) -> None:
    if reduction not in _REDUCTIONS:
        msg = f"reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        raise ValueError(msg)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        msg = f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}"
        raise TypeError(msg)
    if not 0.0 <= label_smoothing <= 1.0:
        msg = f"label_smoothing must be in [0, 1], got {label_smoothing}"
        raise ValueError(msg)
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
    ):
        msg = f"ignore_index must be an int or None, got {ignore_index!r}"
        raise TypeError(msg)


def _check_weight(xp: Namespace, weight: Array | None, n_classes: int, dtype: Any) -> Array | None:
    if weight is None:
        return None
    if tuple(weight.shape) != (n_classes,):
        msg = (
            f"weight must have shape ({n_classes},), one entry per class, got {tuple(weight.shape)}"
        )
        raise ValueError(msg)
    weight, _ = to_compute(xp, weight, name="weight")
    weight = xp.astype(weight, dtype)
    if is_concrete(weight):
        if not bool(xp.all(xp.isfinite(weight))):
            msg = "weight must be finite; got NaN or inf among the class weights"
            raise ValueError(msg)
        if bool(xp.any(weight < constant(xp, 0.0, weight))):
            msg = f"weight must be non-negative; got min {float(xp.min(weight))}"
            raise ValueError(msg)
    return weight


def _check_labels(xp: Namespace, target: Array, n_classes: int, ignore_index: int | None) -> Array:
    """Validate class indices; return the mask of targets that count."""
    counted = xp.ones(target.shape, dtype=xp.bool, device=device(target))
    if ignore_index is not None:
        counted = target != ignore_index
    if is_concrete(target) and math.prod(target.shape):
        out_of_range = xp.logical_and(counted, xp.logical_or(target < 0, target >= n_classes))
        if bool(xp.any(out_of_range)):
            bad = xp.where(out_of_range, target, xp.zeros_like(target))
            lo, hi = int(xp.min(bad)), int(xp.max(bad))
            value = lo if lo < 0 else hi
            hint = "" if ignore_index is None else f" or equal ignore_index={ignore_index}"
            msg = (
                f"target holds class index {value}, outside [0, {n_classes}) for "
                f"{n_classes} classes; every label must be in [0, {n_classes}){hint}"
            )
            raise ValueError(msg)
    return counted


def _index_denominator(
    xp: Namespace, target: Array, counted: Array, weight: Array | None, dtype: Any
) -> Array:
    """Summed weights of the counted targets (their count without weights)."""
    if weight is None:
        return xp.sum(xp.astype(counted, dtype))
    flat = xp.reshape(target, (-1,))
    picked = xp.where(xp.reshape(counted, (-1,)), flat, xp.zeros_like(flat))
    w_y = xp.take(weight, xp.astype(picked, xp.int64), axis=0)
    return xp.sum(xp.where(xp.reshape(counted, (-1,)), w_y, constant(xp, 0.0, weight)))


def check_option_names(options: CrossEntropyOptions) -> None:
    """Refuse a keyword that is not a cross-entropy option (a misspelt one would be ignored)."""
    unknown = sorted(set(options) - set(CrossEntropyOptions.__annotations__))
    if unknown:
        msg = (
            f"cross_entropy got an unexpected keyword argument {unknown[0]!r}; "
            f"its options are {', '.join(CrossEntropyOptions.__annotations__)}"
        )
        raise TypeError(msg)


def cross_entropy_spec(
    logits: Array, target: Array, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> CrossEntropySpec:
    """Check the arguments of a cross-entropy call once; see :func:`cross_entropy`."""
    check_option_names(options)
    weight = options.get("weight")
    ignore_index = options.get("ignore_index", DEFAULT_IGNORE_INDEX)
    label_smoothing = options.get("label_smoothing", 0.0)
    reduction = options.get("reduction", "mean")
    xp = array_namespace(logits, target, weight, names=("logits", "target", "weight"))
    _check_options(label_smoothing, reduction, ignore_index)
    dtype = compute_dtype(xp, logits.dtype, name="logits", func="cross_entropy")
    axis = normalize_axis(axis, logits.ndim)
    n_classes = int(logits.shape[axis])
    weight = _check_weight(xp, weight, n_classes, dtype)
    index_shape = tuple(logits.shape[:axis]) + tuple(logits.shape[axis + 1 :])
    counted = None
    if target.dtype == xp.bool:
        msg = "target must hold integer class indices or float probabilities, got booleans"
        raise TypeError(msg)
    if xp.isdtype(target.dtype, "integral"):
        if tuple(target.shape) != index_shape:
            msg = (
                f"target of class indices must have the logits' shape without the class axis, "
                f"{index_shape}, got {tuple(target.shape)}"
            )
            raise ValueError(msg)
        kind: Literal["index", "probability"] = "index"
        counted = _check_labels(xp, target, n_classes, ignore_index)
        denom = _index_denominator(xp, target, counted, weight, dtype)
    elif xp.isdtype(target.dtype, "real floating"):
        if ignore_index not in (None, DEFAULT_IGNORE_INDEX):
            msg = (
                "ignore_index applies to integer class targets only; with probability "
                "targets give the samples to skip zero probability instead"
            )
            raise ValueError(msg)
        if tuple(target.shape) != tuple(logits.shape):
            hint = ""
            if tuple(target.shape) == index_shape:
                hint = (
                    f"; target has dtype {target.dtype} and the shape of class indices: "
                    f"if it holds labels, cast it to an integer dtype (target.astype(int))"
                )
            msg = (
                f"target of class probabilities must have the logits' shape "
                f"{tuple(logits.shape)}, got {tuple(target.shape)}{hint}"
            )
            raise ValueError(msg)
        kind = "probability"
        ignore_index = None
        n_samples = math.prod(index_shape)
        denom = xp.asarray(float(n_samples), dtype=dtype, device=device(logits))
    else:
        msg = f"target must hold integer class indices or float probabilities, got {target.dtype}"
        raise TypeError(msg)
    return CrossEntropySpec(
        xp=xp,
        axis=axis,
        n_classes=n_classes,
        targets=kind,
        target=target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=float(label_smoothing),
        reduction=reduction,
        counted=counted,
        denominator=denom if reduction == "mean" else None,
    )


@dataclass(frozen=True)
class _Problem:
    """A cross-entropy problem with the class axis moved last."""

    spec: CrossEntropySpec
    logp: Array  # log_softmax of the logits, (..., C)
    b: Array  # effective target B, (..., C)
    out_dtype: Any


def _problem(logits: Array, spec: CrossEntropySpec) -> _Problem:
    xp = spec.xp
    z, out_dtype = to_compute(xp, logits, name="logits")
    z = xp.moveaxis(z, spec.axis, -1)
    logp = log_softmax(z, -1)
    eps = spec.label_smoothing
    n_classes = spec.n_classes
    weight = spec.weight
    if spec.targets == "index":
        target, counted = spec.target, spec.counted
        assert counted is not None  # index targets always carry it
        classes = xp.arange(n_classes, dtype=target.dtype, device=device(target))
        onehot = xp.astype(target[..., None] == classes, z.dtype)
        w = constant(xp, 1.0, z) if weight is None else weight
        w_y = xp.sum(onehot * w, axis=-1, keepdims=True)  # the target's class weight
        b = (1.0 - eps) * w_y * onehot + (eps / n_classes) * w
        b = xp.where(counted[..., None], b, constant(xp, 0.0, z))
    else:
        t = xp.moveaxis(xp.astype(spec.target, z.dtype), spec.axis, -1)
        b = (1.0 - eps) * t + eps / n_classes if eps else t
        if weight is not None:
            b = b * weight
    return _Problem(spec, logp, b, out_dtype)


def _safe_denominator(xp: Namespace, denom: Array) -> tuple[Array, Array]:
    """(whether the mean is over nothing, the denominator with 0 replaced by 1)."""
    nothing = denom == constant(xp, 0.0, denom)
    return nothing, xp.where(nothing, constant(xp, 1.0, denom), denom)


def reduce_loss(spec: CrossEntropySpec, per_sample: Array) -> Array:
    """Combine per-sample losses as ``spec.reduction`` says (NaN for a mean over nothing)."""
    xp = spec.xp
    if spec.reduction == "none":
        return per_sample
    total = xp.sum(per_sample)
    if spec.denominator is None:
        return total
    nothing, safe = _safe_denominator(xp, spec.denominator)
    return xp.where(nothing, constant(xp, math.nan, total), total / safe)


def _scale(pr: _Problem, per_sample_grad: Array) -> Array:
    """Divide a per-sample derivative by the mean's denominator and restore the axis."""
    xp = pr.spec.xp
    if pr.spec.denominator is not None:
        per_sample_grad = per_sample_grad / _safe_denominator(xp, pr.spec.denominator)[1]
    return xp.astype(xp.moveaxis(per_sample_grad, -1, pr.spec.axis), pr.out_dtype)


def _loss(pr: _Problem) -> Array:
    xp = pr.spec.xp
    zero = constant(xp, 0.0, pr.logp)
    # 0 · log 0 = 0: a class with no target mass adds nothing, even at −inf logits
    logp = xp.where(pr.b == zero, zero, pr.logp)
    per_sample = -xp.sum(pr.b * logp, axis=-1)
    return xp.astype(reduce_loss(pr.spec, per_sample), pr.out_dtype)


# the parameters of every cross-entropy function, documented once
_LOGITS_TARGET = """
        logits : array, shape (..., C, ...)
            Unnormalised scores; ``axis`` is the class axis.
        target : array
            Either integer class indices with the logits' shape without the class
            axis, or class probabilities with the logits' shape.
        """
_OPTIONS = r"""
        axis : int, default -1
            The class axis of ``logits`` (PyTorch's is 1; ours defaults to the last).
        weight : array, shape (C,), optional
            Non-negative, finite class weights.
        ignore_index : int or None, default -100
            Index targets equal to it add nothing and do not count in the mean.
            The default is PyTorch's, so labels padded with -100 are skipped;
            ``None`` ignores nothing. Probability targets ignore it.
        label_smoothing : float in [0, 1], default 0
            Mix the target with the uniform distribution: :math:`(1-\varepsilon)y + \varepsilon/C`.
        reduction : {"mean", "sum", "none"}, default "mean"
            How per-sample losses are combined (see the module notes for the mean).
        """
_DOC = fill_doc(
    logits_target=_LOGITS_TARGET,
    options=_OPTIONS,
    parameters=_LOGITS_TARGET.rstrip() + "\n" + _OPTIONS.lstrip("\n"),
)


def _arguments_of(
    public: Callable[_P, Any],
) -> Callable[[Callable[[Array, CrossEntropySpec], _R]], Callable[_P, _R]]:
    """Decorator: a function taking ``public``'s arguments, checked into a spec for ``body``.

    The decorated ``body(logits, spec)`` receives the logits and the
    :class:`CrossEntropySpec` of the call; the result has ``public``'s
    signature (and ``body``'s name, docstring and return annotation), so the
    arguments of the cross-entropy family are declared and checked in one place.
    """
    signature = inspect.signature(public)

    def decorate(body: Callable[[Array, CrossEntropySpec], _R]) -> Callable[_P, _R]:
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return body(bound.arguments["logits"], cross_entropy_spec(**bound.arguments))

        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(call, attribute, getattr(body, attribute))
        returns = inspect.signature(body).return_annotation
        call.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
        return call

    return decorate


def _cross_entropy_arguments(
    logits: Array,
    target: Array,
    /,
    axis: int = -1,
    *,
    weight: Array | None = None,
    ignore_index: int | None = DEFAULT_IGNORE_INDEX,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> None:
    """The arguments of :func:`cross_entropy` and :func:`cross_entropy_and_grad`, declared once."""


@_arguments_of(_cross_entropy_arguments)
@_DOC
def cross_entropy(logits: Array, spec: CrossEntropySpec, /) -> Array:
    r"""Cross-entropy between softmax(logits) and a target, as PyTorch defines it.

    Parameters
    ----------
    {{parameters}}

    Returns
    -------
    array
        0-d for ``"mean"``/``"sum"``, one loss per sample for ``"none"``;
        the logits' float dtype.

    Notes
    -----
    .. math::

        \ell = -\sum_c B_c \log S_c(z), \qquad
        B = (1-\varepsilon)\,w_y\,e_y + \tfrac{\varepsilon}{C}\,w
        \ \text{(index target)},\quad
        B = w\odot((1-\varepsilon)t + \tfrac{\varepsilon}{C})
        \ \text{(probability target)}.

    The value equals ``torch.nn.functional.cross_entropy`` for every option
    both offer, including the weighted mean's denominator.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    >>> float(cross_entropy(logits, np.array([0, 2])))
    0.1681...
    >>> cross_entropy(logits, np.array([0, 2]), reduction="none")
    array([0.2413113 , 0.09492296])
    """
    return _loss(_problem(logits, spec))


@_arguments_of(_cross_entropy_arguments)
@_DOC
def cross_entropy_and_grad(logits: Array, spec: CrossEntropySpec, /) -> tuple[Array, Array]:
    r"""Cross-entropy and its gradient with respect to the logits, in one pass.

    Parameters
    ----------
    {{parameters}}

    Returns
    -------
    loss : array
        As :func:`cross_entropy` returns it.
    grad : array, same shape as ``logits``
        :math:`\partial \ell / \partial z`; for ``reduction="none"`` the
        gradient of the sum of the per-sample losses.

    Notes
    -----
    .. math::

        \frac{\partial \ell}{\partial z_c} = a\,S_c - B_c, \qquad a = \sum_c B_c,

    which is :math:`S - y` for a plain one-hot target.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy_and_grad
    >>> loss, grad = cross_entropy_and_grad(np.log(np.array([[0.5, 0.25, 0.25]])), np.array([0]))
    >>> float(loss)
    0.6931...
    >>> grad  # S - y
    array([[-0.5 ,  0.25,  0.25]])
    """
    return cross_entropy_and_grad_of(logits, spec)


def cross_entropy_and_grad_of(logits: Array, spec: CrossEntropySpec) -> tuple[Array, Array]:
    """:func:`cross_entropy_and_grad` of arguments already checked by :func:`cross_entropy_spec`."""
    pr = _problem(logits, spec)
    xp = spec.xp
    s = xp.exp(pr.logp)
    a = xp.sum(pr.b, axis=-1, keepdims=True)
    return _loss(pr), _scale(pr, a * s - pr.b)


@_DOC
def cross_entropy_hvp(
    logits: Array,
    target: Array,
    v: Array,
    /,
    axis: int = -1,
    **options: Unpack[CrossEntropyOptions],
) -> Array:
    r"""The Hessian of :func:`cross_entropy` with respect to the logits, applied to ``v``.

    Parameters
    ----------
    {{logits_target}}
    v : array, same shape as ``logits``
        The direction.
    {{options}}

    Returns
    -------
    array, same shape as ``logits``
        :math:`H v`; for ``reduction="none"`` the Hessian of the summed losses.

    Notes
    -----
    Differentiating the gradient :math:`a S - B` once more gives :math:`a` times
    the softmax Jacobian, so the product costs O(C) per sample:

    .. math::

        H v = a\,S \odot (v - \langle S, v\rangle), \qquad a = \sum_c B_c .

    This is what Newton and truncated-Newton solvers need; the Hessian itself
    (``a (diag(S) − S Sᵀ)`` per sample) is never formed.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy_hvp
    >>> logits = np.zeros((1, 2))
    >>> cross_entropy_hvp(logits, np.array([0]), np.array([[1.0, 0.0]]))
    array([[ 0.25, -0.25]])
    """
    pr = _problem(logits, cross_entropy_spec(logits, target, axis, **options))
    xp = pr.spec.xp
    if tuple(v.shape) != tuple(logits.shape):
        msg = f"v must have the logits' shape {tuple(logits.shape)}, got {tuple(v.shape)}"
        raise ValueError(msg)
    v = xp.moveaxis(xp.astype(v, pr.logp.dtype), pr.spec.axis, -1)
    s = xp.exp(pr.logp)
    a = xp.sum(pr.b, axis=-1, keepdims=True)
    return _scale(pr, a * s * (v - xp.sum(s * v, axis=-1, keepdims=True)))
