"""The fused cross-entropy kernel (loss and gradient) against the Array API reference.

Both layouts (few classes in blocks, many classes row by row), serial and
parallel, with every option: class weights, ignore_index, label smoothing,
each reduction, ±inf and NaN logits. How kernels are compared with the
reference, and the tolerances, are set out in ``conftest.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import softgrad
from softgrad import kernels
from softgrad._agnostic._losses import cross_entropy_and_grad as ref_cross_entropy_and_grad
from softgrad._agnostic._softmax import log_softmax as ref_log_softmax
from softgrad._agnostic._softmax import softmax as ref_softmax

from helpers import KERNEL_DTYPES as DTYPES
from helpers import KERNEL_PATHS as PATHS
from helpers import assert_ulp_close as assert_close
from helpers import kernel_path

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


# ------------------------------------------------------------ every path ---

_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": "w"},
    {"label_smoothing": 0.2},
    {"ignore_index": 3},
    {"ignore_index": None, "label_smoothing": 1.0, "weight": "w", "reduction": "sum"},
    {"weight": "w", "label_smoothing": 0.1, "ignore_index": 3, "reduction": "none"},
]


@pytest.mark.parametrize("options", _OPTIONS, ids=lambda o: ",".join(o) or "plain")
@pytest.mark.parametrize(
    "n_classes", [10, 33, 70], ids=["few-class-block", "33", "many-class-rows"]
)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("serial", [True, False], ids=["serial", "parallel"])
def test_every_cross_entropy_path_matches_reference(
    serial: bool, dtype: Any, n_classes: int, options: dict[str, Any], calls: Counter[str]
) -> None:
    """Few-class blocks (C <= 32) and many-class rows (C > 32), serial and parallel,
    float32 and float64, every option, compared with the reference on the same inputs."""
    rng = np.random.default_rng(n_classes)
    rows = 300  # more than one 256-row block
    x = (rng.standard_normal((rows, n_classes)) * 3).astype(dtype)
    y = rng.integers(0, n_classes, rows)
    y[::7] = 3  # some samples carry the ignored label
    kw = dict(options)
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.1, 2.0, n_classes).astype(dtype)
    with kernels.policy(serial_max=10**12 if serial else 0):
        loss, grad = softgrad.cross_entropy_and_grad(x, y, **kw)
    ref_loss, ref_grad = ref_cross_entropy_and_grad(x, y, **kw)
    assert_close(loss, ref_loss, n=x.size, c=16.0)
    assert_close(grad, ref_grad, n=n_classes, c=16.0)
    assert calls["cross_entropy_rows"] == 1
    assert calls["cross_entropy_rows_serial"] == int(serial)


@settings(max_examples=60)
@given(case=st.data(), path=st.sampled_from(PATHS))
def test_many_classes_match_reference(case: st.DataObject, path: tuple[int, int]) -> None:
    """The hypothesis cases above draw 1-9 classes; these draw 33-80 (the row kernel)."""
    dtype = case.draw(st.sampled_from(DTYPES))
    n, c = case.draw(st.integers(1, 6)), case.draw(st.integers(33, 80))
    x = case.draw(hnp.arrays(dtype, (n, c), elements=st.floats(-40, 40, width=32)))
    if case.draw(st.booleans()):
        x[case.draw(st.integers(0, n - 1)), case.draw(st.integers(0, c - 1))] = case.draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
    y = case.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    kw: dict[str, Any] = {
        "label_smoothing": case.draw(st.sampled_from([0.0, 0.1, 1.0])),
        "reduction": case.draw(st.sampled_from(["mean", "sum", "none"])),
        "ignore_index": case.draw(st.sampled_from([None, 0])),
    }
    if case.draw(st.booleans()):
        # zero, or at least 2**-10: with weights of ~1e-16 the mean's denominator
        # amplifies the rounding of a*S - b by ~1e15, past any bound relative to the
        # result; checked at 300 bits with mpmath, the reference itself missed the
        # bound in 2 of the 3 failing draws of 3000 (kern3, 2026-12-01)
        weights = st.one_of(st.just(0.0), st.floats(2**-10, 3, width=32))
        kw["weight"] = case.draw(hnp.arrays(dtype, (c,), elements=weights))
    with kernel_path(*path):
        loss, grad = softgrad.cross_entropy_and_grad(x, y, **kw)
    ref_loss, ref_grad = ref_cross_entropy_and_grad(x, y, **kw)
    scale = 1.0 + (0.0 if "weight" not in kw else float(np.max(kw["weight"])))
    assert_close(loss, ref_loss, n=c * x.size, c=8.0 * scale)
    assert_close(grad, ref_grad, n=c, c=8.0 * scale)
