r"""A SIMD-friendly ``log1p`` for the row totals of the float32 kernels.

A row of log_softmax or cross-entropy ends in :math:`\log\Sigma =
\operatorname{log1p}(r)` (:math:`t = 1` entry at the max, :math:`r` the rest
of the sum, :func:`softgrad.kernels._rows.log_total`). libm's ``log1p`` is a
scalar call: 21 ns each on the 2-core AVX2 machine of the benchmarks, 1.4 ms
of the 4.7 ms one thread spends on 65 536 rows of 10 classes. The kernels
therefore collect a block's totals and take their logarithms in one loop of
:func:`fast_log1p`, which LLVM vectorises for float32:

1. :math:`u = 1 + r` rounded, and the rounding error to first order,
   :math:`c = (r - (u - 1))/u`, so that
   :math:`\operatorname{log1p}(r) = \log u + c` keeps the accuracy of tiny
   :math:`r` (:math:`u = 1` gives :math:`c = r`).
2. :math:`u = 2^e m` with :math:`m \in [\sqrt{1/2}, \sqrt 2)`, read from the
   bits of :math:`u` (:math:`u \ge 1`, so no subnormal case).
3. :math:`\log m` with :math:`f = m - 1` by Cephes' ``logf`` form,
   :math:`f - f^2/2 + f^3 P_8(f)`, and :math:`e \ln 2` added in two parts
   (:math:`\ln 2 = 0.693359375 - 2.12194440\cdot10^{-4}`), the low part
   first. The coefficients are those of Cephes' ``logf`` (S. L. Moshier,
   Cephes Math Library, 1984-1992), relative error :math:`7.6\cdot10^{-8}`
   peak on its range.

float64 keeps libm's ``log1p`` (LLVM does not vectorise it, as for float32
before): :func:`fast_log1p` is that call for float64 arguments.
Accuracy (``tests/kernels/test_exp.py``): within 2 ulp of the float64
``log1p`` over :math:`r \in [0, 10^4]`, tiny :math:`r` included.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from softgrad.kernels._exp import _bits_of_f32, _bits_to_f32, by_precision

__all__ = ["fast_log1p", "log1p32", "log1p_into"]

_FM = {"contract"}

_EXPONENT_ORIGIN = np.float32(12582912.0 + 127)
"""1.5 * 2**23 + bias: subtracted from the float whose low bits are a biased exponent."""


@njit(fastmath=_FM, error_model="numpy", cache=True)  # u >= 1: no zero-division check
def log1p32(r):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    r""":math:`\log(1 + r)` for a finite float32 :math:`r \ge 0`."""
    one = np.float32(1.0)
    u = one + r
    c = (r - (u - one)) / u
    bits = _bits_of_f32(u)
    m = _bits_to_f32((bits & np.int32(0x007FFFFF)) | np.int32(0x3F800000))  # [1, 2)
    high = m > np.float32(1.4142135623730951)
    m = m * np.float32(0.5) if high else m  # exact
    # the exponent e as a float without an int-to-float conversion (none vectorises for
    # numba's 64-bit integers on AVX2): the biased exponent bits, placed in the low bits
    # of 1.5 * 2^23, give 1.5 * 2^23 + e + 127
    fe = _bits_to_f32((bits >> np.int32(23)) + np.int32(0x4B400000)) - _EXPONENT_ORIGIN
    fe = fe + one if high else fe
    f = m - one  # exact: m is within a factor 2 of 1
    z = f * f
    p = np.float32(7.0376836292e-2)
    p = p * f + np.float32(-1.1514610310e-1)
    p = p * f + np.float32(1.1676998740e-1)
    p = p * f + np.float32(-1.2420140846e-1)
    p = p * f + np.float32(1.4249322787e-1)
    p = p * f + np.float32(-1.6668057665e-1)
    p = p * f + np.float32(2.0000714765e-1)
    p = p * f + np.float32(-2.4999993993e-1)
    p = p * f + np.float32(3.3333331174e-1)
    y = p * f * z
    y = y + fe * np.float32(-2.12194440e-4)
    y = y - np.float32(0.5) * z
    return (f + y) + fe * np.float32(0.693359375) + c


fast_log1p = by_precision(
    "fast_log1p",
    r":math:`\log(1 + r)` for :math:`r \ge 0` in ``r``'s own precision (numba only).",
    log1p32,
    math.log1p,
)


@njit(fastmath=_FM, cache=True)
def log1p_into(r, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """``out[i] = fast_log1p(r[i])`` over 1-D arrays (for tests and accuracy measurements)."""
    for i in range(r.shape[0]):
        out[i] = fast_log1p(r[i])
