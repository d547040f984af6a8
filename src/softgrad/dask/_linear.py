r"""``linear_cross_entropy`` on Dask arrays: blocks of tokens on the cluster, ``W`` broadcast.

The loss is a sum over tokens, so the row blocks of ``h`` (N × D, chunked
along N only) and of ``target`` are independent: each task runs the NumPy
function (:func:`softgrad.linear_cross_entropy_and_grad`, the numba/BLAS
kernel) on its block with the whole of ``weight`` (one graph key, sent once to
each worker), and the blocks' :math:`\partial W`, :math:`\partial b` and
losses are summed in a binary tree (:math:`\lceil\log_2 B\rceil` levels for B
blocks); :math:`\partial h` stays blocked like ``h``.

The mean needs two global numbers first, computed as another tree of sums
over the target blocks (no weight involved): :math:`D_{ce} = \sum_i w_{y_i}`
and :math:`D_z` = the number of counted tokens. Each block then computes its
*sum* with the z-loss coefficient :math:`\lambda D_{ce}/D_z` and divides by
:math:`D_{ce}`, which gives :math:`\sum_i \ell_i / D_{ce} + \lambda \sum_i
\mathrm{lse}_i^2 / D_z` summed over the blocks, the NumPy mean exactly; with
:math:`D_{ce} = 0` the mean is NaN and the gradients zero, as in NumPy.
Nothing is computed until the results are (``.compute()``, ``dask.compute``).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Unpack

import dask.array
import numpy as np
from dask.delayed import delayed

from softgrad._linear_blocks import LinearCrossEntropyGrad, LinearCrossEntropyOptions
from softgrad._linear_blocks import loss as _numpy_loss
from softgrad._linear_blocks import loss_and_grad as _numpy_and_grad

__all__ = ["linear_cross_entropy", "linear_cross_entropy_and_grad"]

da: Any = dask.array  # untyped: its functions are called through Any

_add = delayed(operator.add, pure=True)


def _tree_sum(parts: list[Any]) -> Any:
    """Sum delayed values pairwise, level by level: a binary tree, not a chain."""
    while len(parts) > 1:
        pairs = [_add(a, b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
        parts = pairs + parts[len(parts) - len(parts) % 2 :]
    return parts[0]


def _whole(a: Any) -> Any:
    """``a`` (NumPy or Dask, or None) as one delayed value: one key, broadcast to the tasks."""
    if a is None or not isinstance(a, da.Array):
        return a if a is None else delayed(np.asarray(a), pure=True)
    return a.rechunk(a.shape).to_delayed().ravel()[0]


def _denominators(y: np.ndarray, class_weight: np.ndarray | None, ignore_index: int) -> np.ndarray:
    """This block's :math:`(\\sum w_y, \\#\\text{counted})` over its counted tokens."""
    counted = y != ignore_index
    wy = counted.sum() if class_weight is None else class_weight[y[counted]].sum()
    return np.array([float(wy), float(counted.sum())])


def _block(
    h: np.ndarray,
    weight: np.ndarray,
    y: np.ndarray,
    grad_output: Any,
    dens: np.ndarray | None,
    options: dict[str, Any],
    grads: bool,
) -> tuple[Any, ...]:
    """One row block's share of the loss (and of each gradient when ``grads``), in NumPy."""
    opts, scale = dict(options), 1.0
    if dens is not None:  # the mean: this block's sum over the global denominators
        d_ce, d_z = (float(v) for v in dens)
        opts["reduction"] = "sum"
        if d_ce == 0.0:  # a mean over nothing: NaN, zero gradient (as the NumPy function)
            scale, grad_output = math.nan, 0.0
        else:
            scale, grad_output = 1.0 / d_ce, grad_output / d_ce
            opts["z_loss"] = opts.get("z_loss", 0.0) * d_ce / d_z
    if not grads:
        return (_numpy_loss(h, weight, y, **opts) * scale, None, None, None)
    res = _numpy_and_grad(h, weight, y, grad_output=np.asarray(grad_output, h.dtype), **opts)
    return (res.loss * scale, *res[1:])


def _check(h: Any, weight: Any, target: Any, reduction: str) -> tuple[Any, Any]:
    if h.ndim != 2 or target.ndim != 1 or h.shape[0] != target.shape[0]:
        msg = (
            f"on Dask arrays h must be (N, D) and target (N,), got h {h.shape} and target "
            f"{target.shape}; reshape h to (-1, D) and target to (-1,) first"
        )
        raise ValueError(msg)
    if weight.ndim != 2 or weight.shape[1] != h.shape[1]:
        msg = f"weight must have shape (K, {h.shape[1]}), got {weight.shape}"
        raise ValueError(msg)
    if reduction not in ("mean", "sum", "none"):
        msg = f"reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        raise ValueError(msg)
    h = h.rechunk({1: h.shape[1]})  # whole rows per block
    target = da.asarray(target).rechunk((h.chunks[0],))
    return h, target


def _blocks(
    h: Any, weight: Any, target: Any, grad_output: Any, options: dict[str, Any], grads: bool
) -> tuple[list[Any], str, Any]:
    """The delayed per-block results ``(loss, dh, dW, db)`` and the reduction."""
    reduction = options.get("reduction", "mean")
    h, target = _check(h, weight, target, reduction)
    opts = {k: _whole(v) if k in ("bias", "class_weight") else v for k, v in options.items()}
    hs, ys = h.to_delayed().ravel(), target.to_delayed().ravel()
    dens = None
    if reduction == "mean":
        cw, ignore = opts.get("class_weight"), options.get("ignore_index", -100)
        parts = [delayed(_denominators, pure=True)(y, cw, ignore) for y in ys]
        dens = _tree_sum(parts)
    if reduction == "none":
        go = np.ones(target.shape, h.dtype) if grad_output is None else grad_output
        gos = da.asarray(go).rechunk((h.chunks[0],)).to_delayed().ravel()
    else:
        gos = [1.0 if grad_output is None else grad_output] * len(hs)
    w = _whole(weight)
    block = delayed(_block, pure=True, nout=4)
    parts = [block(hb, w, yb, g, dens, opts, grads) for hb, yb, g in zip(hs, ys, gos, strict=True)]
    return parts, reduction, h


def linear_cross_entropy_and_grad(
    h: Any,
    weight: Any,
    target: Any,
    /,
    *,
    grad_output: Any = None,
    **options: Unpack[LinearCrossEntropyOptions],
) -> LinearCrossEntropyGrad:
    r""":func:`softgrad.linear_cross_entropy_and_grad` for a Dask array ``h`` (N, D).

    Parameters
    ----------
    h : dask array, shape (N, D)
        Chunked along the rows (any chunking along D is merged).
    weight : array, shape (K, D)
        NumPy (or a Dask array, gathered into one block): sent once to each worker.
    target : integer array, shape (N,)
        Rechunked like ``h``'s rows.
    grad_output, **options
        As :func:`softgrad.linear_cross_entropy_and_grad`.

    Returns
    -------
    LinearCrossEntropyGrad
        Lazy Dask arrays: ``loss`` (0-d, or (N,) for ``"none"``), ``grad_h``
        chunked like ``h``, ``grad_weight`` and ``grad_bias`` as one block each.

    Examples
    --------
    >>> import numpy as np, dask, dask.array as da
    >>> import softgrad as sg
    >>> rng = np.random.default_rng(0)
    >>> h, w = rng.normal(size=(10, 3)), rng.normal(size=(7, 3))
    >>> y = rng.integers(0, 7, size=10)
    >>> res = sg.linear_cross_entropy_and_grad(da.from_array(h, chunks=4), w, y)
    >>> loss, gh, gw = dask.compute(*res[:3])
    >>> ref = sg.linear_cross_entropy_and_grad(h, w, y)
    >>> bool(np.allclose(loss, ref.loss) and np.allclose(gw, ref.grad_weight))
    True
    """
    parts, reduction, h = _blocks(h, weight, target, grad_output, dict(options), True)
    rows = h.chunks[0]
    dt = h.dtype
    dh = da.concatenate(
        [da.from_delayed(p[1], (r, h.shape[1]), dtype=dt) for p, r in zip(parts, rows, strict=True)]
    )
    k = weight.shape[0]
    dw = da.from_delayed(_tree_sum([p[2] for p in parts]), tuple(weight.shape), dtype=weight.dtype)
    db = None
    if options.get("bias") is not None:
        db = da.from_delayed(_tree_sum([p[3] for p in parts]), (k,), dtype=dt)
    return LinearCrossEntropyGrad(_loss(parts, reduction, rows, dt), dh, dw, db)


def _loss(parts: list[Any], reduction: str, rows: tuple[int, ...], dt: Any) -> Any:
    if reduction == "none":
        return da.concatenate(
            [da.from_delayed(p[0], (r,), dtype=dt) for p, r in zip(parts, rows, strict=True)]
        )
    return da.from_delayed(_tree_sum([p[0] for p in parts]), (), dtype=dt)


def linear_cross_entropy(
    h: Any, weight: Any, target: Any, /, **options: Unpack[LinearCrossEntropyOptions]
) -> Any:
    """:func:`softgrad.linear_cross_entropy` for a Dask array ``h`` (N, D): the loss, lazily.

    The blocks of :func:`linear_cross_entropy_and_grad` without their
    gradient pass (no autodiff through Dask: use that function for gradients).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import softgrad as sg
    >>> h, w, y = np.eye(4, 2), np.eye(3, 2), np.array([0, 1, 2, 0])
    >>> loss = sg.linear_cross_entropy(da.from_array(h, chunks=2), w, y, reduction="sum")
    >>> bool(np.isclose(loss.compute(), sg.linear_cross_entropy(h, w, y, reduction="sum")))
    True
    """
    parts, reduction, h = _blocks(h, weight, target, None, dict(options), False)
    return _loss(parts, reduction, h.chunks[0], h.dtype)
