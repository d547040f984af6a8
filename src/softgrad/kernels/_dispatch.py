"""The NumPy entry points: a fused numba kernel when one applies, the Array API reference otherwise.

:mod:`softgrad._delegation` (the public functions) sends NumPy input here after
routing torch tensors and JAX arrays to their bridges; ``softgrad.torch`` calls
these on the memory of CPU tensors. Nothing here imports a bridge, so the
bridges can use it without an import circle.

A kernel runs when

* the kernels are enabled (:mod:`softgrad.kernels`) and numba is importable,
* the inputs are NumPy arrays (exactly ``numpy.ndarray``) of float32 or
  float64 — every other dtype, float16 included, and every other array
  library take the reference path,
* the options are ones the kernel implements (boolean ``where`` masks,
  integer class labels; probability targets go to the reference), and
* the array is large enough that the kernel is faster: below
  ``min_size`` elements of the kernel policy (:class:`softgrad.kernels.Policy`)
  the reference's lower call overhead wins; up to ``serial_max`` elements the
  kernel runs in the calling thread.

Anything unusual — an invalid argument, an empty axis, a mask that does not
broadcast, a label out of range — is handed to the reference, which raises
the documented error. The softmax axis is moved last and the array viewed as
``(rows, n)``; an input whose moved view is not C-contiguous is copied once to
that layout first.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from softgrad import kernels as _kernels
from softgrad._agnostic import _derivatives, _losses, _softmax
from softgrad._lib._array import normalize_axis

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

Empty = Callable[[tuple[int, ...], Any], np.ndarray]
"""Where outputs come from: ``numpy.empty``, or a cache of reused buffers (the torch bridge)."""


def _kernels_for(policy: _kernels.Policy, *arrays: Any) -> ModuleType | None:
    """The kernels if every array is a large-enough float32/float64 ndarray of one dtype."""
    first = arrays[0]
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in _FLOATS or a.dtype != first.dtype:
            return None
    if first.size == 0 or first.size < policy.min_size or not _kernels.enabled():
        return None
    return _kernels.load()


def _variant(k: ModuleType, name: str, size: int, policy: _kernels.Policy) -> Any:
    """The serial build of kernel ``name`` for inputs up to ``policy.serial_max``, else the parallel."""
    return getattr(k, name + "_serial" if size <= policy.serial_max else name)


def _writeable(a: np.ndarray) -> np.ndarray:
    """``a``, or a copy of it when it is read-only.

    numba types a read-only array apart from a writeable one and compiles each
    kernel again for it, in the calling process: minutes on first use, which the
    warm-up does not cover (a memory-mapped file, ``np.asarray`` of a JAX array). A
    copy costs one pass over ``a``.
    """
    return a if a.flags.writeable else a.copy()


def _to_rows(a: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``a`` with ``axis`` moved last, as a writeable C-contiguous (rows, n) array (a view
    when possible)."""
    moved = a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)
    return _writeable(np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])), moved.shape


def _from_rows(a2: np.ndarray, moved_shape: tuple[int, ...], axis: int) -> np.ndarray:
    out = a2.reshape(moved_shape)
    return out if axis == len(moved_shape) - 1 else np.moveaxis(out, -1, axis)


def _mask_rows(where: Any, shape: tuple[int, ...], axis: int) -> tuple[np.ndarray | None] | None:
    """``(mask as rows,)``, ``(None,)`` without one, ``None`` when the reference must judge it."""
    if where is None:
        return (None,)
    if type(where) is not np.ndarray or where.dtype != np.bool_:
        return None
    try:  # a mask of the full shape as it is (broadcast_to's view would be read-only)
        full = where if where.shape == shape else np.broadcast_to(where, shape)
    except ValueError:
        return None
    return (_to_rows(full, axis)[0],)


def chunk(rows: int, n: int, policy: _kernels.Policy) -> int:
    """Chunk length: whole rows when there are enough of them to share among threads."""
    if rows >= 4:
        return policy.chunk
    return min(policy.chunk, max(4096, -(-n // 4)))


def _rows_call(
    policy: _kernels.Policy, arrays: tuple[Any, ...], axis: int, where: Any
) -> tuple[ModuleType, int, np.ndarray | None] | None:
    """(kernels, axis, mask as rows) for a row kernel on ``arrays``; ``None``: the reference."""
    k = _kernels_for(policy, *arrays)
    if k is None:
        return None
    shape = arrays[0].shape
    ax = normalize_axis(axis, len(shape))
    if shape[ax] == 0 or (mask := _mask_rows(where, shape, ax)) is None:
        return None
    return k, ax, mask[0]


def _forward(
    x: Any, axis: int, where: Any, mode: int, with_s: bool = False, empty: Empty = np.empty
) -> Any:
    """Run the forward kernel; ``None`` when the reference should handle the call.

    ``with_s`` (log_softmax): the result is ``(log S, S)``, ``S`` −1 at excluded entries.
    """
    policy = _kernels.current_policy()
    if (ready := _rows_call(policy, (x,), axis, where)) is None:
        return None
    k, ax, mask = ready
    x2, moved = _to_rows(x, ax)
    rows, n = x2.shape
    out = empty(x2.shape, x.dtype) if mode != k.LOGSUMEXP else np.empty((1, 1), dtype=x.dtype)
    s_out = empty(x2.shape, x.dtype) if with_s else None
    lse = np.empty(rows, dtype=x.dtype)
    run = _variant(k, "forward_rows", x2.size, policy)
    run(x2, mask, out, s_out, lse, k.RowOptions(mode, chunk(rows, n, policy)))
    if mode == k.LOGSUMEXP:
        return lse.reshape(moved[:-1]), ax
    if s_out is not None:
        return _from_rows(out, moved, ax), _from_rows(s_out, moved, ax)
    return _from_rows(out, moved, ax)


def row_function(
    name: str, mode: int, x: Any, axis: int, where: Any, empty: Empty = np.empty, **keepdims: bool
) -> Any:
    """Reference function ``name`` of :mod:`softgrad._agnostic._softmax`, by the kernel when it applies."""
    res = _forward(x, axis, where, mode, empty=empty)
    if res is None:
        return getattr(_softmax, name)(x, axis, where=where, **keepdims)
    if name != "logsumexp":
        return res
    lse, ax = res
    return np.expand_dims(lse, ax) if keepdims["keepdims"] else lse


def softmax(x: Any, axis: int = -1, *, where: Any = None, empty: Empty = np.empty) -> Any:
    """:func:`softgrad.softmax` for NumPy input (the output from ``empty`` when a kernel runs)."""
    return row_function("softmax", 0, x, axis, where, empty)


def log_softmax(x: Any, axis: int = -1, *, where: Any = None, empty: Empty = np.empty) -> Any:
    """:func:`softgrad.log_softmax` for NumPy input."""
    return row_function("log_softmax", 1, x, axis, where, empty)


def log_softmax_and_s(
    x: Any, axis: int = -1, *, where: Any = None, empty: Empty = np.empty
) -> tuple[Any, Any] | None:
    r"""(:math:`\log S`, :math:`S` with −1 at the excluded entries) by one kernel pass;
    ``None`` when the kernel does not apply (what a backward without ``exp`` saves)."""
    res: tuple[Any, Any] | None = _forward(x, axis, where, 1, with_s=True, empty=empty)
    return res


def logsumexp(
    x: Any, axis: int = -1, *, where: Any = None, keepdims: bool = False, empty: Empty = np.empty
) -> Any:
    """:func:`softgrad.logsumexp` for NumPy input (``empty`` unused: the result is small)."""
    return row_function("logsumexp", 2, x, axis, where, keepdims=keepdims)


def _vjp(s: Any, g: Any, axis: int, where: Any, mode: int, empty: Empty = np.empty) -> Any:
    policy = _kernels.current_policy()
    if s.shape != g.shape or (ready := _rows_call(policy, (s, g), axis, where)) is None:
        return None
    k, ax, mask = ready
    s2, moved = _to_rows(s, ax)
    g2, _ = _to_rows(g, ax)
    out = empty(s2.shape, s2.dtype)
    run = _variant(k, "vjp_rows", s2.size, policy)
    run(s2, g2, mask, out, k.RowOptions(mode, chunk(s2.shape[0], s2.shape[1], policy)))
    return _from_rows(out, moved, ax)


def softmax_vjp(
    s: Any, g: Any, axis: int = -1, *, where: Any = None, empty: Empty = np.empty
) -> Any:
    """:func:`softgrad.softmax_vjp` for NumPy input."""
    out = _vjp(s, g, axis, where, 0, empty)
    return _derivatives.softmax_vjp(s, g, axis, where=where) if out is None else out


def log_softmax_vjp(s: Any, g: Any, axis: int = -1, *, where: Any = None) -> Any:
    """:func:`softgrad.log_softmax_vjp` for NumPy input."""
    out = _vjp(s, g, axis, where, 1)
    return _derivatives.log_softmax_vjp(s, g, axis, where=where) if out is None else out


def log_softmax_vjp_of_s(s: Any, g: Any, axis: int = -1, *, empty: Empty = np.empty) -> Any:
    r""":math:`g - S \sum g` (0 where ``s`` < 0) from the :math:`S` of
    :func:`log_softmax_and_s`, by the kernel; ``None`` when it does not apply."""
    return _vjp(s, g, axis, None, 3, empty)


def _cross_entropy(
    logits: Any, spec: _losses.CrossEntropySpec, empty: Empty = np.empty
) -> tuple[Any, Any] | None:
    """The fused kernel for integer labels; ``None`` for anything the reference must handle."""
    policy = _kernels.current_policy()
    k = _kernels_for(policy, logits)
    target = spec.target
    if k is None or spec.targets != "index" or type(target) is not np.ndarray:
        return None
    if target.size == 0 or (spec.weight is not None and type(spec.weight) is not np.ndarray):
        return None
    dtype = logits.dtype
    denom = None if spec.denominator is None else float(spec.denominator)
    inv_denom = 1.0 if not denom else 1.0 / denom
    if inv_denom >= float(np.finfo(dtype).max):
        return None  # a subnormal weight sum: 1/denom overflows, the reference divides
    x2, moved = _to_rows(logits, spec.axis)
    loss = np.empty(x2.shape[0], dtype=dtype)
    grad = empty(x2.shape, dtype)
    ignore = -1 if spec.ignore_index is None else spec.ignore_index
    options = k.CrossEntropyOptions(ignore, spec.label_smoothing, inv_denom)
    run = _variant(k, "cross_entropy_rows", x2.size, policy)
    weight = None if spec.weight is None else _writeable(np.ascontiguousarray(spec.weight))
    labels = _writeable(target.reshape(-1).astype(np.int64, copy=False))
    run(x2, labels, weight, loss, grad, options)
    return _losses.reduce_loss(spec, loss.reshape(target.shape)), _from_rows(grad, moved, spec.axis)


def cross_entropy_and_grad(
    logits: Any, target: Any, axis: int = -1, *, empty: Empty = np.empty, **options: Any
) -> Any:
    """:func:`softgrad.cross_entropy_and_grad` for NumPy input (arguments checked once, by the spec)."""
    spec = _losses.cross_entropy_spec(logits, target, axis, **options)
    res = _cross_entropy(logits, spec, empty)
    if res is not None:
        return res
    return _losses.cross_entropy_and_grad_of(logits, spec)
