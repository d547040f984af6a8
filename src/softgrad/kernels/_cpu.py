r"""Fused numba kernels over the rows of a C-contiguous 2-D array.

Importing this module imports numba but compiles nothing: each kernel is
compiled on its first call for the dtype it meets (float32 or float64) and
the machine code is cached on disk (``cache=True``), so later processes load
it in milliseconds.

Layout of the work (the delegation layer moves the softmax axis last and
gives every kernel a ``(rows, n)`` C-contiguous array):

* **short rows** (``n <= chunk``): ``prange`` over rows; each row is read once
  from memory for its max (with a NaN count), then, cache-hot, a second loop
  computes :math:`e_j = e^{x_j - m}` with :func:`fast_exp`, stores it in the
  output and sums it; a third loop scales or writes the output.
* **long rows**: each row is cut into chunks and ``prange`` runs over all
  (row, chunk) pairs, so that a few long rows such as (8, 1 000 000) or
  (1, 1 000 000) keep every core busy. Pass A reduces each chunk to
  (local max, count of entries at it, rest of the sum) and, for softmax, stores
  :math:`e^{x_j - m_k}`; the per-row combination is
  :math:`\sum_j e^{x_j - m} = \sum_k e^{m_k - m}(t_k + r_k)`; pass B rescales
  (softmax) or writes :math:`(x_j - m) - \log\Sigma` (log_softmax).

The row sum is split as :math:`t + r` (entries equal to the max, and the
rest), exactly as the reference does, so :math:`\log\Sigma = \log t +
\operatorname{log1p}(r/t)` keeps log_softmax accurate for tiny probabilities.
Reductions carry the ``reassoc`` fast-math flag (SIMD partial sums); loops
that write outputs carry only ``contract``, so :math:`(x - m) - \log\Sigma`
is never re-associated into :math:`x - (m + \log\Sigma)`. No kernel assumes
finite inputs: rows holding NaN, +inf, or nothing (fully masked or all −inf)
take the reference's rules (see ``softgrad._agnostic._softmax``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from softgrad.kernels._exp import fast_exp, fmax

__all__ = [
    "cross_entropy_rows",
    "cross_entropy_rows_serial",
    "forward_rows",
    "forward_rows_serial",
    "vjp_rows",
    "vjp_rows_serial",
]

_RED = {"contract", "reassoc", "nsz"}  # reductions: SIMD partial sums
_EW = {"contract"}  # elementwise outputs: keep the written association

# row kinds
_NORMAL, _EMPTY, _POSINF, _NAN = 0, 1, 2, 3
# forward modes
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2
# vjp modes
SOFTMAX_VJP, LOG_SOFTMAX_VJP = 0, 1


@njit(fastmath=_RED, cache=True)
def _max(x, mask, has_mask):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Max over the included entries of ``x``; NaN if one of them is NaN, −inf if none."""
    ninf = x.dtype.type(-np.inf)
    mx = ninf
    if has_mask:
        for j in range(x.shape[0]):
            v = x[j]
            mx = fmax(mx, v if mask[j] else ninf)
    else:
        for j in range(x.shape[0]):
            mx = fmax(mx, x[j])
    return mx


@njit(fastmath=_RED, cache=True)
def _count_posinf(x, mask, has_mask):  # type: ignore[no-untyped-def]  # pragma: no cover
    c = 0
    for j in range(x.shape[0]):
        if x[j] == np.inf and (not has_mask or mask[j]):
            c += 1
    return c


@njit(fastmath=_RED, cache=True)
def _sum_exp(x, mask, has_mask, m, out, store):  # type: ignore[no-untyped-def]  # pragma: no cover
    r"""(t, r): entries equal to ``m`` and :math:`\sum e^{x_j - m}` over the others.

    :math:`r` accumulates :math:`e_j - [x_j = m]`, which is exact at the max
    (:math:`e^0 = 1`) and keeps the loop free of selects around the sums, so
    that it vectorises. With ``store``, :math:`e^{x_j - m}` goes to ``out[j]``.
    """
    F = x.dtype.type
    ninf = F(-np.inf)
    zero = F(0.0)
    t = zero
    r = zero
    if store:
        if has_mask:
            for j in range(x.shape[0]):
                v = x[j]
                z = (v if mask[j] else ninf) - m
                e = fast_exp(z)
                out[j] = e
                at = F(z == zero)
                t += at
                r += e - at
        else:
            for j in range(x.shape[0]):
                z = x[j] - m
                e = fast_exp(z)
                out[j] = e
                at = F(z == zero)
                t += at
                r += e - at
    elif has_mask:
        for j in range(x.shape[0]):
            v = x[j]
            z = (v if mask[j] else ninf) - m
            e = fast_exp(z)
            at = F(z == zero)
            t += at
            r += e - at
    else:
        for j in range(x.shape[0]):
            z = x[j] - m
            e = fast_exp(z)
            at = F(z == zero)
            t += at
            r += e - at
    return t, r


@njit(fastmath=_EW, cache=True)
def _write(x, mask, has_mask, mode, kind, m, lt, scale, cnt, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Write the forward output for (a chunk of) a row of the given kind.

    Normal rows: softmax scales the stored exponentials by ``scale``;
    log_softmax writes :math:`(x_j - m) - lt`.
    """
    F = x.dtype.type
    ninf = F(-np.inf)
    n = out.shape[0]
    if kind == _NORMAL:
        if mode == SOFTMAX:
            for j in range(n):
                out[j] = out[j] * scale
        elif has_mask:
            for j in range(n):
                v = (x[j] - m) - lt
                out[j] = v if mask[j] else ninf
        else:
            for j in range(n):
                out[j] = (x[j] - m) - lt
    elif kind == _NAN:
        for j in range(n):
            out[j] = F(np.nan)
    elif kind == _EMPTY:
        fill = F(0.0) if mode == SOFTMAX else ninf
        for j in range(n):
            out[j] = fill
    else:  # +inf in the row: the mass is shared among its +inf entries
        hit = F(1.0 / cnt) if mode == SOFTMAX else F(-math.log(cnt))
        miss = F(0.0) if mode == SOFTMAX else ninf
        for j in range(n):
            inc = x[j] == np.inf and (not has_mask or mask[j])
            out[j] = hit if inc else miss


@njit(cache=True)
def _kind(mx):  # type: ignore[no-untyped-def]  # pragma: no cover
    if mx != mx:  # noqa: PLR0124 - the NaN test numba compiles to one compare
        return _NAN
    if mx == -np.inf:
        return _EMPTY
    if mx == np.inf:
        return _POSINF
    return _NORMAL


@njit(cache=True)
def _log_total(t, r):  # type: ignore[no-untyped-def]  # pragma: no cover
    r""":math:`\log t + \operatorname{log1p}(r/t)`; one libm call when the max is unique.

    :math:`t = 1` is the common case, where :math:`\log t = 0` and :math:`r/t = r`
    exactly, so skipping ``log`` changes no bit of the result.
    """
    F = type(t)
    if t == F(1.0):
        return F(math.log1p(r))
    return F(math.log(t) + math.log1p(r / t))


@njit(cache=True)
def _lse_value(kind, m, lt):  # type: ignore[no-untyped-def]  # pragma: no cover
    F = type(m)
    if kind == _NORMAL:
        return m + lt
    if kind == _NAN:
        return F(np.nan)
    if kind == _EMPTY:
        return F(-np.inf)
    return F(np.inf)


# Whole rows addressed as ``x[i, j]``: a row view (``x[i]``) costs two atomic
# reference-count updates on the array's shared meminfo, which with both
# threads touching the same cache line outweighs the arithmetic of a short
# row (128 float32: 0.47x torch). The helpers below take the row index
# instead; only the rare special rows (NaN, +inf, nothing left) build views.


@njit(fastmath=_RED, cache=True)
def _max_r(x, mask, has_mask, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`_max` of row ``i``."""
    ninf = x.dtype.type(-np.inf)
    mx = ninf
    if has_mask:
        for j in range(x.shape[1]):
            v = x[i, j]
            mx = fmax(mx, v if mask[i, j] else ninf)
    else:
        for j in range(x.shape[1]):
            mx = fmax(mx, x[i, j])
    return mx


@njit(fastmath=_RED, cache=True)
def _sum_exp_r(x, mask, has_mask, m, out, store, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`_sum_exp` of row ``i`` (``out[i]`` receives the exponentials with ``store``)."""
    F = x.dtype.type
    ninf = F(-np.inf)
    zero = F(0.0)
    t = zero
    r = zero
    n = x.shape[1]
    if store:
        if has_mask:
            for j in range(n):
                v = x[i, j]
                z = (v if mask[i, j] else ninf) - m
                e = fast_exp(z)
                out[i, j] = e
                at = F(z == zero)
                t += at
                r += e - at
        else:
            for j in range(n):
                z = x[i, j] - m
                e = fast_exp(z)
                out[i, j] = e
                at = F(z == zero)
                t += at
                r += e - at
    elif has_mask:
        for j in range(n):
            v = x[i, j]
            z = (v if mask[i, j] else ninf) - m
            e = fast_exp(z)
            at = F(z == zero)
            t += at
            r += e - at
    else:
        for j in range(n):
            z = x[i, j] - m
            e = fast_exp(z)
            at = F(z == zero)
            t += at
            r += e - at
    return t, r


@njit(fastmath=_EW, cache=True)
def _write_normal_r(x, mask, has_mask, mode, m, lt, scale, out, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`_write` of a normal row ``i``."""
    ninf = x.dtype.type(-np.inf)
    n = x.shape[1]
    if mode == SOFTMAX:
        for j in range(n):
            out[i, j] = out[i, j] * scale
    elif has_mask:
        for j in range(n):
            v = (x[i, j] - m) - lt
            out[i, j] = v if mask[i, j] else ninf
    else:
        for j in range(n):
            out[i, j] = (x[i, j] - m) - lt


@njit(fastmath=_EW, cache=True)
def _forward_row_r(x, mask, has_mask, mode, out, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """One row ``i``, cache-hot: max, then exponentials (stored for softmax), then the output.

    Returns the row's logsumexp.

    In softmax mode the logsumexp of a normal row is not computed (NaN is returned).
    """
    F = x.dtype.type
    mx = _max_r(x, mask, has_mask, i)
    kind = _kind(mx)
    if kind == _NORMAL:
        t, r = _sum_exp_r(x, mask, has_mask, mx, out, mode == SOFTMAX, i)
        if mode == SOFTMAX:  # no logarithm: its libm call costs as much as a short row
            _write_normal_r(x, mask, has_mask, mode, mx, F(0.0), F(1.0) / (t + r), out, i)
            return F(np.nan)
        lt = _log_total(t, r)
        if mode != LOGSUMEXP:
            _write_normal_r(x, mask, has_mask, mode, mx, lt, F(0.0), out, i)
        return mx + lt
    mi = mask[i] if has_mask else mask[0]
    cnt = _count_posinf(x[i], mi, has_mask) if kind == _POSINF else 0
    if mode != LOGSUMEXP:
        _write(x[i], mi, has_mask, mode, kind, mx, F(0.0), F(0.0), cnt, out[i])
    return _lse_value(kind, mx, F(0.0))


BLOCK_ELEMS = 8192
"""Entries per task of the whole-row forward kernels: a block of rows stays in L1/L2
between its reduction pass and its write pass (one row per task once rows are longer)."""


@njit(fastmath=_EW, cache=True)
def _forward_block_r(x, mask, has_mask, mode, out, lse, lo, hi):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Rows ``lo:hi``: :func:`_forward_row_r`, the logarithms of the block taken back to back.

    A libm call in the middle of each row stalls the row's SIMD loops (one
    ``log1p`` costs about as much as a 128-entry row), so log_softmax and
    logsumexp first reduce every row of the block to (max, t, r), then take
    the logarithms in one loop, then write the rows (still in cache).
    """
    F = x.dtype.type
    if mode == SOFTMAX:
        for i in range(lo, hi):
            lse[i] = _forward_row_r(x, mask, has_mask, mode, out, i)
        return
    nb = hi - lo
    ms = np.empty(nb, dtype=x.dtype)
    ts = np.empty(nb, dtype=x.dtype)
    rs = np.empty(nb, dtype=x.dtype)
    for k in range(nb):
        mx = _max_r(x, mask, has_mask, lo + k)
        ms[k] = mx
        ts[k] = F(0.0)
        rs[k] = F(0.0)
        if _kind(mx) == _NORMAL:
            t, r = _sum_exp_r(x, mask, has_mask, mx, out, False, lo + k)
            ts[k] = t
            rs[k] = r
    for k in range(nb):
        if ts[k] > F(0.0):
            rs[k] = _log_total(ts[k], rs[k])
    for k in range(nb):
        i = lo + k
        mx = ms[k]
        if _kind(mx) != _NORMAL:
            lse[i] = _forward_row_r(x, mask, has_mask, mode, out, i)
            continue
        lt = rs[k]
        if mode != LOGSUMEXP:
            _write_normal_r(x, mask, has_mask, mode, mx, lt, F(0.0), out, i)
        lse[i] = mx + lt


@njit(parallel=True, fastmath=_EW, cache=True)
def forward_rows(x, mask, has_mask, mode, out, lse, chunk):  # type: ignore[no-untyped-def]  # pragma: no cover
    r"""softmax / log_softmax / logsumexp over the rows of ``x``.

    Parameters
    ----------
    x : float32 or float64 array, shape (rows, n), C-contiguous
    mask : bool array, shape (rows, n) (or (1, 1), unread, when not ``has_mask``)
    has_mask : bool
    mode : int
        0 softmax, 1 log_softmax (written to ``out``), 2 logsumexp (only ``lse``).
    out : array like ``x`` (shape (1, 1) when ``mode == 2``)
    lse : array, shape (rows,): logsumexp of each row in modes 1 and 2 (in softmax
        mode, rows of at most ``chunk`` entries get NaN: no logarithm is taken)
    chunk : int
        Rows longer than this are split into chunks of this length.
    """
    rows, n = x.shape
    F = x.dtype.type
    if n <= chunk:
        block = max(1, BLOCK_ELEMS // n)
        nblock = (rows + block - 1) // block
        for b in prange(nblock):
            _forward_block_r(
                x, mask, has_mask, mode, out, lse, b * block, min(rows, (b + 1) * block)
            )
        return
    nch = (n + chunk - 1) // chunk
    ntask = rows * nch
    pm = np.empty(ntask, dtype=x.dtype)
    pt = np.zeros(ntask, dtype=x.dtype)
    pr = np.zeros(ntask, dtype=x.dtype)
    for k in prange(ntask):  # pass A: per-chunk max and (t, r) at the chunk's max
        i = k // nch
        lo = (k % nch) * chunk
        hi = min(lo + chunk, n)
        mi = mask[i, lo:hi] if has_mask else mask[0]
        oi = out[i, lo:hi] if mode != LOGSUMEXP else out[0]
        mx = _max(x[i, lo:hi], mi, has_mask)
        pm[k] = mx
        if _kind(mx) == _NORMAL:
            t, r = _sum_exp(x[i, lo:hi], mi, has_mask, mx, oi, mode == SOFTMAX)
            pt[k] = t
            pr[k] = r
    kinds = np.empty(rows, dtype=np.int64)
    rm = np.empty(rows, dtype=x.dtype)
    rlt = np.zeros(rows, dtype=x.dtype)
    rinv = np.zeros(rows, dtype=x.dtype)
    rcnt = np.zeros(rows, dtype=np.int64)
    for i in range(rows):  # combine the chunks of each row
        mx = F(-np.inf)
        for k in range(i * nch, (i + 1) * nch):
            mx = fmax(mx, pm[k])
        kind = _kind(mx)
        kinds[i] = kind
        rm[i] = mx
        if kind == _NORMAL:
            t = F(0.0)
            r = F(0.0)
            for k in range(i * nch, (i + 1) * nch):
                if pm[k] == mx:
                    t += pt[k]
                    r += pr[k]
                elif pm[k] > -np.inf:
                    r += (pt[k] + pr[k]) * F(math.exp(pm[k] - mx))
            rlt[i] = _log_total(t, r)
            rinv[i] = F(1.0) / (t + r)
        elif kind == _POSINF:
            mi = mask[i] if has_mask else mask[0]
            rcnt[i] = _count_posinf(x[i], mi, has_mask)
        lse[i] = _lse_value(kind, mx, rlt[i])
    if mode == LOGSUMEXP:
        return
    for k in prange(ntask):  # pass B: rescale or write
        i = k // nch
        lo = (k % nch) * chunk
        hi = min(lo + chunk, n)
        mi = mask[i, lo:hi] if has_mask else mask[0]
        scale = rinv[i]
        if kinds[i] == _NORMAL and mode == SOFTMAX:
            scale = F(math.exp(pm[k] - rm[i])) * rinv[i] if pm[k] > -np.inf else F(0.0)
        _write(
            x[i, lo:hi], mi, has_mask, mode, kinds[i], rm[i], rlt[i], scale, rcnt[i], out[i, lo:hi]
        )


@njit(fastmath=_RED, cache=True)
def _dot(s, g, mask, has_mask, mode):  # type: ignore[no-untyped-def]  # pragma: no cover
    r""":math:`\sum_j g_j s_j` (softmax) or :math:`\sum_j g_j` (log_softmax), masked g as 0."""
    F = s.dtype.type
    zero = F(0.0)
    acc = zero
    if mode == SOFTMAX_VJP:
        if has_mask:
            for j in range(s.shape[0]):
                gj = g[j]
                acc += (gj if mask[j] else zero) * s[j]
        else:
            for j in range(s.shape[0]):
                acc += g[j] * s[j]
    elif has_mask:
        for j in range(s.shape[0]):
            gj = g[j]
            acc += gj if mask[j] else zero
    else:
        for j in range(s.shape[0]):
            acc += g[j]
    return acc


@njit(fastmath=_EW, cache=True)
def _vjp_write(s, g, mask, has_mask, mode, d, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    F = s.dtype.type
    zero = F(0.0)
    if mode == SOFTMAX_VJP:
        if has_mask:
            for j in range(s.shape[0]):
                v = s[j] * (g[j] - d)
                out[j] = v if mask[j] else zero
        else:
            for j in range(s.shape[0]):
                out[j] = s[j] * (g[j] - d)
    elif has_mask:
        for j in range(s.shape[0]):
            v = g[j] - s[j] * d
            out[j] = v if mask[j] else zero
    else:
        for j in range(s.shape[0]):
            out[j] = g[j] - s[j] * d


@njit(fastmath=_RED, cache=True)
def _dot_r(s, g, mask, has_mask, mode, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`_dot` of row ``i`` (no row views, see :func:`_max_r`)."""
    F = s.dtype.type
    zero = F(0.0)
    acc = zero
    n = s.shape[1]
    if mode == SOFTMAX_VJP:
        if has_mask:
            for j in range(n):
                gj = g[i, j]
                acc += (gj if mask[i, j] else zero) * s[i, j]
        else:
            for j in range(n):
                acc += g[i, j] * s[i, j]
    elif has_mask:
        for j in range(n):
            gj = g[i, j]
            acc += gj if mask[i, j] else zero
    else:
        for j in range(n):
            acc += g[i, j]
    return acc


@njit(fastmath=_EW, cache=True)
def _vjp_write_r(s, g, mask, has_mask, mode, d, out, i):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`_vjp_write` of row ``i``."""
    zero = s.dtype.type(0.0)
    n = s.shape[1]
    if mode == SOFTMAX_VJP:
        if has_mask:
            for j in range(n):
                v = s[i, j] * (g[i, j] - d)
                out[i, j] = v if mask[i, j] else zero
        else:
            for j in range(n):
                out[i, j] = s[i, j] * (g[i, j] - d)
    elif has_mask:
        for j in range(n):
            v = g[i, j] - s[i, j] * d
            out[i, j] = v if mask[i, j] else zero
    else:
        for j in range(n):
            out[i, j] = g[i, j] - s[i, j] * d


@njit(parallel=True, fastmath=_EW, cache=True)
def vjp_rows(s, g, mask, has_mask, mode, out, chunk):  # type: ignore[no-untyped-def]  # pragma: no cover
    r"""softmax_vjp (mode 0) :math:`s \odot (g - \langle g, s\rangle)` or log_softmax_vjp
    (mode 1) :math:`g - s \sum_j g_j` over the rows of ``s`` and ``g`` (masked entries 0)."""
    rows, n = s.shape
    F = s.dtype.type
    if n <= chunk:
        for i in prange(rows):
            _vjp_write_r(s, g, mask, has_mask, mode, _dot_r(s, g, mask, has_mask, mode, i), out, i)
        return
    nch = (n + chunk - 1) // chunk
    ntask = rows * nch
    part = np.empty(ntask, dtype=s.dtype)
    for k in prange(ntask):
        i = k // nch
        lo = (k % nch) * chunk
        hi = min(lo + chunk, n)
        mi = mask[i, lo:hi] if has_mask else mask[0]
        part[k] = _dot(s[i, lo:hi], g[i, lo:hi], mi, has_mask, mode)
    dots = np.empty(rows, dtype=s.dtype)
    for i in range(rows):
        acc = F(0.0)
        for k in range(i * nch, (i + 1) * nch):
            acc += part[k]
        dots[i] = acc
    for k in prange(ntask):
        i = k // nch
        lo = (k % nch) * chunk
        hi = min(lo + chunk, n)
        mi = mask[i, lo:hi] if has_mask else mask[0]
        _vjp_write(s[i, lo:hi], g[i, lo:hi], mi, has_mask, mode, dots[i], out[i, lo:hi])


@njit(fastmath=_RED, cache=True)
def _weighted_shift_sum(x, weight, has_weight, m):  # type: ignore[no-untyped-def]  # pragma: no cover
    r""":math:`\sum_c w_c (x_c - m)`, terms with :math:`w_c = 0` left out (0·−inf is 0)."""
    F = x.dtype.type
    zero = F(0.0)
    acc = zero
    if has_weight:
        for c in range(x.shape[0]):
            w = weight[c]
            v = w * (x[c] - m)
            acc += v if w != zero else zero
    else:
        for c in range(x.shape[0]):
            acc += x[c] - m
    return acc


@njit(fastmath=_EW, cache=True)
def _ce_grad_write(grad, weight, has_weight, a_inv, cu, inv_denom):  # type: ignore[no-untyped-def]  # pragma: no cover
    r"""``grad`` holds :math:`e^{x_c - m}`; write :math:`(a S_c - c_u w_c) / \text{denom}`."""
    if has_weight:
        for c in range(grad.shape[0]):
            grad[c] = (a_inv * grad[c] - cu * weight[c]) * inv_denom
    else:
        for c in range(grad.shape[0]):
            grad[c] = (a_inv * grad[c] - cu) * inv_denom


@njit(cache=True)
def _ce_row_special(x, y, weight, has_weight, cy, cu, a, kind, cnt, inv_denom, grad):  # type: ignore[no-untyped-def]  # pragma: no cover
    """A row holding NaN, +inf or only −inf: the reference's formulas, entry by entry."""
    F = x.dtype.type
    loss = F(0.0)
    for c in range(x.shape[0]):
        if kind == _NAN:
            lp = F(np.nan)
        elif kind == _EMPTY:
            lp = F(-np.inf)
        else:
            lp = F(-math.log(cnt)) if x[c] == np.inf else F(-np.inf)
        w = weight[c] if has_weight else F(1.0)
        b = cu * w + (cy if c == y else F(0.0))
        if b != F(0.0):
            loss -= b * lp
        grad[c] = (a * F(math.exp(lp)) - b) * inv_denom
    return loss


@njit(parallel=True, fastmath=_EW, cache=True)
def cross_entropy_rows(  # type: ignore[no-untyped-def]  # pragma: no cover
    x, target, weight, has_weight, ignore_index, has_ignore, smoothing, inv_denom, loss, grad
):
    r"""Per-sample cross-entropy and its gradient for integer labels, one pass per row.

    With :math:`c_y = (1-\varepsilon) w_y`, :math:`c_u = \varepsilon / C` and
    :math:`a = c_y + c_u \sum_c w_c` (all 0 for an ignored sample):

    .. math::

        \ell = -c_y \log S_y - c_u \Bigl(\sum_c w_c (x_c - m) - \log\Sigma \sum_c w_c\Bigr),
        \qquad
        \frac{\partial \ell}{\partial x_c} = \frac{a S_c - c_u w_c - c_y [c = y]}{\text{denom}}.

    The row is read from memory once (its max); the exponentials are stored in
    ``grad`` and turned into the gradient in place while the row is in cache.

    Parameters
    ----------
    x : float array, shape (rows, C), C-contiguous
    target : int64 array, shape (rows,), labels already checked to be in range
    weight : float array, shape (C,) (unread unless ``has_weight``)
    smoothing : float, ε
    inv_denom : float, 1 / the mean's denominator (1 for sum/none)
    loss : float array, shape (rows,), per-sample loss (output)
    grad : float array like ``x`` (output)
    """
    rows = x.shape[0]
    sumw = _weight_sum(x, weight, has_weight)
    # blocks of 256 rows with few classes (one flat exp loop), else one row per task
    block = 256 if x.shape[1] <= SMALL_C else 1
    nblock = (rows + block - 1) // block
    for b in prange(nblock):
        lo = b * block
        _ce_span(
            x,
            target,
            weight,
            has_weight,
            ignore_index,
            has_ignore,
            smoothing,
            sumw,
            inv_denom,
            loss,
            grad,
            lo,
            min(lo + block, rows),
        )


@njit(cache=True)
def _weight_sum(x, weight, has_weight):  # type: ignore[no-untyped-def]  # pragma: no cover
    r""":math:`\sum_c w_c` (the number of classes without weights), in ``x``'s dtype."""
    F = x.dtype.type
    if not has_weight:
        return F(x.shape[1])
    sumw = F(0.0)
    for c in range(x.shape[1]):
        sumw += weight[c]
    return sumw


@njit(fastmath=_EW, cache=True)
def _ce_span(  # type: ignore[no-untyped-def]  # pragma: no cover
    x,
    target,
    weight,
    has_weight,
    ignore_index,
    has_ignore,
    smoothing,
    sumw,
    inv_denom,
    loss,
    grad,
    lo,
    hi,
):
    """Loss and gradient of rows ``lo:hi``, in the calling thread."""
    n = x.shape[1]
    F = x.dtype.type
    cu_all = F(smoothing / n)
    invd = F(inv_denom)
    if n <= SMALL_C:
        for b in range(lo, hi, 256):
            _ce_block_small(
                x,
                grad,
                target,
                b,
                min(b + 256, hi),
                weight,
                has_weight,
                ignore_index,
                has_ignore,
                smoothing,
                sumw,
                cu_all,
                invd,
                loss,
            )
        return
    nomask = np.ones(1, dtype=np.bool_)
    for i in range(lo, hi):
        loss[i] = _ce_row(
            x[i],
            grad[i],
            target[i],
            weight,
            has_weight,
            ignore_index,
            has_ignore,
            smoothing,
            sumw,
            cu_all,
            invd,
            nomask,
        )


@njit(fastmath=_EW, cache=True)
def _ce_row(  # type: ignore[no-untyped-def]  # pragma: no cover
    xi, gi, y, weight, has_weight, ignore_index, has_ignore, smoothing, sumw, cu_all, invd, nomask
):
    """One sample: its loss returned, its gradient written to ``gi``."""
    F = xi.dtype.type
    counted = not (has_ignore and y == ignore_index)
    cy = F(0.0)
    cu = F(0.0)
    wy = F(0.0)
    if counted:
        wy = weight[y] if has_weight else F(1.0)
        cy = F((1.0 - smoothing) * wy)
        cu = cu_all
    a = cy + cu * sumw
    mx = _max(xi, nomask, False)
    kind = _kind(mx)
    if kind != _NORMAL:
        cnt = _count_posinf(xi, nomask, False) if kind == _POSINF else 0
        return _ce_row_special(xi, y, weight, has_weight, cy, cu, a, kind, cnt, invd, gi)
    t, r = _sum_exp(xi, nomask, False, mx, gi, True)
    return _ce_finish(xi, gi, y, weight, has_weight, counted, cy, cu, wy, a, sumw, invd, mx, t, r)


@njit(fastmath=_EW, cache=True)
def _ce_finish(xi, gi, y, weight, has_weight, counted, cy, cu, wy, a, sumw, invd, mx, t, r):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Loss and gradient of a normal row from its stats; ``gi`` holds :math:`e^{x_c - m}`."""
    F = xi.dtype.type
    lt = _log_total(t, r)
    inv = F(1.0) / (t + r)
    li = F(0.0)
    if cy != F(0.0):
        li -= cy * ((xi[y] - mx) - lt)
    if cu != F(0.0):
        li -= cu * (_weighted_shift_sum(xi, weight, has_weight, mx) - lt * sumw)
    ey = gi[y] if counted else F(0.0)
    _ce_grad_write(gi, weight, has_weight, a * inv, cu, invd)
    if counted:
        gi[y] = (a * inv * ey - (cy + cu * wy)) * invd
    return li


SMALL_C = 32
"""Up to this many classes, rows are processed in blocks with one flat exp loop."""


@njit(fastmath=_EW, cache=True)
def _flat_exp(g):  # type: ignore[no-untyped-def]  # pragma: no cover
    for j in range(g.shape[0]):
        g[j] = fast_exp(g[j])


@njit(fastmath=_EW, cache=True)
def _ce_block_small(  # type: ignore[no-untyped-def]  # pragma: no cover
    x,
    grad,
    target,
    lo,
    hi,
    weight,
    has_weight,
    ignore_index,
    has_ignore,
    smoothing,
    sumw,
    cu_all,
    invd,
    loss,
):
    """Rows ``lo:hi`` of a few-class problem, written out with 2-D indexing.

    With 10 classes a per-row loop runs entirely in the scalar remainder of its
    SIMD loop, and a row view (``x[i]``) costs reference-count updates worth
    more than the row's arithmetic. So the shifted logits of the whole block
    are written first, exponentiated by one flat SIMD loop, and the loss and
    gradient of each row are then formed in place.
    """
    n = x.shape[1]
    F = x.dtype.type
    zero = F(0.0)
    one = F(1.0)
    ms = np.empty(hi - lo, dtype=x.dtype)
    for i in range(lo, hi):
        mx = F(-np.inf)
        for c in range(n):
            mx = fmax(mx, x[i, c])
        ms[i - lo] = mx
        for c in range(n):
            grad[i, c] = x[i, c] - mx
    _flat_exp(grad[lo:hi].reshape(-1))
    # (t, r) of every normal row, then their logarithms back to back: a libm
    # call between two rows' loops stalls them
    tots = np.ones(hi - lo, dtype=x.dtype)
    lts = np.zeros(hi - lo, dtype=x.dtype)
    tcount = np.zeros(hi - lo, dtype=x.dtype)
    for i in range(lo, hi):
        mx = ms[i - lo]
        if _kind(mx) != _NORMAL:
            continue
        t = zero
        r = zero
        for c in range(n):
            at = F(x[i, c] - mx == zero)
            t += at
            r += grad[i, c] - at
        tots[i - lo] = t + r
        tcount[i - lo] = t
        lts[i - lo] = r
    for k in range(hi - lo):
        if tcount[k] > zero:
            lts[k] = _log_total(tcount[k], lts[k])
    for i in range(lo, hi):
        y = target[i]
        mx = ms[i - lo]
        counted = not (has_ignore and y == ignore_index)
        cy = zero
        cu = zero
        wy = zero
        if counted:
            wy = weight[y] if has_weight else one
            cy = F((1.0 - smoothing) * wy)
            cu = cu_all
        a = cy + cu * sumw
        kind = _kind(mx)
        if kind != _NORMAL:
            nomask = np.ones(1, dtype=np.bool_)
            cnt = _count_posinf(x[i], nomask, False) if kind == _POSINF else 0
            loss[i] = _ce_row_special(
                x[i], y, weight, has_weight, cy, cu, a, kind, cnt, invd, grad[i]
            )
            continue
        ws = zero
        for c in range(n):
            z = x[i, c] - mx
            if has_weight:
                w = weight[c]
                ws += w * z if w != zero else zero
            else:
                ws += z
        lt = lts[i - lo]
        inv = one / tots[i - lo]
        li = zero
        if cy != zero:
            li -= cy * ((x[i, y] - mx) - lt)
        if cu != zero:
            li -= cu * (ws - lt * sumw)
        loss[i] = li
        ey = grad[i, y] if counted else zero
        ai = a * inv
        for c in range(n):
            wc = weight[c] if has_weight else one
            grad[i, c] = (ai * grad[i, c] - cu * wc) * invd
        if counted:
            grad[i, y] = (ai * ey - (cy + cu * wy)) * invd


# Serial twins for small inputs: a parallel launch costs microseconds when the
# cores are idle and a whole scheduler time slice (milliseconds) when another
# process holds one of them, which small calls cannot amortise.


@njit(fastmath=_EW, cache=True)
def forward_rows_serial(x, mask, has_mask, mode, out, lse):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`forward_rows` in the calling thread, whole rows."""
    rows = x.shape[0]
    block = max(1, BLOCK_ELEMS // x.shape[1])
    for lo in range(0, rows, block):
        _forward_block_r(x, mask, has_mask, mode, out, lse, lo, min(rows, lo + block))


@njit(fastmath=_EW, cache=True)
def vjp_rows_serial(s, g, mask, has_mask, mode, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """:func:`vjp_rows` in the calling thread."""
    for i in range(s.shape[0]):
        _vjp_write_r(s, g, mask, has_mask, mode, _dot_r(s, g, mask, has_mask, mode, i), out, i)


@njit(fastmath=_EW, cache=True)
def cross_entropy_rows_serial(  # type: ignore[no-untyped-def]  # pragma: no cover
    x, target, weight, has_weight, ignore_index, has_ignore, smoothing, inv_denom, loss, grad
):
    """:func:`cross_entropy_rows` in the calling thread."""
    _ce_span(
        x,
        target,
        weight,
        has_weight,
        ignore_index,
        has_ignore,
        smoothing,
        _weight_sum(x, weight, has_weight),
        inv_denom,
        loss,
        grad,
        0,
        x.shape[0],
    )
