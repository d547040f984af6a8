"""The NumPy paths of linear_cross_entropy_and_grad agree: fused order, two-pass order, reference.

The fused order (Liger's: each chunk's logits over the whole vocabulary,
gradient formed at once) and the two-pass order (CCE's: forward pass, then
recompute) must give the same loss and gradients for every option, on shapes
that are not multiples of the blocks; float16 inputs are computed in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import softgrad as sg
import softgrad._linear_blocks as lin
from softgrad import kernels

pytest.importorskip("numba")


def _case(seed, n, d, k):
    rng = np.random.default_rng(seed)
    h, w = rng.normal(size=(n, d)), rng.normal(size=(k, d))
    b, cw = rng.normal(size=k), rng.uniform(0.1, 2.0, size=k)
    y = rng.integers(0, k, size=n)
    y[rng.random(n) < 0.2] = -100
    return h, w, b, cw, y


def _run(monkeypatch, fused, kernel, h, w, y, **opts):
    monkeypatch.setattr(lin, "FUSED_ORDER", fused)
    with kernels.policy(enabled=kernel):
        return sg.linear_cross_entropy_and_grad(h, w, y, **opts)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 23),
    d=st.integers(1, 5),
    k=st.integers(1, 17),
    block_rows=st.integers(1, 9),
    block_vocab=st.integers(1, 7),
    bias=st.booleans(),
    weights=st.booleans(),
    eps=st.sampled_from([0.0, 0.3]),
    zl=st.sampled_from([0.0, 0.05]),
    cap=st.sampled_from([None, 1.5]),
    red=st.sampled_from(["mean", "sum", "none"]),
)
def test_fused_and_two_pass_orders_match_the_reference(
    seed, n, d, k, block_rows, block_vocab, bias, weights, eps, zl, cap, red
):
    h, w, b, cw, y = _case(seed, n, d, k)
    upstream = np.linspace(-1.0, 2.0, n) if red == "none" else np.array(0.7)
    opts = {
        "bias": b if bias else None,
        "class_weight": cw if weights else None,
        "label_smoothing": eps,
        "z_loss": zl,
        "softcap": cap,
        "reduction": red,
        "grad_output": upstream,
        "block_rows": block_rows,
        "block_vocab": block_vocab,
    }
    with pytest.MonkeyPatch.context() as mp:
        ref = _run(mp, False, False, h, w, y, **opts)
        fused = _run(mp, True, True, h, w, y, **opts)
        two_pass = _run(mp, False, True, h, w, y, **opts)
    for res in (fused, two_pass):
        for got, want in zip(res, ref, strict=True):
            if want is None:
                assert got is None
            else:
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_fused_chunk_holds_no_more_logits_than_one_block():
    h, w, _, _, y = _case(0, 50, 3, 40)
    hd = lin._check(h, w, y, block_rows=8, block_vocab=16)
    assert hd.fused_rows == 3  # 8 * 16 // 40 rows x 40 classes <= one 8 x 16 block
    wide = np.zeros((2**15, 3))
    # default blocks: 2**24 logits alive, i.e. 512 rows of a 32 768-class vocabulary
    assert lin._check(h, wide, y).fused_rows == 512


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "two-pass"])
def test_float16_is_computed_in_float32(monkeypatch, fused):
    rng = np.random.default_rng(5)
    h16 = rng.normal(size=(40, 8)).astype(np.float16)
    w16 = rng.normal(size=(300, 8)).astype(np.float16)
    y = rng.integers(0, 300, size=40)
    res16 = _run(monkeypatch, fused, True, h16, w16, y, block_rows=16, block_vocab=64)
    res32 = _run(
        monkeypatch, fused, True, h16.astype(np.float32), w16.astype(np.float32), y,
        block_rows=16, block_vocab=64,
    )  # fmt: skip
    for got, want in zip(res16[:3], res32[:3], strict=True):
        assert got.dtype == np.float16
        # one rounding of the float32 result: accumulating in float16 would differ
        np.testing.assert_array_equal(got, want.astype(np.float16))
    loss16 = sg.linear_cross_entropy(h16, w16, y)
    assert loss16.dtype == np.float16
    assert loss16 == res32.loss.astype(np.float16)
