"""The row spans the kernels loop over: borrowed views of C-contiguous arrays, numba's
slices of strided ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from softgrad.kernels import _rows


@njit(cache=False)
def _read_and_write(a: Any, i: int, lo: int, hi: int) -> Any:  # pragma: no cover - compiled
    """A copy of ``span(a, i, lo, hi)``, and ``a[i, lo:hi]`` doubled through the span."""
    s = _rows.span(a, i, lo, hi)
    seen = s.copy()
    for j in range(s.shape[0]):
        s[j] = s[j] + s[j]
    return seen


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 40)),
    where=st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1), st.floats(0, 1)),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    contiguous=st.booleans(),
)
def test_span_is_the_slice(
    shape: tuple[int, int],
    where: tuple[float, float, float],
    dtype: Any,
    contiguous: bool,
) -> None:
    # any row, any 0 <= lo <= hi (hi beyond the row is clamped, as a slice's), C-contiguous
    # (borrowed view) or strided (numba's slice): the span reads a[i, lo:hi] and writes
    # through to a
    rows, n = shape
    base = np.arange(rows * n * 2, dtype=dtype).reshape(rows, n * 2)
    a = np.ascontiguousarray(base[:, :n]) if contiguous else base[:, ::2]
    i = int(where[0] * rows)
    lo, hi = sorted((int(where[1] * (n + 3)), int(where[2] * (n + 3))))  # may pass n
    before = a.copy()
    seen = _read_and_write(a, i, lo, hi)
    np.testing.assert_array_equal(seen, before[i, lo:hi])
    expected = before.copy()
    expected[i, lo:hi] *= 2
    np.testing.assert_array_equal(a, expected)
