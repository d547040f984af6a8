r"""Fused cross-entropy and its gradient for integer labels, one pass per row.

With :math:`c_y = (1-\varepsilon) w_y`, :math:`c_u = \varepsilon / C` and
:math:`a = c_y + c_u \sum_c w_c` (all 0 for an ignored sample):

.. math::

    \ell = -c_y \log S_y - c_u \Bigl(\sum_c w_c (x_c - m) - \log\Sigma \sum_c w_c\Bigr),
    \qquad
    \frac{\partial \ell}{\partial x_c} = \frac{a S_c - c_u w_c - c_y [c = y]}{\text{denom}}.

Two layouts share the per-row finish (:func:`_finish_row`):

* **few classes** (:math:`C \le` :data:`SMALL_C`): blocks of 256 rows; the
  shifted logits of the whole block are written first and exponentiated by one
  flat SIMD loop (a per-row loop over 10 classes would run entirely in the
  scalar remainder of its SIMD loop);
* **many classes**: one row per task, read from memory once (its max); the
  exponentials are stored in ``grad`` and turned into the gradient in place
  while the row is in cache.

The kernel exists parallel (``cross_entropy_rows``) and serial
(``cross_entropy_rows_serial``), compiled from one body.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from softgrad.kernels import _rows
from softgrad.kernels._exp import fast_exp
from softgrad.kernels._rows import EW, RED

__all__ = ["SMALL_C", "CrossEntropyOptions", "cross_entropy_rows", "cross_entropy_rows_serial"]

SMALL_C = 32
"""Up to this many classes, rows are processed in blocks with one flat exp loop."""

_BLOCK = 256
"""Rows per task of the few-class layout."""


class CrossEntropyOptions(NamedTuple):
    """The scalar options of the cross-entropy kernel, passed as one value."""

    ignore_index: int
    """Samples with this label add nothing (a negative value when none is ignored)."""
    smoothing: float
    """Label smoothing ε."""
    inv_denom: float
    """1 / the mean's denominator (1 for ``"sum"`` and ``"none"``)."""


@njit(cache=True)
def _weight_sum(x, weight):
    r""":math:`\sum_c w_c` (the number of classes without weights), in ``x``'s dtype."""
    F = x.dtype.type
    if weight is None:
        return F(x.shape[1])
    sumw = F(0.0)
    for c in range(x.shape[1]):
        sumw += weight[c]
    return sumw


@njit(fastmath=RED, cache=True)
def _weighted_shift_sum(x, weight, m, i):
    r""":math:`\sum_c w_c (x_c - m)` of row ``i``, terms with :math:`w_c = 0` left out (0·−inf is 0)."""
    zero = x.dtype.type(0.0)
    acc = zero
    for c in range(x.shape[1]):
        v = x[i, c] - m
        if weight is not None:
            w = weight[c]
            v = w * v if w != zero else zero
        acc += v
    return acc


@njit(cache=True)
def _special_row(x, y, weight, cy, cu, a, kind, invd, grad, i):
    """A row holding NaN, +inf or only −inf: the reference's formulas, entry by entry."""
    F = x.dtype.type
    cnt = _rows.count_posinf(x, None, i, 0, x.shape[1]) if kind == _rows.POSINF else 0
    loss = F(0.0)
    for c in range(x.shape[1]):
        if kind == _rows.NAN:
            lp = F(np.nan)
        elif kind == _rows.EMPTY:
            lp = F(-np.inf)
        else:
            lp = F(-math.log(cnt)) if x[i, c] == np.inf else F(-np.inf)
        w = F(1.0) if weight is None else weight[c]
        b = cu * w + (cy if c == y else F(0.0))
        if b != F(0.0):
            loss -= b * lp
        grad[i, c] = (a * F(math.exp(lp)) - b) * invd
    return loss


@njit(fastmath=EW, cache=True)
def _finish_row(x, grad, i, y, weight, opts, sumw, cu_all, mx, lt, inv):
    """Loss of row ``i`` returned and its gradient written; ``grad[i]`` holds
    :math:`e^{x_c - m}` of a normal row, ``mx`` is the row's max (any kind)."""
    F = x.dtype.type
    zero = F(0.0)
    counted = y != opts.ignore_index
    cy = zero
    cu = zero
    wy = zero
    if counted:
        wy = F(1.0) if weight is None else weight[y]
        cy = F((1.0 - opts.smoothing) * wy)
        cu = cu_all
    a = cy + cu * sumw
    invd = F(opts.inv_denom)
    kind = _rows.kind_of(mx)
    if kind != _rows.NORMAL:
        return _special_row(x, y, weight, cy, cu, a, kind, invd, grad, i)
    li = zero
    if cy != zero:
        li -= cy * ((x[i, y] - mx) - lt)
    if cu != zero:
        li -= cu * (_weighted_shift_sum(x, weight, mx, i) - lt * sumw)
    ey = grad[i, y] if counted else zero
    ai = a * inv
    for c in range(x.shape[1]):
        wc = F(1.0) if weight is None else weight[c]
        grad[i, c] = (ai * grad[i, c] - cu * wc) * invd
    if counted:
        grad[i, y] = (ai * ey - (cy + cu * wy)) * invd
    return li


@njit(fastmath=EW, cache=True)
def _finish_plain_row(x, grad, i, y, opts, mx, lt, total):
    r""":func:`_finish_row` of a normal row without class weights or smoothing:
    :math:`\ell = \log\Sigma - (x_y - m)`, gradient :math:`(S - [c = y]) / \text{denom}`.

    The same operations in the same order as :func:`_finish_row` with
    :math:`c_y = 1` and :math:`c_u = 0` (so the same bits), without the
    weight and smoothing terms that cost a few-class row more than its
    arithmetic (3.6 ms vs 0.5 ms for 65 536 rows of 10).
    """
    F = x.dtype.type
    n = x.shape[1]
    if y == opts.ignore_index:
        for c in range(n):
            grad[i, c] = F(0.0)
        return F(0.0)
    inv = F(1.0) / total
    invd = F(opts.inv_denom)
    ey = grad[i, y]
    for c in range(n):
        grad[i, c] = (inv * grad[i, c]) * invd
    grad[i, y] = (inv * ey - F(1.0)) * invd
    return F(0.0) - ((x[i, y] - mx) - lt)  # as 0 - c_y (...) is: +0.0 for a 0 loss


@njit(fastmath=EW, cache=True)
def _flat_exp(g):
    for j in range(g.shape[0]):
        g[j] = fast_exp(g[j])


@njit(fastmath=EW, cache=True)
def _block_few_classes(x, target, weight, opts, sumw, cu_all, loss, grad, lo, hi):
    """Rows ``lo:hi`` of a few-class problem, written out with 2-D indexing.

    A row view (``x[i]``) costs reference-count updates worth more than the
    row's arithmetic, and a per-row exp loop of 10 classes never leaves its
    scalar remainder: so the shifted logits of the block are written first,
    exponentiated by one flat SIMD loop, and each row is then finished in place.
    """
    n = x.shape[1]
    F = x.dtype.type
    zero = F(0.0)
    ms = np.empty(hi - lo, dtype=x.dtype)
    for i in range(lo, hi):
        mx = _rows.row_max(x, None, i, 0, n)
        ms[i - lo] = mx
        for c in range(n):
            grad[i, c] = x[i, c] - mx
    _flat_exp(grad[lo:hi].reshape(-1))
    # (t, r) of every normal row, then their logarithms in one loop (SIMD for float32)
    tots = np.ones(hi - lo, dtype=x.dtype)
    rs = np.zeros(hi - lo, dtype=x.dtype)
    tcount = np.zeros(hi - lo, dtype=x.dtype)
    for i in range(lo, hi):
        mx = ms[i - lo]
        if _rows.kind_of(mx) != _rows.NORMAL:
            continue
        t = zero
        r = zero
        for c in range(n):
            at = F(x[i, c] - mx == zero)
            t += at
            r += grad[i, c] - at
        tots[i - lo] = t + r
        tcount[i - lo] = t
        rs[i - lo] = r
    lts = np.empty(hi - lo, dtype=x.dtype)
    _rows.log_totals(tcount, rs, lts)
    plain = weight is None and opts.smoothing == 0.0
    for i in range(lo, hi):
        k = i - lo
        if plain and _rows.kind_of(ms[k]) == _rows.NORMAL:
            loss[i] = _finish_plain_row(x, grad, i, target[i], opts, ms[k], lts[k], tots[k])
        else:
            loss[i] = _finish_row(
                x, grad, i, target[i], weight, opts, sumw, cu_all, ms[k], lts[k], F(1.0) / tots[k]
            )


@njit(fastmath=EW, cache=True)
def _row_many_classes(x, target, weight, opts, sumw, cu_all, grad, i):
    """Loss of row ``i`` of a many-class problem; its gradient written to ``grad[i]``."""
    F = x.dtype.type
    n = x.shape[1]
    mx = _rows.row_max(x, None, i, 0, n)
    lt = F(0.0)
    inv = F(0.0)
    if _rows.kind_of(mx) == _rows.NORMAL:
        t, r = _rows.sum_exp(x, None, mx, grad, i, 0, n)
        lt = _rows.log_total(t, r)
        inv = F(1.0) / (t + r)
    return _finish_row(x, grad, i, target[i], weight, opts, sumw, cu_all, mx, lt, inv)


def _cross_entropy_rows(x, target, weight, loss, grad, opts):
    """Per-sample cross-entropy and its gradient for integer labels.

    Parameters
    ----------
    x : float array, shape (rows, C), C-contiguous
    target : int64 array, shape (rows,), labels already checked to be in range
    weight : float array, shape (C,), or None
    loss : float array, shape (rows,), per-sample loss (output)
    grad : float array like ``x`` (output)
    opts : CrossEntropyOptions
    """
    rows, n = x.shape
    F = x.dtype.type
    sumw = _weight_sum(x, weight)
    cu_all = F(opts.smoothing / n)
    if n <= SMALL_C:
        nblock = (rows + _BLOCK - 1) // _BLOCK
        for b in prange(nblock):
            lo = b * _BLOCK
            hi = min(lo + _BLOCK, rows)
            _block_few_classes(x, target, weight, opts, sumw, cu_all, loss, grad, lo, hi)
        return
    for i in prange(rows):
        loss[i] = _row_many_classes(x, target, weight, opts, sumw, cu_all, grad, i)


cross_entropy_rows, cross_entropy_rows_serial = _rows.parallel_and_serial(EW)(_cross_entropy_rows)
