"""The row spans the kernels loop over (borrowed views of C-contiguous arrays, numba's
slices of strided ones), and read-only inputs (copied, not compiled for)."""

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


_KERNELS = [
    "forward_rows",
    "forward_rows_serial",
    "vjp_rows",
    "vjp_rows_serial",
    "cross_entropy_rows",
    "cross_entropy_rows_serial",
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_inputs_compile_nothing_new(dtype: Any) -> None:
    # numba types a read-only array apart from a writeable one: without a copy, a
    # read-only input (a memory-mapped file, np.asarray of a JAX array) would compile
    # every kernel again in the caller. The same calls on read-only inputs give the
    # same values and add no compiled signature.
    import softgrad
    from softgrad import kernels

    k = kernels.load(wait=True)
    assert k is not None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 40)).astype(dtype)
    g = rng.standard_normal((300, 40)).astype(dtype)
    mask = rng.random((300, 40)) > 0.2
    labels = np.arange(300) % 40
    weight = np.linspace(0.5, 1.5, 40).astype(dtype)

    def calls(x: Any, g: Any, mask: Any, labels: Any, weight: Any) -> list[Any]:
        out = []
        for serial_max in (10**9, 0):
            with kernels.policy(min_size=0, serial_max=serial_max):
                out.append(softgrad.softmax(x, where=mask))
                out.append(softgrad.log_softmax(x))
                out.append(softgrad.softmax_vjp(out[-2], g, where=mask))
                out.extend(softgrad.cross_entropy_and_grad(x, labels, weight=weight))
        return out

    want = calls(x, g, mask, labels, weight)
    before = {name: len(getattr(k, name).signatures) for name in _KERNELS}
    frozen = [a.copy() for a in (x, g, mask, labels, weight)]
    for a in frozen:
        a.flags.writeable = False
    got = calls(*frozen)
    assert {name: len(getattr(k, name).signatures) for name in _KERNELS} == before
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
