"""The softmax-family kernels (forward and VJP) against the Array API reference.

softmax, log_softmax and logsumexp forward, and both VJPs, on whole rows
(blocks of short rows, one row per task) and on long rows split into chunks
across threads, serial and parallel, masked and unmasked, with ±inf and NaN
rows, fully masked rows, empty arrays, length-1 axes, float16, F-ordered and
strided input. How kernels are compared with the reference, and the
tolerances, are set out in ``conftest.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad
from softgrad import _delegation, kernels
from softgrad._agnostic._derivatives import log_softmax_vjp as ref_log_softmax_vjp
from softgrad._agnostic._derivatives import softmax_vjp as ref_softmax_vjp
from softgrad._agnostic._softmax import log_softmax as ref_log_softmax
from softgrad._agnostic._softmax import logsumexp as ref_logsumexp
from softgrad._agnostic._softmax import softmax as ref_softmax

from helpers import KERNEL_DTYPES as DTYPES
from helpers import KERNEL_PATHS as PATHS
from helpers import assert_ulp_close as assert_close
from helpers import kernel_path

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
        x = rng.standard_normal((2, 3 * kernels.current_policy().chunk + 5)) * 10
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
        xps = pytest.importorskip("array_api_strict")
        got = softgrad.softmax(xps.zeros((2, 3)))
        assert not isinstance(got, np.ndarray)
        assert calls["forward_rows"] == 0

    def test_torch_cpu_tensor_runs_the_kernel_through_the_bridge(self, calls: Counter[str]) -> None:
        # issue 9: softgrad.softmax(t) routes to softgrad.torch, whose CPU path
        # runs the numba kernel on the tensor's memory
        torch = pytest.importorskip("torch")
        got = softgrad.softmax(torch.zeros(2, 3))
        assert isinstance(got, torch.Tensor)
        assert calls["forward_rows"] == 1


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


# ------------------------------------------------------------ every path ---

_PATH_IDS = ["serial", "parallel-whole-rows", "parallel-chunks-of-2"]


def every_row_path(test: Any) -> Any:
    """Run ``test`` on each (serial | parallel whole rows | parallel chunks) x dtype x
    mask path, with rows walked in chunks within a thread (6) or split across threads (3)."""
    marks = [
        pytest.mark.parametrize(
            "rows", [6, 3], ids=["rows-per-thread", "rows-split-across-threads"]
        ),
        pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"]),
        pytest.mark.parametrize("dtype", DTYPES),
        pytest.mark.parametrize("path", PATHS, ids=_PATH_IDS),
    ]
    for mark in reversed(marks):  # as a stack of decorators: ids path-dtype-mask-rows
        test = mark(test)
    return test


@every_row_path
def test_every_forward_and_vjp_path_matches_reference(
    path: tuple[int, int], dtype: Any, masked: bool, rows: int, calls: Counter[str]
) -> None:
    """Each (serial | parallel whole rows | parallel chunks) x mask x dtype path, on
    the same inputs as the reference; the counter proves which build ran. With chunks,
    3 rows are split across threads and 6 are walked chunk by chunk within a thread
    (``SPLIT_BELOW_ROWS``)."""
    from softgrad.kernels._softmax import SPLIT_BELOW_ROWS

    assert 3 < SPLIT_BELOW_ROWS <= 6  # the premise of the two row counts
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((rows, 45)) * 4).astype(dtype)
    mask = rng.random(x.shape) > 0.25 if masked else None
    g = rng.standard_normal(x.shape).astype(dtype)
    s = ref_softmax(x, where=mask)
    with kernel_path(*path):
        got = {
            "softmax": softgrad.softmax(x, where=mask),
            "log_softmax": softgrad.log_softmax(x, where=mask),
            "logsumexp": softgrad.logsumexp(x, where=mask),
            "softmax_vjp": softgrad.softmax_vjp(s, g, where=mask),
            "log_softmax_vjp": softgrad.log_softmax_vjp(s, g, where=mask),
        }
    assert_close(got["softmax"], ref_softmax(x, where=mask), n=45)
    assert_close(got["log_softmax"], ref_log_softmax(x, where=mask), n=45)
    assert_close(got["logsumexp"], ref_logsumexp(x, where=mask), n=45)
    assert_close(got["softmax_vjp"], ref_softmax_vjp(s, g, where=mask), n=45, c=64.0)
    assert_close(got["log_softmax_vjp"], ref_log_softmax_vjp(s, g, where=mask), n=45, c=64.0)
    serial = path[0] > x.size
    assert (calls["forward_rows"], calls["forward_rows_serial"]) == (3, 3 * serial)
    assert (calls["vjp_rows"], calls["vjp_rows_serial"]) == (2, 2 * serial)


@every_row_path
def test_every_log_softmax_with_s_path_matches_reference(
    path: tuple[int, int], dtype: Any, masked: bool, rows: int, calls: Counter[str]
) -> None:
    """log_softmax with S kept (what softgrad.torch saves for its backward) and the VJP
    from that S, on every path: S is the reference softmax with -1 at excluded entries
    (masked or -inf), special rows follow the reference, and the VJP equals the
    reference log_softmax_vjp with those entries excluded."""
    from softgrad.kernels import _dispatch

    rng = np.random.default_rng(8)
    x = (rng.standard_normal((rows, 45)) * 4).astype(dtype)
    x[0, 5] = -np.inf  # an excluded entry in a normal row
    x[1, 7] = np.inf  # a +inf row
    x[2, 3] = np.nan  # a NaN row
    mask = rng.random(x.shape) > 0.25 if masked else None
    g = rng.standard_normal(x.shape).astype(dtype)
    with kernel_path(*path):
        both = _dispatch.log_softmax_and_s(x, where=mask)
        assert both is not None
        log_s, s = both
        vjp = _dispatch.log_softmax_vjp_of_s(s, g)
    ref_log_s = ref_log_softmax(x, where=mask)
    excluded = ref_log_s == -np.inf
    ref_s = np.where(excluded, -1.0, ref_softmax(x, where=mask)).astype(dtype)
    keep = ~excluded
    ref_vjp = ref_log_softmax_vjp(np.where(keep, ref_s, 0.0).astype(dtype), g, where=keep)
    assert_close(log_s, ref_log_s, n=45)
    assert_close(s, ref_s, n=45)
    assert_close(vjp, ref_vjp, n=45, c=64.0, zeros=excluded & ~np.isnan(ref_vjp))
    serial = path[0] > x.size
    assert (calls["forward_rows"], calls["forward_rows_serial"]) == (1, serial)
    assert (calls["vjp_rows"], calls["vjp_rows_serial"]) == (1, serial)


@every_row_path
def test_excluded_chunks_of_long_rows_are_written(
    path: tuple[int, int],
    dtype: Any,
    masked: bool,
    rows: int,
    calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Long rows store each chunk's exponentials in pass A and scale them in pass B; a
    chunk with no included entry (here columns 10-19 at -inf, and 20-29 masked) stores
    nothing, so pass B must write its zeros (softmax) and -1 (S beside log_softmax).
    The outputs start as NaN, so an entry left unwritten shows."""
    from softgrad.kernels import _dispatch

    def nan_filled(a: Any, *args: Any, **kwargs: Any) -> Any:
        out = np.full_like(a, np.nan, *args, **kwargs)
        return out

    rng = np.random.default_rng(9)
    x = (rng.standard_normal((rows, 45)) * 4).astype(dtype)
    x[:, 10:20] = -np.inf
    mask = None
    if masked:
        mask = np.ones(x.shape, dtype=bool)
        mask[:, 20:30] = False
    monkeypatch.setattr(_dispatch.np, "empty_like", nan_filled)
    with kernel_path(*path):
        s = softgrad.softmax(x, where=mask)
        both = _dispatch.log_softmax_and_s(x, where=mask)
    assert both is not None
    log_s, s_kept = both
    ref_s = ref_softmax(x, where=mask)
    excluded = ref_log_softmax(x, where=mask) == -np.inf
    assert excluded[:, 10:20].all()
    assert_close(s, ref_s, n=45)
    assert np.all(s[excluded] == 0)
    assert_close(log_s, ref_log_softmax(x, where=mask), n=45)
    assert np.all(s_kept[excluded] == -1)
    assert_close(s_kept, np.where(excluded, -1.0, ref_s).astype(dtype), n=45)
    assert calls["forward_rows"] == 2
