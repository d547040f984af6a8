"""The SIMD exp of the kernels: accuracy, special values, vectorisation."""

from __future__ import annotations

import platform
import re
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from softgrad.kernels import _exp, _rows

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
