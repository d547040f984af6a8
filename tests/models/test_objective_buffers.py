"""MultinomialObjective's buffers: one ``K x n`` array, chunked scratch, rows lent to Hessians.

The values are checked against plain NumPy formulas and against the same
computation with other buffer layouts (aliased or separate, other chunk
sizes): the buffers change memory, never a bit of a result.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrad.models import MultinomialObjective, _objective


def plain_cross_entropy(zt: np.ndarray, y: np.ndarray, scale: np.ndarray):
    """Σ c_i CE_i and c (S - Y) of column logits, written out with whole arrays."""
    z = zt.T.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_s = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(y)
    ce = -log_s[np.arange(n), y]
    g = np.exp(log_s)
    g[np.arange(n), y] -= 1.0
    return float(ce @ scale), (g * scale[:, None]).T


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 6),
    chunk=st.sampled_from([1, 7, 64, 1 << 15]),
    seed=st.integers(0, 2**31 - 1),
    float32=st.booleans(),
)
def test_cross_entropy_columns_in_place_and_by_chunks(n, k, chunk, seed, float32):
    rng = np.random.default_rng(seed)
    dt = np.float32 if float32 else np.float64
    zt = (3 * rng.standard_normal((k, n))).astype(dt)
    y = rng.integers(0, k, n).astype(np.intp)
    scale = rng.random(n).astype(dt)
    whole = np.empty_like(zt), np.empty(n, dtype=dt)
    loss = _objective._cross_entropy_columns(zt, y, scale, *whole)
    in_place, ce = zt.copy(), np.empty(n, dtype=dt)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_objective, "CE_COLUMNS", chunk)
        loss_in_place = _objective._cross_entropy_columns(in_place, y, scale, in_place, ce)
    # the logits' own buffer and any chunking give the same bits
    assert loss_in_place == loss
    np.testing.assert_array_equal(in_place, whole[0])
    np.testing.assert_array_equal(ce, whole[1])
    expected_loss, expected_g = plain_cross_entropy(zt, y, scale.astype(np.float64))
    rtol = 1e-4 if float32 else 1e-10
    np.testing.assert_allclose(loss, expected_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(whole[0], expected_g, rtol=rtol, atol=rtol)


def problem(n: int = 4000, d: int = 6, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n).astype(np.intp)
    return X, y, k, rng


def test_an_evaluation_holds_one_logits_sized_buffer():
    X, y, k, rng = problem(n=200_000, d=5)
    n = len(y)
    tracemalloc.start()
    try:
        obj = MultinomialObjective(X, y, n_classes=k)
        obj.loss_and_grad(rng.standard_normal(obj.n_params))
        obj.loss(rng.standard_normal(obj.n_params))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Sᵀ - Yᵀ (K x n, the logits computed into it), the losses and the row weights
    # (n each), and the chunks' scratch; two K x n buffers would be 6.4 MB more
    assert peak <= (k + 2) * n * 8 + 3 * 2**20


def test_hessian_rows_in_the_gradient_buffer_and_taken_back():
    X, y, k, rng = problem(n=40_000, d=16)
    rows = np.sort(rng.choice(len(y), 5000, replace=False))  # 5000 x 16 fit in 4 x 40,000
    w, v = rng.standard_normal((2, k * (X.shape[1] + 1)))
    fresh = MultinomialObjective(X, y, n_classes=k)
    expected = fresh.hessp(w, rows)(v)
    expected_at_w = fresh.loss_and_grad(w)
    obj = MultinomialObjective(X, y, n_classes=k)
    obj.loss_and_grad(w)
    tracemalloc.start()
    try:
        hvp = obj.hessp(w, rows)
        lent_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Sᵀ and the rows' weights (6 numbers a row), not a copy of the rows (16 a row)
    assert lent_peak < 0.6 * len(rows) * X.shape[1] * 8
    np.testing.assert_array_equal(hvp(v), expected)
    # an evaluation between two products takes the buffer back; the products stay right
    obj.loss(w + 1.0)
    np.testing.assert_array_equal(hvp(v), expected)
    # and the point whose G the rows replaced is evaluated again, not read from the cache
    loss, grad = obj.loss_and_grad(w)
    assert loss == expected_at_w[0]
    np.testing.assert_array_equal(grad, expected_at_w[1])


def test_rows_too_many_for_the_buffer_are_copied():
    X, y, k, rng = problem(n=1000, d=40)  # 1000 rows x 40 features > 4 x 1000 logits
    w, v = rng.standard_normal((2, k * 41))
    rows = np.arange(0, 1000, 2)
    obj = MultinomialObjective(X, y, n_classes=k)
    got = obj.hessp(w, rows)(v)
    sub = MultinomialObjective(X[rows], y[rows], n_classes=k, C=1.0)
    # the sample's Hessian is the sub-problem's, with the full problem's penalty
    l2_diff = obj.l2 - sub.l2
    expected = sub.hessp(w)(v)
    expected[: k * 40] += l2_diff * v[: k * 40]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
