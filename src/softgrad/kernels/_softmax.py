r"""Fused softmax / log_softmax / logsumexp and their vector-Jacobian products.

Layout of the work (the delegation layer moves the softmax axis last and
gives every kernel a ``(rows, n)`` C-contiguous array):

* **short rows** (``n <= chunk``): ``prange`` over blocks of rows; each row is
  read once from memory for its max (with a NaN count), then, cache-hot, a
  second loop computes :math:`e_j = e^{x_j - m}` with :func:`fast_exp`,
  stores it in the output and sums it; a third loop scales or writes the output.
* **long rows**: each row is cut into chunks. With fewer than
  :data:`SPLIT_BELOW_ROWS` rows, ``prange`` runs over all (row, chunk) pairs so
  that one or two long rows such as (1, 1 000 000) keep every core busy; with
  more rows, ``prange`` runs over rows and each thread walks its row's chunks
  (one parallel region, no serial step). Pass A reduces each chunk to
  (local max :math:`m_k`, count of entries at it, rest of the sum), storing
  :math:`e^{x_j - m_k}` where the output needs it (softmax: the output; log_softmax
  with ``s_out``: ``s_out``); the per-row combination is
  :math:`\sum_j e^{x_j - m} = \sum_k e^{m_k - m}(t_k + r_k)`; pass B scales each
  chunk's stored exponentials by :math:`e^{m_k - m}/\Sigma` (softmax, and
  :math:`S` beside log_softmax) or writes :math:`(x_j - m) - \log\Sigma`
  (log_softmax). One ``exp`` per entry: on a CPU where ``exp`` costs more than
  moving 4 bytes (AVX2, 8 x 1 000 000 float32 serial: 3.25 ns per entry with
  the exponential computed again in pass B, torch 2.56), storing it and reading
  it back beats recomputing it.

Both layouts use the span primitives of :mod:`softgrad.kernels._rows`. Each
kernel exists parallel (``forward_rows``) and serial (``forward_rows_serial``),
compiled from one body. No kernel assumes finite inputs: rows holding NaN,
+inf, or nothing (fully masked or all −inf) take the reference's rules (see
``softgrad._agnostic._softmax``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from softgrad.kernels._exp import fast_exp, fmax
from softgrad.kernels._rows import (
    EMPTY,
    EW,
    NAN,
    NORMAL,
    POSINF,
    RED,
    count_posinf,
    kept,
    kind_of,
    log_total,
    log_totals,
    lse_value,
    parallel_and_serial,
    row_max,
    span,
    sum_exp,
)

__all__ = [
    "LOGSUMEXP",
    "LOG_SOFTMAX",
    "LOG_SOFTMAX_VJP",
    "LOG_SOFTMAX_VJP_OF_LOG",
    "LOG_SOFTMAX_VJP_OF_S",
    "SOFTMAX",
    "SOFTMAX_VJP",
    "RowOptions",
    "forward_rows",
    "forward_rows_serial",
    "vjp_rows",
    "vjp_rows_serial",
]

# forward modes
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2
# vjp modes (2 takes log S in place of S: the output log_softmax saves; 3 takes S with
# -1 at excluded entries: what log_softmax keeps in s_out)
SOFTMAX_VJP, LOG_SOFTMAX_VJP, LOG_SOFTMAX_VJP_OF_LOG, LOG_SOFTMAX_VJP_OF_S = 0, 1, 2, 3

SPLIT_BELOW_ROWS = 4
"""Long rows are split across threads only when there are fewer rows than this; from
this many on, each thread takes whole rows (and walks each in chunks): one parallel
region instead of two with a serial step between, which under load waited whole
scheduler slices (8 x 1 000 000 float32, 2 threads: VJP 108 ms whole rows vs 264 ms
split, log_softmax 151 vs 355, torch 88-108 and 165-187, load average 13.9)."""

BLOCK_ELEMS = 8192
"""Entries per task of the whole-row forward kernels: a block of rows stays in L1/L2
between its reduction pass and its write pass (one row per task once rows are longer)."""


class RowOptions(NamedTuple):
    """The options of a row kernel, passed as one value."""

    mode: int
    """Forward: 0 softmax, 1 log_softmax, 2 logsumexp; VJP: 0 softmax, 1 log_softmax,
    2 log_softmax from log S."""
    chunk: int
    """Rows longer than this are split into chunks of this length across threads."""


@njit(fastmath=EW, cache=True)
def _write_normal(x, mask, mode, m, lt, scale, out, i, lo, hi):
    """Output of a normal row's span: softmax scales the stored exponentials by
    ``scale``; log_softmax writes :math:`(x_j - m) - lt` (−inf where masked)."""
    ninf = x.dtype.type(-np.inf)
    xs, ms, os = span(x, i, lo, hi), span(mask, i, lo, hi), span(out, i, lo, hi)
    if mode == SOFTMAX:
        for j in range(os.shape[0]):
            os[j] = os[j] * scale
        return
    for j in range(xs.shape[0]):
        v = (xs[j] - m) - lt
        if mask is not None:
            v = v if ms[j] else ninf
        os[j] = v


@njit(fastmath=EW, cache=True)
def _write_special(x, mask, mode, kind, cnt, out, i, lo, hi):
    """Output of a span of a row holding NaN, +inf or nothing (the reference's rules)."""
    F = x.dtype.type
    ninf = F(-np.inf)
    if kind == NAN:
        for j in range(lo, hi):
            out[i, j] = F(np.nan)
    elif kind == EMPTY:
        fill = F(0.0) if mode == SOFTMAX else ninf
        for j in range(lo, hi):
            out[i, j] = fill
    else:  # +inf in the row: the mass is shared among its +inf entries
        hit = F(1.0 / cnt) if mode == SOFTMAX else F(-math.log(cnt))
        miss = F(0.0) if mode == SOFTMAX else ninf
        for j in range(lo, hi):
            inc = x[i, j] == np.inf
            if mask is not None:
                inc = inc and mask[i, j]
            out[i, j] = hit if inc else miss


@njit(fastmath=EW, cache=True)
def _write_s_of_log(log_s, s_out, i, lo, hi):
    r""":math:`S = e^{\log S}` beside :math:`\log S` over a span of a row holding NaN,
    +inf or nothing; −1 where :math:`\log S = -\infty` (excluded entries, which get
    no gradient)."""
    ls, ss = span(log_s, i, lo, hi), span(s_out, i, lo, hi)
    ninf = log_s.dtype.type(-np.inf)
    minus_one = log_s.dtype.type(-1.0)
    for j in range(ls.shape[0]):
        ss[j] = minus_one if ls[j] == ninf else fast_exp(ls[j])


@njit(fastmath=EW, cache=True)
def _write_log_and_s(x, mask, m, lt, scale, out, s_out, i, lo, hi):
    r"""log_softmax's output and :math:`S` over a span of a normal row, in one loop:
    :math:`\log S_j = (x_j - m) - lt` (−inf where masked) to ``out``, and ``s_out``'s
    :math:`e^{x_j - m}` scaled by ``scale`` (:math:`1/\Sigma`, times :math:`e^{m_k - m}`
    for a chunk), −1 where :math:`\log S_j = -\infty`. One pass over the span instead
    of a second one for :math:`S` (a 64 x 128 float32 block in cache, one thread:
    1.44 → 0.79 ns per entry)."""
    F = x.dtype.type
    ninf = F(-np.inf)
    minus_one = F(-1.0)
    xs, ms, os, ss = (
        span(x, i, lo, hi),
        span(mask, i, lo, hi),
        span(out, i, lo, hi),
        span(s_out, i, lo, hi),
    )
    for j in range(xs.shape[0]):
        v = (xs[j] - m) - lt
        if mask is not None:
            v = v if ms[j] else ninf
        os[j] = v
        ss[j] = minus_one if v == ninf else ss[j] * scale


@njit(fastmath=EW, cache=True)
def _forward_row(x, mask, mode, out, i):
    """One whole row, cache-hot: max, exponentials (stored for softmax), output.

    Returns the row's logsumexp; in softmax mode a normal row's is not computed
    (NaN is returned): its libm call costs as much as a short row.
    """
    F = x.dtype.type
    n = x.shape[1]
    mx = row_max(x, mask, i, 0, n)
    kind = kind_of(mx)
    if kind == NORMAL:
        if mode == SOFTMAX:
            t, r = sum_exp(x, mask, mx, out, i, 0, n, False)
            _write_normal(x, mask, mode, mx, F(0.0), F(1.0) / (t + r), out, i, 0, n)
            return F(np.nan)
        t, r = sum_exp(x, mask, mx, None, i, 0, n)
        lt = log_total(t, r)
        if mode != LOGSUMEXP:
            _write_normal(x, mask, mode, mx, lt, F(0.0), out, i, 0, n)
        return mx + lt
    cnt = count_posinf(x, mask, i, 0, n) if kind == POSINF else 0
    if mode != LOGSUMEXP:
        _write_special(x, mask, mode, kind, cnt, out, i, 0, n)
    return lse_value(kind, mx, F(0.0))


@njit(fastmath=EW, cache=True)
def _forward_block(x, mask, mode, out, s_out, lse, lo, hi):
    """Rows ``lo:hi``: :func:`_forward_row`, the logarithms of the block taken back to back.

    A libm call in the middle of each row stalls the row's SIMD loops (one
    ``log1p`` costs about as much as a 128-entry row), so log_softmax and
    logsumexp first reduce every row of the block to (max, t, r), then take
    the logarithms in one loop, then write the rows (still in cache).

    With ``s_out`` (log_softmax only), the exponentials the sum computes are
    kept there and become :math:`S` (−1 at excluded entries) while the row is
    in cache: the backward then needs no ``exp`` (:func:`_write_log_and_s`).
    """
    F = x.dtype.type
    n = x.shape[1]
    if mode == SOFTMAX:  # a normal row here, not in _forward_row: 0.3 ns per entry less
        for i in range(lo, hi):  # at 128 entries (its other branches cost the row loops)
            mx = row_max(x, mask, i, 0, n)
            if kind_of(mx) == NORMAL:
                t, r = sum_exp(x, mask, mx, out, i, 0, n, False)
                _write_normal(x, mask, mode, mx, F(0.0), F(1.0) / (t + r), out, i, 0, n)
                lse[i] = F(np.nan)
            else:
                lse[i] = _forward_row(x, mask, mode, out, i)
        return
    nb = hi - lo
    ms = np.empty(nb, dtype=x.dtype)
    ts = np.zeros(nb, dtype=x.dtype)
    rs = np.zeros(nb, dtype=x.dtype)
    for k in range(nb):
        mx = row_max(x, mask, lo + k, 0, n)
        ms[k] = mx
        if kind_of(mx) == NORMAL:
            ts[k], rs[k] = sum_exp(x, mask, mx, s_out, lo + k, 0, n)
    inv = np.ones(nb if s_out is not None else 0, dtype=x.dtype)
    if s_out is not None:
        for k in range(nb):
            if ts[k] > F(0.0):
                inv[k] = F(1.0) / (ts[k] + rs[k])
    lts = np.empty(nb, dtype=x.dtype)
    log_totals(ts, rs, lts)
    for k in range(nb):
        i = lo + k
        mx = ms[k]
        if kind_of(mx) != NORMAL:
            lse[i] = _forward_row(x, mask, mode, out, i)
            if s_out is not None:
                _write_s_of_log(out, s_out, i, 0, n)
            continue
        if s_out is not None:
            _write_log_and_s(x, mask, mx, lts[k], inv[k], out, s_out, i, 0, n)
        elif mode != LOGSUMEXP:
            _write_normal(x, mask, mode, mx, lts[k], F(0.0), out, i, 0, n)
        lse[i] = mx + lts[k]


@njit(cache=True)
def _combine_chunks(pm, pt, pr, first, nch):
    r"""(max, :math:`\log\Sigma`, :math:`1/\Sigma`) of a row from its chunks' (m, t, r),
    entries ``first ... first + nch - 1`` of ``pm, pt, pr``."""
    F = pm.dtype.type
    mx = F(-np.inf)
    for k in range(first, first + nch):
        mx = fmax(mx, pm[k])
    if kind_of(mx) != NORMAL:
        return mx, F(0.0), F(0.0)
    t = F(0.0)
    r = F(0.0)
    for k in range(first, first + nch):
        if pm[k] == mx:
            t += pt[k]
            r += pr[k]
        elif pm[k] > -np.inf:
            r += (pt[k] + pr[k]) * F(math.exp(pm[k] - mx))
    return mx, log_total(t, r), F(1.0) / (t + r)


@njit(fastmath=EW, cache=True)
def _reduce_span(x, mask, mode, out, s_out, i, lo, chunk):
    """(max, t, r) of the chunk of row ``i`` starting at ``lo`` (pass A of long rows).

    The chunk's :math:`e^{x_j - m_k}` are stored where pass B will scale them:
    in ``out`` (softmax) or ``s_out`` (log_softmax keeping :math:`S`).
    """
    F = x.dtype.type
    hi = min(lo + chunk, x.shape[1])
    mx = row_max(x, mask, i, lo, hi)
    if kind_of(mx) != NORMAL:
        return mx, F(0.0), F(0.0)
    if mode == SOFTMAX:
        t, r = sum_exp(x, mask, mx, out, i, lo, hi)
    elif s_out is not None:
        t, r = sum_exp(x, mask, mx, s_out, i, lo, hi)
    else:
        t, r = sum_exp(x, mask, mx, None, i, lo, hi)
    return mx, t, r


@njit(cache=True)
def _chunk_scale(pm, k, m, inv):
    r""":math:`e^{m_k - m}/\Sigma`: what turns chunk ``k``'s stored :math:`e^{x_j - m_k}`
    into :math:`S_j`; 0 for a chunk with no included entry (:math:`m_k = -\infty`)."""
    F = pm.dtype.type
    if pm[k] == -np.inf:
        return F(0.0)
    return F(math.exp(pm[k] - m)) * inv


@njit(cache=True)
def _combine_row(x, mask, pm, pt, pr, lse, i, first, nch):
    r"""(max, :math:`\log\Sigma`, :math:`1/\Sigma`, +inf count) of row ``i`` from its
    chunks' (m, t, r) at ``first ...``; its logsumexp written to ``lse[i]``."""
    mx, lt, inv = _combine_chunks(pm, pt, pr, first, nch)
    kind = kind_of(mx)
    cnt = count_posinf(x, mask, i, 0, x.shape[1]) if kind == POSINF else 0
    lse[i] = lse_value(kind, mx, lt)
    return mx, lt, inv, cnt


@njit(fastmath=EW, cache=True)
def _write_span(x, mask, mode, m, lt, scale, cnt, out, s_out, i, lo, chunk):
    """Pass B of long rows: the output of the chunk of row ``i`` starting at ``lo``
    (and :math:`S` in ``s_out``); ``scale`` is the chunk's :func:`_chunk_scale`."""
    F = x.dtype.type
    hi = min(lo + chunk, x.shape[1])
    kind = kind_of(m)
    if kind != NORMAL:
        _write_special(x, mask, mode, kind, cnt, out, i, lo, hi)
        if s_out is not None:
            _write_s_of_log(out, s_out, i, lo, hi)
        return
    if mode == SOFTMAX and scale == F(0.0):  # no included entry: nothing was stored
        for j in range(lo, hi):
            out[i, j] = F(0.0)
        return
    if s_out is not None:
        _write_log_and_s(x, mask, m, lt, scale, out, s_out, i, lo, hi)
    else:
        _write_normal(x, mask, mode, m, lt, scale, out, i, lo, hi)


@njit(fastmath=EW, cache=True)
def _long_row(x, mask, mode, out, s_out, lse, i, chunk, nch):
    """One long row in the calling thread: pass A over its chunks, combine, pass B over
    them in reverse order."""
    pm = np.empty(nch, dtype=x.dtype)
    pt = np.empty(nch, dtype=x.dtype)
    pr = np.empty(nch, dtype=x.dtype)
    for c in range(nch):
        pm[c], pt[c], pr[c] = _reduce_span(x, mask, mode, out, s_out, i, c * chunk, chunk)
    m, lt, inv, cnt = _combine_row(x, mask, pm, pt, pr, lse, i, 0, nch)
    if mode == LOGSUMEXP:
        return
    for c in range(nch - 1, -1, -1):  # last first: pass A read those last, still in L3
        scale = _chunk_scale(pm, c, m, inv)
        _write_span(x, mask, mode, m, lt, scale, cnt, out, s_out, i, c * chunk, chunk)


def _forward_rows(x, mask, out, s_out, lse, opts):
    r"""softmax / log_softmax / logsumexp over the rows of ``x``.

    Parameters
    ----------
    x : float32 or float64 array, shape (rows, n), C-contiguous
    mask : bool array, shape (rows, n), or None
    out : array like ``x`` (shape (1, 1), unwritten, in logsumexp mode)
    s_out : array like ``x``, or None
        log_softmax mode only: :math:`S` is written there too, −1 at the
        excluded entries (the input of the VJP's mode 3: no ``exp`` in the backward).
    lse : array, shape (rows,): logsumexp of each row in modes 1 and 2 (in softmax
        mode, rows of at most ``chunk`` entries get NaN: no logarithm is taken)
    opts : RowOptions
        ``mode`` (0 softmax, 1 log_softmax, 2 logsumexp) and ``chunk``.
    """
    mode, chunk = opts
    rows, n = x.shape
    if n <= chunk:
        block = max(1, BLOCK_ELEMS // n)
        nblock = (rows + block - 1) // block
        for b in prange(nblock):
            _forward_block(x, mask, mode, out, s_out, lse, b * block, min(rows, (b + 1) * block))
        return
    nch = (n + chunk - 1) // chunk
    if rows >= SPLIT_BELOW_ROWS:
        for i in prange(rows):  # whole rows per thread, each walked in chunks
            _long_row(x, mask, mode, out, s_out, lse, i, chunk, nch)
        return
    ntask = rows * nch
    pm = np.empty(ntask, dtype=x.dtype)
    pt = np.zeros(ntask, dtype=x.dtype)
    pr = np.zeros(ntask, dtype=x.dtype)
    for k in prange(ntask):  # pass A: per-chunk max and (t, r) at the chunk's max
        pm[k], pt[k], pr[k] = _reduce_span(
            x, mask, mode, out, s_out, k // nch, (k % nch) * chunk, chunk
        )
    rm = np.empty(rows, dtype=x.dtype)
    rlt = np.zeros(rows, dtype=x.dtype)
    rinv = np.zeros(rows, dtype=x.dtype)
    rcnt = np.zeros(rows, dtype=np.int64)
    for i in range(rows):  # combine the chunks of each row
        rm[i], rlt[i], rinv[i], rcnt[i] = _combine_row(x, mask, pm, pt, pr, lse, i, i * nch, nch)
    if mode == LOGSUMEXP:
        return
    for k in prange(ntask):  # pass B: write
        i = k // nch
        lo = (k % nch) * chunk
        scale = _chunk_scale(pm, k, rm[i], rinv[i])
        _write_span(x, mask, mode, rm[i], rlt[i], scale, rcnt[i], out, s_out, i, lo, chunk)


forward_rows, forward_rows_serial = parallel_and_serial(EW)(_forward_rows)


@njit(fastmath=RED, cache=True)
def _dot(s, g, mask, mode, i, lo, hi):
    r""":math:`\sum_j g_j s_j` (softmax) or :math:`\sum_j g_j` (log_softmax) over a span,
    masked entries of ``g`` counted as 0 (and, from :math:`\log S`, entries where it is −inf)."""
    zero = s.dtype.type(0.0)
    acc = zero
    ss, gs, ms = span(s, i, lo, hi), span(g, i, lo, hi), span(mask, i, lo, hi)
    for j in range(ss.shape[0]):
        gj = kept(gs, ms, j, zero)
        if mode == LOG_SOFTMAX_VJP_OF_LOG:
            gj = gj if ss[j] != -np.inf else zero
        elif mode == LOG_SOFTMAX_VJP_OF_S:
            gj = zero if ss[j] < zero else gj
        acc += gj * ss[j] if mode == SOFTMAX_VJP else gj
    return acc


@njit(fastmath=EW, cache=True)
def _vjp_write(s, g, mask, mode, d, out, i, lo, hi):
    r""":math:`s_j (g_j - d)` (softmax), :math:`g_j - s_j d` (log_softmax) or
    :math:`g_j - e^{\log s_j} d` (from :math:`\log S`; 0 where it is −inf) over a span."""
    zero = s.dtype.type(0.0)
    ss, gs, os = span(s, i, lo, hi), span(g, i, lo, hi), span(out, i, lo, hi)
    ms = span(mask, i, lo, hi)
    for j in range(ss.shape[0]):
        if mode == SOFTMAX_VJP:
            v = ss[j] * (gs[j] - d)
        elif mode == LOG_SOFTMAX_VJP:
            v = gs[j] - ss[j] * d
        elif mode == LOG_SOFTMAX_VJP_OF_S:
            v = zero if ss[j] < zero else gs[j] - ss[j] * d
        else:
            v = gs[j] - fast_exp(ss[j]) * d if ss[j] != -np.inf else zero
        if mask is not None:
            v = v if ms[j] else zero
        os[j] = v


@njit(fastmath=RED, cache=True)
def _sum(g, i, lo, hi):
    r""":math:`\sum_j g_j` over a span."""
    acc = g.dtype.type(0.0)
    gs = span(g, i, lo, hi)
    for j in range(gs.shape[0]):
        acc += gs[j]
    return acc


@njit(fastmath=EW, cache=True)
def _write_counting(s, g, mode, d, out, i, lo, hi):
    r""":func:`_vjp_write` of mode 2 or 3 over a span, returning how many entries it
    excluded (:math:`\log S_j = -\infty`, or :math:`s_j < 0`)."""
    zero = s.dtype.type(0.0)
    ss, gs, os = span(s, i, lo, hi), span(g, i, lo, hi), span(out, i, lo, hi)
    excluded = 0
    for j in range(ss.shape[0]):
        if mode == LOG_SOFTMAX_VJP_OF_S:
            ex = ss[j] < zero
            v = gs[j] - ss[j] * d
        else:
            ex = ss[j] == -np.inf
            v = gs[j] - fast_exp(ss[j]) * d
        excluded += ex
        os[j] = zero if ex else v
    return excluded


@njit(fastmath=EW, cache=True)
def _long_row_vjp(s, g, mask, mode, out, i, n, chunk):
    r"""The VJP of a row too long to stay in cache: its dot product, then the write
    pass over its chunks *last first*, so that it starts on the chunks the dot product
    read last, still in the L3 cache (8 x 1 000 000 float32 softmax VJP, 2 threads:
    6.3-6.6 → 5.6-6.0 ms)."""
    d = _dot(s, g, mask, mode, i, 0, n)
    for c in range((n - 1) // chunk, -1, -1):
        _vjp_write(s, g, mask, mode, d, out, i, c * chunk, min(c * chunk + chunk, n))


@njit(fastmath=EW, cache=True)
def _long_row_of_log_softmax(s, g, mode, out, i, n, chunk):
    r"""The log_softmax VJP (mode 2 or 3) of a row too long to stay in cache:
    :math:`d = \sum_j g_j` reads ``g`` alone, then the write pass (chunks last first,
    as :func:`_long_row_vjp`) counts the excluded entries; only a row that has some is
    done again with :math:`d` over the kept ones.

    Each pass reads a row of 1 000 000 float32 from memory, so summing ``g`` without
    ``s`` saves a quarter of the traffic (8 x 1 000 000, mode 3, 2 threads: 9.9 →
    8.9 ms); the rows that take the second pass are those of masked or −inf logits.
    """
    d = _sum(g, i, 0, n)
    excluded = 0
    for c in range((n - 1) // chunk, -1, -1):
        excluded += _write_counting(s, g, mode, d, out, i, c * chunk, min(c * chunk + chunk, n))
    if excluded > 0:
        _long_row_vjp(s, g, None, mode, out, i, n, chunk)


def _vjp_rows(s, g, mask, out, opts):
    r"""softmax_vjp (mode 0) :math:`s \odot (g - \langle g, s\rangle)` or log_softmax_vjp
    (mode 1) :math:`g - s \sum_j g_j` over the rows of ``s`` and ``g`` (masked entries 0);
    mode 2 is log_softmax_vjp with :math:`\log S` in ``s`` (its −inf entries excluded),
    so that the backward of log_softmax needs no :math:`S` array nor mask; mode 3 is
    log_softmax_vjp from the :math:`S` that ``s_out`` of :func:`_forward_rows` holds
    (entries below 0 excluded): no ``exp``.

    ``opts`` is a :class:`RowOptions`; rows longer than ``opts.chunk`` are split
    into chunks whose partial dot products are added per row; from
    :data:`SPLIT_BELOW_ROWS` rows on, each thread takes whole rows
    (:func:`_long_row_vjp`, :func:`_long_row_of_log_softmax`).
    """
    mode, chunk = opts
    rows, n = s.shape
    if n > chunk and rows >= SPLIT_BELOW_ROWS:
        for i in prange(rows):
            if mask is None and mode >= LOG_SOFTMAX_VJP_OF_LOG:  # exclusions are in s
                _long_row_of_log_softmax(s, g, mode, out, i, n, chunk)
            else:
                _long_row_vjp(s, g, mask, mode, out, i, n, chunk)
        return
    if n <= chunk:
        for i in prange(rows):
            _vjp_write(s, g, mask, mode, _dot(s, g, mask, mode, i, 0, n), out, i, 0, n)
        return
    nch = (n + chunk - 1) // chunk
    ntask = rows * nch
    part = np.empty(ntask, dtype=s.dtype)
    for k in prange(ntask):
        i = k // nch
        lo = (k % nch) * chunk
        part[k] = _dot(s, g, mask, mode, i, lo, min(lo + chunk, n))
    dots = np.zeros(rows, dtype=s.dtype)
    for k in range(ntask):
        dots[k // nch] += part[k]
    for k in prange(ntask):
        i = k // nch
        lo = (k % nch) * chunk
        _vjp_write(s, g, mask, mode, dots[i], out, i, lo, min(lo + chunk, n))


vjp_rows, vjp_rows_serial = parallel_and_serial(EW)(_vjp_rows)
