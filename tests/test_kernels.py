"""The numba kernels and the delegation layer against the Array API reference.

Every kernel is compared with the reference implementation on the same inputs
(scikit-learn's ``test_loss_same_as_C_functions`` habit), including the
behaviour contract: masks, ±inf rows, NaN rows, fully masked rows, empty
arrays, length-1 axes, float16, F-ordered and strided input. The size
threshold below which the delegation layer keeps the reference path is set
to 0 here so that small hypothesis examples reach the kernels; the chunk
length is made small in some tests so that the long-row (split) path runs.

Tolerances: the kernels use the reference's formulas but sum in another
order, use a polynomial ``exp`` (< 1 ulp) and multiply by reciprocals, so
results agree to :math:`c\\,\\epsilon\\,(|r| + n)` with a small constant
:math:`c` — the conditioning bound of the DESIGN's accuracy contract — and
special values (NaN, ±inf, exact zeros of masked entries) agree exactly.
"""

from __future__ import annotations

import contextlib
import platform
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("numba")

import softgrad
from softgrad import _delegation, kernels
from softgrad._agnostic._derivatives import log_softmax_vjp as ref_log_softmax_vjp
from softgrad._agnostic._derivatives import softmax_vjp as ref_softmax_vjp
from softgrad._agnostic._losses import cross_entropy_and_grad as ref_cross_entropy_and_grad
from softgrad._agnostic._softmax import log_softmax as ref_log_softmax
from softgrad._agnostic._softmax import logsumexp as ref_logsumexp
from softgrad._agnostic._softmax import softmax as ref_softmax
from softgrad.kernels import _cpu, _exp

DTYPES = [np.float32, np.float64]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Kernels used at any size; counts the kernel calls the delegation layer makes."""
    monkeypatch.setattr(_delegation, "MIN_SIZE", dict.fromkeys(_delegation.MIN_SIZE, 0))
    counter: Counter[str] = Counter()
    for name in ("forward_rows", "vjp_rows", "cross_entropy_rows"):
        for variant in (name, name + "_serial"):
            original = getattr(_cpu, variant)

            def spy(*args: Any, _f: Any = original, _n: str = name) -> Any:
                counter[_n] += 1
                return _f(*args)

            monkeypatch.setattr(_cpu, variant, spy)
    return counter


@pytest.fixture(params=[_delegation.CHUNK, 3], ids=["parallel-whole-rows", "parallel-split-rows"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run once with whole rows per thread and once with rows split into chunks of 3."""
    value: int = request.param
    monkeypatch.setattr(_delegation, "SERIAL_MAX", 0)  # the parallel kernels, even when small
    monkeypatch.setattr(_delegation, "CHUNK", value)
    if value != _delegation.CHUNK:
        monkeypatch.setattr(_delegation, "_chunk", lambda rows, n: value)
    return value


PATHS = [(_delegation.SERIAL_MAX, _delegation.CHUNK), (0, _delegation.CHUNK), (0, 2)]
"""(SERIAL_MAX, chunk): serial kernels; parallel over whole rows; parallel over chunks of 2."""


@contextlib.contextmanager
def kernel_path(serial_max: int, chunk: int) -> Iterator[None]:
    """Kernels at every size, through the serial or the parallel (whole or split rows) path."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_delegation, "MIN_SIZE", dict.fromkeys(_delegation.MIN_SIZE, 0))
        mp.setattr(_delegation, "SERIAL_MAX", serial_max)
        mp.setattr(_delegation, "_chunk", lambda rows, n: chunk)
        yield


def assert_close(got: Any, ref: Any, n: int, c: float = 16.0, zeros: Any = None) -> None:
    """Same dtype, shape and special values; finite values within c·eps·(|ref| + n).

    ``zeros`` marks entries that must be exactly 0 in both (excluded entries).
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.dtype == ref.dtype
    assert got.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    assert np.all(np.isfinite(got[finite]))
    eps = float(np.finfo(ref.dtype).eps)
    tiny = float(np.finfo(ref.dtype).tiny)
    err = np.abs(got[finite].astype(np.float64) - ref[finite])
    bound = c * eps * (np.abs(ref[finite]) + n) + tiny
    assert np.all(err <= bound), f"max error {err.max()} over bound, n={n}"
    if zeros is not None:
        np.testing.assert_array_equal(got[zeros], 0)
        np.testing.assert_array_equal(ref[zeros], 0)


# --------------------------------------------------------------------- exp ---


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

        fn = njit(fastmath=_cpu._RED)(_cpu._sum_exp.py_func)
        x = np.linspace(-5, 0, 64).astype(dtype)
        fn(x, np.ones(1, bool), False, dtype(0.0), np.empty_like(x), True)
        asm = "\n".join(fn.inspect_asm().values())
        assert re.search(r"vfmadd\d+p[sd]\s+.*[yz]mm", asm)
        # the whole-row kernels' version, rows addressed as x[i, j]
        fn2 = njit(fastmath=_cpu._RED)(_cpu._sum_exp_r.py_func)
        x2 = x.reshape(2, 32)
        fn2(x2, np.ones((1, 1), bool), False, dtype(0.0), np.empty_like(x2), True, 1)
        asm2 = "\n".join(fn2.inspect_asm().values())
        assert re.search(r"vfmadd\d+p[sd]\s+.*[yz]mm", asm2)


# ----------------------------------------------------------------- forward ---


@st.composite
def logits_case(draw: st.DrawFn) -> tuple[np.ndarray, int, np.ndarray | None]:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9))
    x = draw(
        hnp.arrays(
            dtype,
            shape,
            elements=st.floats(-60, 60, width=32),
        )
    )
    special = draw(st.sampled_from(["none", "nan", "posinf", "neginf", "mixed"]))
    flat = x.reshape(-1)
    if special != "none" and flat.size:
        idx = draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=3))
        values = {"nan": [np.nan], "posinf": [np.inf], "neginf": [-np.inf]}.get(
            special, [np.nan, np.inf, -np.inf]
        )
        for k, i in enumerate(idx):
            flat[i] = values[k % len(values)]
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    mask = None
    if draw(st.booleans()):
        mshape = draw(st.sampled_from([x.shape, x.shape[-1:], (1,) * x.ndim]))
        mask = draw(hnp.arrays(np.bool_, mshape))
    return x, axis, mask


class TestForward:
    @settings(max_examples=120)
    @given(case=logits_case(), path=st.sampled_from(PATHS))
    def test_softmax_matches_reference(self, case: Any, path: tuple[int, int]) -> None:
        self._check(case, path, softgrad.softmax, ref_softmax)

    @settings(max_examples=120)
    @given(case=logits_case(), path=st.sampled_from(PATHS))
    def test_log_softmax_matches_reference(self, case: Any, path: tuple[int, int]) -> None:
        self._check(case, path, softgrad.log_softmax, ref_log_softmax)

    @settings(max_examples=120)
    @given(case=logits_case(), path=st.sampled_from(PATHS), keepdims=st.booleans())
    def test_logsumexp_matches_reference(
        self, case: Any, path: tuple[int, int], keepdims: bool
    ) -> None:
        self._check(case, path, softgrad.logsumexp, ref_logsumexp, keepdims=keepdims)

    @staticmethod
    def _check(case: Any, path: tuple[int, int], fn: Any, ref: Any, **kw: Any) -> None:
        x, axis, mask = case
        with kernel_path(*path):
            got = fn(x, axis, where=mask, **kw)
        want = ref(x, axis, where=mask, **kw)
        zeros = None
        if fn is softgrad.softmax:  # excluded entries of finite rows are exactly 0
            keep = x != -np.inf if mask is None else (x != -np.inf) & mask
            zeros = ~keep & np.isfinite(want)
        assert_close(got, want, n=x.shape[axis], zeros=zeros)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("fn", [softgrad.softmax, softgrad.log_softmax, softgrad.logsumexp])
    def test_contract_rows(self, fn: Any, dtype: Any, calls: Counter[str], chunk: int) -> None:
        inf, nan = np.inf, np.nan
        x = np.array(
            [
                [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
                [0.0, -50.0, -80.0, -90.0, -100.0, -200.0, -300.0],  # tiny probabilities
                [0.0, inf, 3.0, inf, -inf, 2.0, 1.0],  # +inf shares the mass
                [0.0, nan, 3.0, 1.0, 1.0, 2.0, 1.0],  # NaN row
                [-inf] * 7,  # nothing left
                [1e30, 1e30, -1e30, 0.0, 5.0, 5.0, 1e30],  # ties at a huge max
                [3.0, 1e6, 3.0, 3.0, -1e6, 2.0, 0.0],  # masked huge value
            ],
            dtype=dtype,
        )
        mask = np.ones_like(x, dtype=bool)
        mask[6, 1] = False
        mask[4, :] = False
        mask[3, 1] = False  # the NaN is masked out: the row is finite again
        for where in (None, mask):
            got = fn(x, where=where)
            assert_close(got, getattr(_delegation, fn.__name__).__wrapped__(x, where=where), 7)
        assert calls["forward_rows"] == 2

    def test_log_softmax_tiny_probabilities_accurate(self, calls: Counter[str]) -> None:
        x = np.array([[0.0] + [-50.0] * 15])
        got = softgrad.log_softmax(x)
        assert got[0, 0] == pytest.approx(-15 * np.exp(-50.0), rel=1e-14)  # -log1p(15 e^-50)
        assert calls["forward_rows"] == 1

    def test_long_rows_split_across_threads(self, calls: Counter[str]) -> None:
        rng = np.random.default_rng(3)
        x = rng.standard_normal((2, 3 * _delegation.CHUNK + 5)) * 10
        x[1, 7] = np.inf
        for fn, ref in [
            (softgrad.softmax, ref_softmax),
            (softgrad.log_softmax, ref_log_softmax),
            (softgrad.logsumexp, ref_logsumexp),
        ]:
            assert_close(fn(x), ref(x), n=x.shape[1])
        assert calls["forward_rows"] == 3

    @pytest.mark.parametrize("fn", [softgrad.softmax, softgrad.log_softmax, softgrad.logsumexp])
    def test_reference_path_cases(self, fn: Any, calls: Counter[str]) -> None:
        ref = getattr(_delegation, fn.__name__).__wrapped__
        cases = [
            np.zeros((3, 0)),  # empty axis
            np.zeros((0, 4), dtype=np.float32),  # no rows
            np.arange(6, dtype=np.float16).reshape(2, 3),  # float16: reference, float16 out
            np.arange(6).reshape(2, 3),  # integers: promoted by the reference
        ]
        for x in cases:
            got, want = fn(x), ref(x)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        assert calls["forward_rows"] == 0

    def test_length_one_axis(self, calls: Counter[str]) -> None:
        x = np.array([[2.0], [-np.inf], [np.nan], [np.inf]])
        np.testing.assert_array_equal(softgrad.softmax(x), ref_softmax(x))
        np.testing.assert_array_equal(softgrad.log_softmax(x), ref_log_softmax(x))
        np.testing.assert_array_equal(softgrad.logsumexp(x), ref_logsumexp(x))
        assert calls["forward_rows"] == 3

    def test_errors_are_the_references(self, calls: Counter[str]) -> None:
        x = np.zeros((2, 3))
        with pytest.raises(ValueError, match="axis=2 is out of range"):
            softgrad.softmax(x, axis=2)
        with pytest.raises(TypeError, match="where must be a boolean array"):
            softgrad.softmax(x, where=np.ones((2, 3)))
        with pytest.raises(ValueError, match="does not broadcast"):
            softgrad.log_softmax(x, where=np.ones((4,), dtype=bool))

    def test_non_numpy_input_uses_reference(self, calls: Counter[str]) -> None:
        torch = pytest.importorskip("torch")
        got = softgrad.softmax(torch.zeros(2, 3))
        assert isinstance(got, torch.Tensor)
        assert calls["forward_rows"] == 0


# --------------------------------------------------------------------- vjp ---


@st.composite
def vjp_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    x, axis, mask = draw(logits_case())
    g = draw(hnp.arrays(x.dtype, x.shape, elements=st.floats(-10, 10, width=32)))
    s = ref_softmax(x, axis, where=mask)
    return s, g, axis, mask


class TestVJP:
    @settings(max_examples=100)
    @given(case=vjp_case(), log=st.booleans(), path=st.sampled_from(PATHS))
    def test_matches_reference(self, case: Any, log: bool, path: tuple[int, int]) -> None:
        s, g, axis, mask = case
        fn, ref = (
            (softgrad.log_softmax_vjp, ref_log_softmax_vjp)
            if log
            else (softgrad.softmax_vjp, ref_softmax_vjp)
        )
        with kernel_path(*path):
            got = fn(s, g, axis, where=mask)
        want = ref(s, g, axis, where=mask)
        zeros = None if mask is None else ~np.broadcast_to(mask, s.shape)
        assert_close(
            got, want, n=s.shape[axis], c=4.0 * (1 + float(np.nanmax(np.abs(g)))), zeros=zeros
        )

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_masked_entries_exactly_zero(self, dtype: Any, calls: Counter[str], chunk: int) -> None:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 11)).astype(dtype)
        mask = rng.random((5, 11)) > 0.4
        s = ref_softmax(x, where=mask)
        g = rng.standard_normal((5, 11)).astype(dtype)
        g[~mask] = np.nan  # ignored where masked
        for fn in (softgrad.softmax_vjp, softgrad.log_softmax_vjp):
            got = fn(s, g, where=mask)
            assert np.all(got[~mask] == 0)
            assert np.all(np.isfinite(got))
        assert calls["vjp_rows"] == 2

    def test_mismatched_inputs_use_reference(self, calls: Counter[str]) -> None:
        s = np.full((2, 3), 1 / 3)
        with pytest.raises(ValueError, match="same shape"):
            softgrad.softmax_vjp(s, np.zeros((2, 4)))
        got = softgrad.softmax_vjp(s, np.ones((2, 3), dtype=np.float32))  # mixed dtypes
        np.testing.assert_array_equal(got, ref_softmax_vjp(s, np.ones((2, 3), np.float32)))
        assert calls["vjp_rows"] == 0


# ----------------------------------------------------------- cross-entropy ---


@st.composite
def ce_case(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, 12))
    c = draw(st.integers(1, 9))
    x = draw(hnp.arrays(dtype, (n, c), elements=st.floats(-40, 40, width=32)))
    if draw(st.booleans()):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, c - 1))
        x[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if draw(st.booleans()):
        x[draw(st.integers(0, n - 1)), :] = -np.inf
    ignore = draw(st.sampled_from([None, -100, 0]))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    if ignore == -100 and draw(st.booleans()):
        labels[0] = -100
    weight = None
    if draw(st.booleans()):
        weight = draw(hnp.arrays(dtype, (c,), elements=st.floats(0, 3, width=32)))
    axis = -1
    if draw(st.booleans()):
        x = np.ascontiguousarray(x.T)
        axis = 0
    return {
        "logits": x,
        "target": labels.astype(draw(st.sampled_from([np.int64, np.int32, np.uint8])))
        if ignore != -100
        else labels,
        "axis": axis,
        "weight": weight,
        "ignore_index": ignore,
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
    }


class TestCrossEntropy:
    @settings(max_examples=150)
    @given(case=ce_case(), path=st.sampled_from(PATHS))
    def test_matches_reference(self, case: dict[str, Any], path: tuple[int, int]) -> None:
        x, t = case.pop("logits"), case.pop("target")
        axis = case.pop("axis")
        with kernel_path(*path):
            loss, grad = softgrad.cross_entropy_and_grad(x, t, axis, **case)
        ref_loss, ref_grad = ref_cross_entropy_and_grad(x, t, axis, **case)
        n = x.shape[axis]
        scale = 1.0 + (0.0 if case["weight"] is None else float(np.max(case["weight"])))
        assert_close(loss, ref_loss, n=n * x.size, c=8.0 * scale)
        assert_close(grad, ref_grad, n=n, c=8.0 * scale)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_plain_labels_give_s_minus_y(self, dtype: Any, calls: Counter[str]) -> None:
        rng = np.random.default_rng(1)
        x = rng.standard_normal((64, 10)).astype(dtype)
        y = rng.integers(0, 10, 64)
        loss, grad = softgrad.cross_entropy_and_grad(x, y, reduction="sum")
        s = ref_softmax(x)
        expected = s.copy()
        expected[np.arange(64), y] -= 1
        assert_close(grad, expected, n=10)
        assert_close(loss, -np.sum(ref_log_softmax(x)[np.arange(64), y]), n=640)
        assert calls["cross_entropy_rows"] == 1

    def test_subnormal_weight_sum_uses_reference(self, calls: Counter[str]) -> None:
        # 1 / denom overflows float32: the kernel would form 0 * inf = NaN
        x = np.zeros((1, 1), dtype=np.float32)
        w = np.array([1e-45], dtype=np.float32)
        loss, grad = softgrad.cross_entropy_and_grad(x, np.array([0]), weight=w)
        ref_loss, ref_grad = ref_cross_entropy_and_grad(x, np.array([0]), weight=w)
        assert_close(loss, ref_loss, n=1)
        assert_close(grad, ref_grad, n=1)
        assert calls["cross_entropy_rows"] == 0

    def test_all_ignored_mean_is_nan_with_zero_grad(self, calls: Counter[str]) -> None:
        x = np.ones((3, 4))
        loss, grad = softgrad.cross_entropy_and_grad(x, np.full(3, -100), ignore_index=-100)
        assert np.isnan(loss)
        np.testing.assert_array_equal(grad, 0.0)
        assert calls["cross_entropy_rows"] == 1

    def test_reference_path_cases(self, calls: Counter[str]) -> None:
        x = np.zeros((4, 3))
        with pytest.raises(ValueError, match="outside"):
            softgrad.cross_entropy_and_grad(x, np.array([0, 1, 2, 3]))
        with pytest.raises(ValueError, match="reduction"):
            softgrad.cross_entropy_and_grad(x, np.zeros(4, int), reduction="avg")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="weight must be finite"):
            softgrad.cross_entropy_and_grad(x, np.zeros(4, int), weight=np.array([1, np.nan, 1]))
        probs = np.full((4, 3), 1 / 3)  # probability targets: the reference
        loss, _ = softgrad.cross_entropy_and_grad(x, probs)
        assert float(loss) == pytest.approx(np.log(3))
        assert calls["cross_entropy_rows"] == 0


# -------------------------------------------------------- switching it off ---


class TestDisabling:
    x = np.linspace(-3, 3, 64).reshape(8, 8)

    def test_context_manager(self, calls: Counter[str]) -> None:
        with kernels.disabled():
            assert not kernels.enabled()
            softgrad.softmax(self.x)
        assert kernels.enabled()
        assert calls["forward_rows"] == 0
        softgrad.softmax(self.x)
        assert calls["forward_rows"] == 1

    def test_set_enabled(self, calls: Counter[str]) -> None:
        kernels.set_enabled(False)
        try:
            got = softgrad.log_softmax(self.x)
        finally:
            kernels.set_enabled(True)
        np.testing.assert_array_equal(got, ref_log_softmax(self.x))
        assert calls["forward_rows"] == 0

    def test_environment_variable(
        self, calls: Counter[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOFTGRAD_DISABLE_KERNELS", "1")
        got = softgrad.cross_entropy_and_grad(self.x, np.zeros(8, int))
        want = ref_cross_entropy_and_grad(self.x, np.zeros(8, int))
        np.testing.assert_array_equal(got[1], want[1])
        assert calls["cross_entropy_rows"] == 0

    def test_without_numba(self, calls: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
        # as if numba were not installed: everything runs on the reference path
        monkeypatch.setitem(kernels._module, "numba", None)
        assert not kernels.available()
        assert not kernels.enabled()
        s = softgrad.softmax(self.x)
        np.testing.assert_array_equal(s, ref_softmax(self.x))
        np.testing.assert_array_equal(softgrad.softmax_vjp(s, self.x), ref_softmax_vjp(s, self.x))
        assert sum(calls.values()) == 0

    def test_import_does_not_load_numba(self) -> None:
        import subprocess
        import sys

        code = "import sys, softgrad; print('numba' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    "name",
    [
        "softmax",
        "log_softmax",
        "logsumexp",
        "softmax_vjp",
        "log_softmax_vjp",
        "cross_entropy_and_grad",
    ],
)
def test_public_functions_are_the_wrappers_with_reference_docs(name: str) -> None:
    public = getattr(softgrad, name)
    assert public is getattr(_delegation, name)
    assert public.__doc__ == public.__wrapped__.__doc__
    assert public.__doc__
