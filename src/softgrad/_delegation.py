"""Delegation layer: a fused compiled kernel when one applies, the Array API version otherwise.

Each public function here has the signature and docstring of its reference
implementation (``softgrad._agnostic._softmax``, ``softgrad._agnostic._derivatives``,
``softgrad._agnostic._losses``). It runs the numba kernel of ``softgrad.kernels._cpu``
when

* the kernels are enabled (:mod:`softgrad.kernels`) and numba is importable,
* the inputs are NumPy arrays (exactly ``numpy.ndarray``) of float32 or
  float64 — every other dtype, float16 included, and every other array
  library take the reference path,
* the options are ones the kernel implements (boolean ``where`` masks,
  integer class labels; probability targets go to the reference), and
* the array is large enough that the kernel is faster: below
  :data:`MIN_SIZE` elements the reference's lower call overhead wins
  (threshold measured with ``python -m benchmarks --thresholds``).

Anything unusual — an invalid argument, an empty axis, a mask that does not
broadcast, a label out of range — is handed to the reference, which raises
the documented error. Results agree with the reference within a few ulps
(see ``tests/test_kernels.py`` for the tolerances): the kernels use the same
formulas (max shift, the :math:`t + r` split with ``log1p``, the effective
target of cross-entropy) but sum in a different order, use a polynomial
``exp`` accurate to 1 ulp and multiply by reciprocals instead of dividing.

The softmax axis is moved last and the array viewed as ``(rows, n)``; an
input whose moved view is not C-contiguous (a C-ordered array reduced over
another axis than the last, say) is copied once to that layout first.
"""

from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import Any

import numpy as np

from softgrad import kernels as _kernels
from softgrad._agnostic import _derivatives, _losses, _softmax
from softgrad._lib._array import Array, normalize_axis

__all__ = [
    "MIN_SIZE",
    "cross_entropy_and_grad",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "softmax",
    "softmax_vjp",
]

MIN_SIZE: dict[str, int] = {"forward": 4096, "vjp": 4096, "cross_entropy": 4096}
"""Smallest number of elements for which each family of kernels is used.

Measured (``python -m benchmarks --thresholds``, 2-core Xeon, float64): once
loaded, the serial kernels are faster than the reference at every size tried,
down to 8 elements (softmax 5.6 µs vs 58 µs, softmax_vjp 5.7 vs 18,
cross-entropy 15 vs 163). The threshold is therefore set by the one-off cost
instead: the first kernel call of a process imports numba and loads the
compiled code from the disk cache (~0.7 s; ~10 s per kernel and dtype when
the cache is empty), which a program handling only small arrays should never
pay — below 4096 elements a call saves at most ~0.1 ms."""

CHUNK = 32768
"""Rows longer than this are split into chunks spread over the threads."""

SERIAL_MAX = 8192
"""Arrays up to this many elements run in the calling thread (no parallel launch).

Measured: at 8192 elements the serial and parallel kernels cost about the
same (forward 50 vs 23 µs, vjp 29 vs 13 µs when both cores are free, but a
parallel launch waits a whole scheduler time slice, milliseconds, whenever
another process holds a core); at 32768 the parallel ones win 2–3×."""

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_MASK = np.ones((1, 1), dtype=np.bool_)


def _bridge(x: Any) -> Any:
    """``softgrad.torch`` for a torch tensor, ``None`` for anything else (checked by type name)."""
    if type(x) is np.ndarray or not type(x).__module__.startswith("torch"):
        return None
    from softgrad import torch as bridge

    return bridge


def _kernels_for(family: str, *arrays: Any) -> ModuleType | None:
    """The kernels module if every array is a large-enough float32/float64 ndarray."""
    first = arrays[0]
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in _FLOATS or a.dtype != first.dtype:
            return None
    if first.size == 0 or first.size < MIN_SIZE[family] or not _kernels.enabled():
        return None
    return _kernels.load()


def _to_rows(a: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``a`` with ``axis`` moved last, as a C-contiguous (rows, n) array (a view when possible)."""
    moved = a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)
    return np.ascontiguousarray(moved).reshape(-1, moved.shape[-1]), moved.shape


def _from_rows(a2: np.ndarray, moved_shape: tuple[int, ...], axis: int) -> np.ndarray:
    out = a2.reshape(moved_shape)
    return out if axis == len(moved_shape) - 1 else np.moveaxis(out, -1, axis)


def _mask_rows(where: Any, shape: tuple[int, ...], axis: int) -> tuple[np.ndarray, bool] | None:
    """The mask as rows, ``(dummy, False)`` without one, ``None`` when the reference must judge it."""
    if where is None:
        return _NO_MASK, False
    if type(where) is not np.ndarray or where.dtype != np.bool_:
        return None
    try:
        full = np.broadcast_to(where, shape)
    except ValueError:
        return None
    return _to_rows(full, axis)[0], True


def _chunk(rows: int, n: int) -> int:
    """Chunk length: whole rows when there are enough of them to share among threads."""
    if rows >= 4:
        return CHUNK
    return min(CHUNK, max(4096, -(-n // 4)))


def _forward(k: ModuleType, x: np.ndarray, axis: int, where: Any, mode: int) -> Any:
    """Run the forward kernel; ``None`` when the reference should handle the call."""
    ax = normalize_axis(axis, x.ndim)
    if x.shape[ax] == 0:
        return None
    mask = _mask_rows(where, x.shape, ax)
    if mask is None:
        return None
    x2, moved = _to_rows(x, ax)
    rows, n = x2.shape
    out = np.empty_like(x2) if mode != 2 else np.empty((1, 1), dtype=x.dtype)
    lse = np.empty(rows, dtype=x.dtype)
    if x2.size <= SERIAL_MAX:
        k.forward_rows_serial(x2, mask[0], mask[1], mode, out, lse)
    else:
        k.forward_rows(x2, mask[0], mask[1], mode, out, lse, _chunk(rows, n))
    if mode == 2:
        return lse.reshape(moved[:-1]), ax
    return _from_rows(out, moved, ax)


@functools.wraps(_softmax.softmax)
def softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    if (bridge := _bridge(x)) is not None:
        return bridge.softmax(x, axis, where=where)
    k = _kernels_for("forward", x)
    if k is not None:
        out = _forward(k, x, axis, where, 0)
        if out is not None:
            return out
    return _softmax.softmax(x, axis, where=where)


@functools.wraps(_softmax.log_softmax)
def log_softmax(x: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    if (bridge := _bridge(x)) is not None:
        return bridge.log_softmax(x, axis, where=where)
    k = _kernels_for("forward", x)
    if k is not None:
        out = _forward(k, x, axis, where, 1)
        if out is not None:
            return out
    return _softmax.log_softmax(x, axis, where=where)


@functools.wraps(_softmax.logsumexp)
def logsumexp(
    x: Array, /, axis: int = -1, *, where: Array | None = None, keepdims: bool = False
) -> Array:
    if (bridge := _bridge(x)) is not None:
        return bridge.logsumexp(x, axis, where=where, keepdims=keepdims)
    k = _kernels_for("forward", x)
    if k is not None:
        res = _forward(k, x, axis, where, 2)
        if res is not None:
            lse, ax = res
            return np.expand_dims(lse, ax) if keepdims else lse
    return _softmax.logsumexp(x, axis, where=where, keepdims=keepdims)


def _vjp(s: Any, g: Any, axis: int, where: Any, mode: int) -> Any:
    k = _kernels_for("vjp", s, g)
    if k is None or s.shape != g.shape:
        return None
    ax = normalize_axis(axis, s.ndim)
    if s.shape[ax] == 0:
        return None
    mask = _mask_rows(where, s.shape, ax)
    if mask is None:
        return None
    s2, moved = _to_rows(s, ax)
    g2, _ = _to_rows(g, ax)
    out = np.empty_like(s2)
    if s2.size <= SERIAL_MAX:
        k.vjp_rows_serial(s2, g2, mask[0], mask[1], mode, out)
    else:
        k.vjp_rows(s2, g2, mask[0], mask[1], mode, out, _chunk(*s2.shape))
    return _from_rows(out, moved, ax)


@functools.wraps(_derivatives.softmax_vjp)
def softmax_vjp(s: Array, g: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    out = _vjp(s, g, axis, where, 0)
    return _derivatives.softmax_vjp(s, g, axis, where=where) if out is None else out


@functools.wraps(_derivatives.log_softmax_vjp)
def log_softmax_vjp(s: Array, g: Array, /, axis: int = -1, *, where: Array | None = None) -> Array:
    out = _vjp(s, g, axis, where, 1)
    return _derivatives.log_softmax_vjp(s, g, axis, where=where) if out is None else out


def _cross_entropy(
    logits: Any,
    target: Any,
    axis: int,
    weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    reduction: Any,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The fused kernel for integer labels; ``None`` for anything the reference must handle."""
    k = _kernels_for("cross_entropy", logits)
    if k is None or type(target) is not np.ndarray or target.dtype.kind not in "iu":
        return None
    if reduction not in ("mean", "sum", "none"):
        return None
    if type(label_smoothing) not in (int, float) or not 0.0 <= label_smoothing <= 1.0:
        return None
    if ignore_index is not None and type(ignore_index) is not int:
        return None
    ax = normalize_axis(axis, logits.ndim)
    n_classes = logits.shape[ax]
    expected = logits.shape[:ax] + logits.shape[ax + 1 :]
    if n_classes == 0 or target.shape != expected or target.size == 0:
        return None
    dtype = logits.dtype
    labels = target.reshape(-1).astype(np.int64, copy=False)
    counted = None if ignore_index is None else labels != ignore_index
    valid = (labels >= 0) & (labels < n_classes)
    if not bool(np.all(valid if counted is None else valid | ~counted)):
        return None  # the reference names the bad label
    if weight is None:
        w = np.empty(0, dtype=dtype)
    else:
        if type(weight) is not np.ndarray or weight.shape != (n_classes,):
            return None
        if weight.dtype.kind not in "iuf" or weight.dtype == np.float16:
            return None
        w = np.ascontiguousarray(weight, dtype=dtype)
        if not bool(np.all(np.isfinite(w))) or bool(np.any(w < 0)):
            return None
    denom = None
    if reduction == "mean":
        if weight is None:
            denom = dtype.type(labels.size if counted is None else np.count_nonzero(counted))
        else:
            picked = labels if counted is None else labels[counted]
            denom = np.sum(w[picked], dtype=dtype)
    inv_denom = 1.0 if denom is None or denom == 0 else 1.0 / float(denom)
    if inv_denom >= float(np.finfo(dtype).max):
        return None  # a subnormal weight sum: 1/denom overflows, the reference divides

    x2, moved = _to_rows(logits, ax)
    loss = np.empty(x2.shape[0], dtype=dtype)
    grad = np.empty_like(x2)
    ce = k.cross_entropy_rows_serial if x2.size <= SERIAL_MAX else k.cross_entropy_rows
    ce(
        x2,
        labels,
        w,
        weight is not None,
        0 if ignore_index is None else ignore_index,
        ignore_index is not None,
        float(label_smoothing),
        inv_denom,
        loss,
        grad,
    )
    grad_out = _from_rows(grad, moved, ax)
    if reduction == "none":
        return loss.reshape(target.shape), grad_out
    total = np.sum(loss)
    if denom is None:  # the reference returns NumPy's scalar here, a 0-d array for the mean
        return dtype.type(total), grad_out
    value = math.nan if denom == 0 else total / denom
    return np.asarray(value, dtype=dtype), grad_out


@functools.wraps(_losses.cross_entropy_and_grad)
def cross_entropy_and_grad(
    logits: Array,
    target: Array,
    /,
    axis: int = -1,
    *,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: _losses.Reduction = "mean",
) -> tuple[Array, Array]:
    res = _cross_entropy(logits, target, axis, weight, ignore_index, label_smoothing, reduction)
    if res is not None:
        return res
    return _losses.cross_entropy_and_grad(
        logits,
        target,
        axis,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
