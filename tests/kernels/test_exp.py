"""The SIMD exp of the kernels: accuracy, special values, vectorisation."""

from __future__ import annotations

import platform
import re
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from softgrad.kernels import _exp, _log, _rows

DTYPES = [np.float32, np.float64]


class TestFastExp:
    @pytest.mark.parametrize(
        ("dtype", "lo"), [(np.float64, -745.0), (np.float32, -103.0)], ids=["f64", "f32"]
    )
    def test_within_one_ulp(self, dtype: Any, lo: float) -> None:
        # float64 is checked against mpmath at 120 bits, float32 against float64's exp
        rng = np.random.default_rng(0)
        z = np.concatenate([rng.uniform(lo, 0, 4000), rng.uniform(-1, 0, 1000)]).astype(dtype)
        out = np.empty_like(z)
        _exp.exp_into(z, out)
        if dtype == np.float64:
            mpmath = pytest.importorskip("mpmath")
            with mpmath.workprec(120):
                exact = [mpmath.exp(mpmath.mpf(float(v))) for v in z]
                ref = np.array([float(e) for e in exact])
                ulp = np.spacing(ref)
                # the error in ulps, computed in mpmath (near 1e-308 it underflows a float)
                rel = np.array(
                    [
                        float(abs(mpmath.mpf(float(o)) - e) / u)
                        for o, e, u in zip(out, exact, ulp, strict=True)
                    ]
                )
        else:
            ref = np.exp(z.astype(np.float64))
            ulp = np.spacing(ref.astype(dtype)).astype(np.float64)
            rel = np.abs(out.astype(np.float64) - ref) / ulp
        normal = ref >= np.finfo(dtype).tiny
        assert np.max(rel[normal]) < 1.0
        assert np.max(rel) <= 1.0  # subnormal results: one rounding

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_special_values(self, dtype: Any) -> None:
        z = np.array([0.0, -0.0, -np.inf, -1e30, -800.0, -110.0, np.nan], dtype=dtype)
        out = np.empty_like(z)
        _exp.exp_into(z, out)
        assert out[0] == 1.0
        assert out[1] == 1.0
        np.testing.assert_array_equal(out[2:5], 0.0)
        assert out[5] == (0.0 if dtype == np.float32 else np.exp(np.float64(-110.0)))
        assert np.isnan(out[6])

    def test_subnormal_results_round_correctly(self) -> None:
        z = np.array([-740.0, -744.0, -708.5])
        out = np.empty_like(z)
        _exp.exp_into(z, out)
        np.testing.assert_array_equal(out, np.exp(z))

    @pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 asm")
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_exp_sum_loop_vectorises(self, dtype: Any) -> None:
        # compiled afresh (cached code cannot be inspected): the loop must use
        # packed FMAs on 256- or 512-bit registers, not scalar libm calls
        from numba import njit

        # rows addressed as x[i, j] over a span, unmasked (mask=None pruned) and masked
        fn = njit(fastmath=_rows.RED)(_rows.sum_exp.py_func)
        x = np.linspace(-5, 0, 64).astype(dtype).reshape(2, 32)
        for mask in (None, np.ones(x.shape, bool)):
            fn(x, mask, dtype(0.0), np.empty_like(x), 1, 0, 32)
            asm = "\n".join(fn.inspect_asm().values())
            assert re.search(r"vfmadd\d+p[sd]\s+.*[yz]mm", asm)


class TestFastLog1p:
    """The SIMD log1p of the row totals (float32; float64 is libm's)."""

    def test_float32_within_two_ulp(self) -> None:
        rng = np.random.default_rng(1)
        r = np.concatenate(
            [
                10.0 ** rng.uniform(-40, 4, 20000),  # tiny r: log1p(r) = r to the last bit
                rng.uniform(0, 2, 5000),  # around the sqrt(2) fold and the exponent steps
                [0.0, 1e-45, 2.0**-24, 2.0**-23, np.sqrt(2) - 1, 1.0, 3.0, 9.0, 1e4],
            ]
        ).astype(np.float32)
        out = np.empty_like(r)
        _log.log1p_into(r, out)
        ref = np.log1p(r.astype(np.float64))
        ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
        err = np.abs(out.astype(np.float64) - ref) / ulp
        assert np.max(err) <= 2.0
        assert out[-9] == 0.0

    def test_float64_is_libm(self) -> None:
        r = np.array([0.0, 1e-300, 1e-8, 0.5, 7.0, 1e6])
        out = np.empty_like(r)
        _log.log1p_into(r, out)
        np.testing.assert_array_equal(out, np.log1p(r))

    @pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 asm")
    def test_block_loop_vectorises(self) -> None:
        # the loop of log_totals over a block must run on 256- or 512-bit registers
        from numba import njit

        fn = njit(fastmath=_rows.EW)(_rows.log_totals.py_func)
        ts = np.ones(64, np.float32)
        rs = np.linspace(0, 3, 64).astype(np.float32)
        out = np.empty_like(rs)
        fn(ts, rs, out)
        asm = "\n".join(fn.inspect_asm().values())
        assert re.search(r"vfmadd\d+ps\s+.*[yz]mm", asm)
        np.testing.assert_allclose(out, np.log1p(rs), rtol=3e-7)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_ties_at_the_max_use_the_split(self, dtype: Any) -> None:
        # t > 1 entries at the max: log t + log1p(r / t), exact at r = 0
        ts = np.array([1.0, 2.0, 3.0, 0.0], dtype=dtype)
        rs = np.array([0.25, 0.0, 1e-20, 0.0], dtype=dtype)
        out = np.empty_like(rs)
        _rows.log_totals(ts, rs, out)
        want = np.log(ts[:3].astype(np.float64)) + np.log1p(rs[:3] / ts[:3])
        np.testing.assert_allclose(out[:3], want.astype(dtype), rtol=2 * np.finfo(dtype).eps)
        assert out[1] == dtype(np.log(dtype(2.0)))
        assert out[3] == 0.0
