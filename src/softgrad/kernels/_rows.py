r"""Row primitives shared by the softmax and cross-entropy kernels.

Every primitive reads entries ``j`` in ``lo:hi`` of row ``i`` of a 2-D
C-contiguous array (``x[i, j]``), so a whole row (``lo = 0, hi = n``) and a
chunk of a long row split across threads use the same routine. It loops over
:func:`span` views, which are *borrowed*: a numba slice (``x[i]``) takes a
reference on the array's shared meminfo and drops it again, two atomic updates
that, with both threads touching the same cache line, outweigh the arithmetic
of a short row (128 float32: 0.47x torch with ``x[i]`` views).

A mask is either a boolean array like ``x`` or ``None``: numba types ``None``
as its own type and prunes every ``if mask is not None`` branch at compile
time, so the unmasked kernels carry no mask test (one compiled specialisation
per case, no ``has_mask`` copies of the loops).

The row sum is split as :math:`t + r` (entries equal to the max, and the
rest), exactly as the reference does, so :math:`\log\Sigma = \log t +
\operatorname{log1p}(r/t)` keeps log_softmax accurate for tiny probabilities.
Reductions carry the ``reassoc`` fast-math flag (SIMD partial sums); loops
that write outputs carry only ``contract``, so :math:`(x - m) - \log\Sigma`
is never re-associated into :math:`x - (m + \log\Sigma)`.

Type annotations and line coverage are configured off for the kernel modules
once, in ``pyproject.toml``: numba compiles these bodies, coverage cannot see
them run, and the tests compare every kernel path with the reference instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import FunctionType
from typing import Any

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.arrayobj import populate_array

from softgrad.kernels._exp import fast_exp, fmax
from softgrad.kernels._log import fast_log1p

RED = {"contract", "reassoc", "nsz"}
"""Fast-math flags of reductions: SIMD partial sums."""
EW = {"contract"}
"""Fast-math flags of loops that write outputs: keep the written association."""

# row kinds
NORMAL, EMPTY, POSINF, NAN = 0, 1, 2, 3


def parallel_and_serial(fastmath: set[str]) -> Callable[[Any], tuple[Any, Any]]:
    """Compile one kernel body twice: with ``parallel=True`` and in the calling thread.

    ``prange`` in the body is a plain ``range`` in the serial build. A parallel
    launch costs microseconds when the cores are idle and a whole scheduler
    time slice (milliseconds) when another process holds one of them, which
    small calls cannot amortise, so small inputs take the serial build.

    numba's disk cache keys a function by its qualified name and bytecode, not
    by its compile options, so the serial build is compiled from a copy of the
    function named ``<name>_serial``: each build gets its own cache entry.
    """

    def compile_both(fn: Any) -> tuple[Any, Any]:
        serial = FunctionType(
            fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__
        )
        serial.__qualname__ = fn.__qualname__ + "_serial"
        serial.__doc__ = fn.__doc__
        return (
            njit(parallel=True, fastmath=fastmath, cache=True)(fn),
            njit(fastmath=fastmath, cache=True)(serial),
        )

    return compile_both


def span(a, i, lo, hi):
    """``a[i, lo:hi]`` as a 1-D view, ``None`` for ``None`` (a mask or output left out).

    Loops over such a view from 0 vectorise; an index loop ``x[i, j]`` from
    ``j = lo > 0`` keeps numba's wraparound check for negative indices, and
    LLVM then leaves it scalar (2-3x slower on long rows, measured).

    The view of a C-contiguous array is *borrowed* (:func:`_borrowed_span_typing`): it
    holds no reference to the array's memory, so it must not outlive the call
    that made it (every primitive here uses its spans locally and returns scalars).
    """
    return None if a is None else a[i, lo:hi]


def _borrowed_span_typing(typingctx, a, i, lo, hi):
    """``a[i, lo:hi]`` of a 2-D C-contiguous array as a 1-D array with no meminfo.

    A slice made by numba takes a reference on the array's meminfo and drops it
    at the end of the function: two atomic updates per span, several spans per
    row, which cost a 128-entry float32 softmax row 0.3 ns per entry (a softmax
    loop over 32 768 x 128 in one thread: 2.22 ns per entry with slices, 1.91
    with borrowed spans; no change on rows of 32 000). A null meminfo makes numba
    skip both.
    """
    if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
        return None
    view = types.Array(a.dtype, 1, "C", readonly=not a.mutable)  # read-only stays read-only
    sig = view(a, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, value=args[0])
        i, lo, hi = args[1:]
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(a.dtype))
        )
        row_stride = builder.extract_value(array.strides, 0)
        offset = builder.add(builder.mul(i, row_stride), builder.mul(lo, itemsize))
        start = builder.gep(builder.bitcast(array.data, cgutils.voidptr_t), [offset])
        out = context.make_array(view)(context, builder)
        populate_array(
            out,
            data=builder.bitcast(start, array.data.type),
            shape=[builder.sub(hi, lo)],
            strides=[itemsize],
            itemsize=itemsize,
            meminfo=None,
        )
        return out._getvalue()

    return sig, codegen


_borrowed_span: Any = intrinsic(_borrowed_span_typing)


@overload(span)
def _span(a, i, lo, hi):
    if isinstance(a, types.NoneType):
        return lambda a, i, lo, hi: None
    if isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C":
        # clamped as a slice is (0 <= lo <= hi <= n), so the view never leaves row i
        def borrowed(a, i, lo, hi):
            end = min(max(hi, 0), a.shape[1])
            return _borrowed_span(a, i, min(max(lo, 0), end), end)

        return borrowed
    return lambda a, i, lo, hi: a[i, lo:hi]


def kept(vs, ms, j, fill):
    """``vs[j]``, or ``fill`` where the mask span ``ms`` excludes entry ``j`` (``ms`` ``None``:
    every entry kept, and no test compiled)."""
    return vs[j] if ms is None or ms[j] else fill


@overload(kept)
def _kept(vs, ms, j, fill):
    if isinstance(ms, types.NoneType):
        return lambda vs, ms, j, fill: vs[j]
    return lambda vs, ms, j, fill: vs[j] if ms[j] else fill


@njit(fastmath=RED, cache=True)
def row_max(x, mask, i, lo, hi):
    """Max over the included entries of ``x[i, lo:hi]``; NaN if one is NaN, −inf if none."""
    ninf = x.dtype.type(-np.inf)
    mx = ninf
    xs, ms = span(x, i, lo, hi), span(mask, i, lo, hi)
    for j in range(xs.shape[0]):
        mx = fmax(mx, kept(xs, ms, j, ninf))
    return mx


@njit(fastmath=RED, cache=True)
def count_posinf(x, mask, i, lo, hi):
    """Number of included +inf entries of ``x[i, lo:hi]``."""
    c = 0
    for j in range(lo, hi):
        inc = x[i, j] == np.inf
        if mask is not None:
            inc = inc and mask[i, j]
        if inc:
            c += 1
    return c


@njit(fastmath=RED, cache=True)
def sum_exp(x, mask, m, out, i, lo, hi, split=True):
    r"""(t, r) of ``x[i, lo:hi]``: entries equal to ``m`` and :math:`\sum e^{x_j - m}` over the others.

    :math:`r` accumulates :math:`e_j - [x_j = m]`, which is exact at the max
    (:math:`e^0 = 1`) and keeps the loop free of selects around the sums, so
    that it vectorises. Unless ``out`` is ``None``, :math:`e^{x_j - m}` goes
    to ``out[i, j]``. ``split=False`` (softmax, which needs only
    :math:`\Sigma = t + r`, not :math:`\log t + \operatorname{log1p}(r/t)`):
    :math:`t = 0` and :math:`r = \Sigma`, three operations per entry fewer.
    """
    F = x.dtype.type
    ninf = F(-np.inf)
    zero = F(0.0)
    t = zero
    r = zero
    xs, ms, os = span(x, i, lo, hi), span(mask, i, lo, hi), span(out, i, lo, hi)
    for j in range(xs.shape[0]):
        z = kept(xs, ms, j, ninf) - m
        e = fast_exp(z)
        if out is not None:
            os[j] = e
        if split:
            at = F(z == zero)
            t += at
            r += e - at
        else:
            r += e
    return t, r


@njit(cache=True)
def kind_of(mx):
    """The kind of a row from its max: normal, empty (−inf), +inf in it, or NaN."""
    if mx != mx:  # noqa: PLR0124 - the NaN test numba compiles to one compare
        return NAN
    if mx == -np.inf:
        return EMPTY
    if mx == np.inf:
        return POSINF
    return NORMAL


@njit(cache=True)
def log_total(t, r):
    r""":math:`\log t + \operatorname{log1p}(r/t)`; one libm call when the max is unique.

    :math:`t = 1` is the common case, where :math:`\log t = 0` and :math:`r/t = r`
    exactly, so skipping ``log`` changes no bit of the result.
    """
    F = type(t)
    if t == F(1.0):
        return F(math.log1p(r))
    return F(math.log(t) + math.log1p(r / t))


@njit(fastmath=EW, cache=True)
def log_totals(ts, rs, out):
    r"""``out[k] = log_total(ts[k], rs[k])`` for every row of a block with ``ts[k] > 0``
    (0 where ``ts[k] = rs[k] = 0``).

    The common case :math:`t = 1` is :math:`\operatorname{log1p}(r)` for the whole
    block in one loop of :func:`fast_log1p` (SIMD for float32, where one libm call
    per row cost as much as the rest of a 10-class row); rows with ties at the max
    are then redone with :func:`log_total`. ``rs[k] >= 0`` (a sum of exponentials).
    """
    F = ts.dtype.type
    for k in range(ts.shape[0]):
        out[k] = fast_log1p(rs[k])
    for k in range(ts.shape[0]):
        if ts[k] > F(1.0):
            out[k] = log_total(ts[k], rs[k])


@njit(cache=True)
def lse_value(kind, m, lt):
    """The logsumexp of a row of the given kind, ``m + lt`` for a normal one."""
    F = type(m)
    if kind == NORMAL:
        return m + lt
    if kind == NAN:
        return F(np.nan)
    if kind == EMPTY:
        return F(-np.inf)
    return F(np.inf)
