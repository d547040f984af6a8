"""The public functions: route by array library, then a fused kernel or the Array API version.

Each public function here has the signature and docstring of its reference
implementation (``softgrad._agnostic._softmax``, ``softgrad._agnostic._derivatives``,
``softgrad._agnostic._losses``). A torch tensor goes to :mod:`softgrad.torch` and
a JAX array to :mod:`softgrad.jax` (one operation with a closed-form
derivative each); NumPy input goes to :mod:`softgrad.kernels._dispatch`, which
runs a numba kernel when one applies (float32/float64 arrays large enough for
the kernel policy, options the kernel implements) and the reference otherwise.

Cross-entropy's arguments are checked once, by
:func:`softgrad._agnostic._losses.cross_entropy_spec`; the kernel and the
reference both read the targets, weights and the mean's denominator from that
one specification, and the loss is reduced by the same function on both paths.
Results agree with the reference within a few ulps (see ``tests/kernels/`` for
the tolerances): the kernels use the same formulas (max shift, the
:math:`t + r` split with ``log1p``, the effective target of cross-entropy) but
sum in a different order, use a polynomial ``exp`` accurate to 1 ulp and
multiply by reciprocals instead of dividing.

The bridges import :mod:`softgrad.kernels._dispatch`, never this module, so
routing here makes no import circle.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Unpack

from softgrad._agnostic import _derivatives, _losses, _softmax
from softgrad._agnostic._losses import CrossEntropyOptions
from softgrad._lib._array import Array, array_namespace
from softgrad.kernels import _dispatch

__all__ = [
    "CrossEntropyOptions",
    "cross_entropy",
    "cross_entropy_and_grad",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "softmax",
    "softmax_vjp",
]


def _bridge(*arrays: Any, names: tuple[str, ...]) -> ModuleType | None:
    """The bridge for the first array's library (``softgrad.torch``, ``softgrad.jax``), else ``None``.

    Checked by the type's module, so neither library is imported to ask. Before
    a bridge is chosen, every array argument must come from that library: the
    namespace check names the argument that does not and how to convert it.
    """
    module = type(arrays[0]).__module__
    if module.startswith("torch"):
        array_namespace(*arrays, names=names)
        from softgrad import torch as bridge
    elif module.startswith("jax"):
        array_namespace(*arrays, names=names)
        from softgrad import jax as bridge  # type: ignore[no-redef]
    else:
        return None
    return bridge


def _row_function(name: str, x: Any, axis: int, where: Any, **keepdims: bool) -> Any:
    """Function ``name``: the bridge of ``x``'s library, else the NumPy entry point."""
    if (bridge := _bridge(x, where, names=("x", "where"))) is not None:
        return getattr(bridge, name)(x, axis, where=where, **keepdims)
    return getattr(_dispatch, name)(x, axis, where=where, **keepdims)


@functools.wraps(_softmax.softmax)
def softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    return _row_function("softmax", x, axis, where)


@functools.wraps(_softmax.log_softmax)
def log_softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    return _row_function("log_softmax", x, axis, where)


@functools.wraps(_softmax.logsumexp)
def logsumexp(
    x: Array, /, axis: int = -1, *, where: Array | None = None, keepdims: bool = False
) -> Array:
    return _row_function("logsumexp", x, axis, where, keepdims=keepdims)


# the VJPs take NumPy input to the kernels and anything else to the reference
softmax_vjp = functools.wraps(_derivatives.softmax_vjp)(_dispatch.softmax_vjp)
log_softmax_vjp = functools.wraps(_derivatives.log_softmax_vjp)(_dispatch.log_softmax_vjp)

_CROSS_ENTROPY_ARGS = ("logits", "target", "weight")


@functools.wraps(_losses.cross_entropy)
def cross_entropy(
    logits: Array, target: Array, /, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> Array:
    bridge = _bridge(logits, target, options.get("weight"), names=_CROSS_ENTROPY_ARGS)
    if bridge is not None:
        return bridge.cross_entropy(logits, target, axis, **options)
    return _losses.cross_entropy(logits, target, axis, **options)


@functools.wraps(_losses.cross_entropy_and_grad)
def cross_entropy_and_grad(
    logits: Array, target: Array, /, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> tuple[Array, Array]:
    # JAX arrays: the bridge's jitted value-and-gradient; torch tensors: the fused kernel
    # on CPU memory, torch operations elsewhere (no graph recorded)
    bridge = _bridge(logits, target, options.get("weight"), names=_CROSS_ENTROPY_ARGS)
    if bridge is not None:
        return bridge.cross_entropy_and_grad(logits, target, axis, **options)  # type: ignore[no-any-return]
    return _dispatch.cross_entropy_and_grad(logits, target, axis, **options)  # type: ignore[no-any-return]
