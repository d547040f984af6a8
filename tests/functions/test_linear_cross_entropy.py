"""linear_cross_entropy against PyTorch's materialised F.cross_entropy(h @ W.T + b, ...)."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

import softgrad as sg
from softgrad import kernels

torch = pytest.importorskip("torch")
F = torch.nn.functional

N, D, K = 37, 5, 23  # not multiples of the 8 x 5 blocks used below
BLOCKS = {"block_rows": 8, "block_vocab": 5}
OPTIONS = list(
    itertools.product(
        [False, True],  # bias
        [False, True],  # class weights
        [0.0, 0.2],  # label smoothing
        [0.0, 1e-2],  # z-loss
        [None, 2.0],  # softcap
        ["mean", "sum", "none"],
    )
)


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(N, D))
    w = rng.normal(size=(K, D))
    b = rng.normal(size=K)
    cw = rng.uniform(0.2, 2.0, size=K)
    y = rng.integers(0, K, size=N)
    y[[3, 7]] = -100  # ignored
    y[5] = K - 1  # the last class
    return h, w, b, cw, y


def _torch_reference(h, w, y, b, cw, eps, zl, cap, red, upstream):
    ht = torch.tensor(h, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    u = ht @ wt.T + (0 if bt is None else bt)
    z = u if cap is None else cap * torch.tanh(u / cap)
    yt = torch.tensor(y)
    weight = None if cw is None else torch.tensor(cw)
    loss = F.cross_entropy(z, yt, weight=weight, label_smoothing=eps, reduction=red)
    if zl:
        counted = (yt != -100).to(z.dtype)
        zterm = zl * torch.logsumexp(z, 1) ** 2 * counted
        # the z-loss mean is over counted tokens (the cross-entropy's over target weights)
        if red == "none":
            loss = loss + zterm
        elif red == "sum":
            loss = loss + zterm.sum()
        else:
            loss = loss + zterm.sum() / counted.sum()
    loss.backward(torch.tensor(upstream))
    grads = [ht.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()]
    return loss.detach().numpy(), grads


@pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "reference"])
@pytest.mark.parametrize(("bias", "weights", "eps", "zl", "cap", "red"), OPTIONS)
def test_numpy_matches_torch(use_kernel, bias, weights, eps, zl, cap, red):
    h, w, b, cw, y = _data()
    b = b if bias else None
    cw = cw if weights else None
    upstream = np.linspace(-1.0, 2.0, N) if red == "none" else np.array(1.3)
    loss_ref, grads_ref = _torch_reference(h, w, y, b, cw, eps, zl, cap, red, upstream)
    opts = {
        "bias": b,
        "class_weight": cw,
        "label_smoothing": eps,
        "z_loss": zl,
        "softcap": cap,
        "reduction": red,
    }
    with kernels.policy(enabled=use_kernel):
        loss = sg.linear_cross_entropy(h, w, y, **opts, **BLOCKS)
        res = sg.linear_cross_entropy_and_grad(h, w, y, **opts, grad_output=upstream, **BLOCKS)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.loss, loss_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.grad_h, grads_ref[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.grad_weight, grads_ref[1], rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(res.grad_bias, grads_ref[2], rtol=1e-10, atol=1e-12)
    else:
        assert res.grad_bias is None


@pytest.mark.parametrize("use_kernel", [True, False], ids=["cpu-kernel", "torch-ops"])
@pytest.mark.parametrize(("bias", "weights", "eps", "zl", "cap", "red"), OPTIONS[::5])
def test_torch_autograd_matches_torch(use_kernel, bias, weights, eps, zl, cap, red):
    h, w, b, cw, y = _data()
    b = b if bias else None
    cw = cw if weights else None
    upstream = np.linspace(-1.0, 2.0, N) if red == "none" else np.array(1.3)
    loss_ref, grads_ref = _torch_reference(h, w, y, b, cw, eps, zl, cap, red, upstream)
    ht = torch.tensor(h, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    with kernels.policy(enabled=use_kernel):
        loss = sg.linear_cross_entropy(
            ht,
            wt,
            torch.tensor(y),
            bias=bt,
            class_weight=None if cw is None else torch.tensor(cw),
            label_smoothing=eps,
            z_loss=zl,
            softcap=cap,
            reduction=red,
            **BLOCKS,
        )
        loss.backward(torch.tensor(upstream))
    np.testing.assert_allclose(loss.detach().numpy(), loss_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ht.grad.numpy(), grads_ref[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), grads_ref[1], rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(bt.grad.numpy(), grads_ref[2], rtol=1e-10, atol=1e-12)


def test_all_rows_ignored_gives_zero_gradient_and_no_nan():
    h, w, _, _, _ = _data()
    y = np.full(N, -100)
    res = sg.linear_cross_entropy_and_grad(h, w, y, reduction="sum", **BLOCKS)
    assert float(res.loss) == 0.0
    assert not np.any(res.grad_h)
    assert not np.any(res.grad_weight)


def test_probability_targets_are_refused_with_a_hint():
    h, w, _, _, _ = _data()
    with pytest.raises(TypeError, match="cross_entropy"):
        sg.linear_cross_entropy(h, w, np.full((N, K), 1.0 / K))


def test_no_n_by_k_logits_are_allocated():
    n, d, k = 512, 8, 4096  # N x K float64 = 16 MiB; blocks of 64 x 256 = 128 KiB
    rng = np.random.default_rng(1)
    h, w = rng.normal(size=(n, d)), rng.normal(size=(k, d))
    y = rng.integers(0, k, size=n)
    sg.linear_cross_entropy_and_grad(h, w, y, block_rows=64, block_vocab=256)  # warm up
    tracemalloc.start()
    try:
        sg.linear_cross_entropy_and_grad(h, w, y, block_rows=64, block_vocab=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # dW itself is k*d*8 = 256 KiB; the logits would be n*k*8 = 16 MiB
    assert peak < n * k * 8 / 8, f"peak {peak} bytes suggests N x K logits were built"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_or_narrow_inputs_compile_nothing_new(dtype):
    # numba types read-only, strided and int32 arrays apart: such class weights or
    # targets would compile the blocked kernels again in the caller. Same values, and
    # no new compiled signature.
    from softgrad.kernels import _linear

    h, w, _, cw, y = (a.astype(dtype) if a.dtype.kind == "f" else a for a in _data())
    want = [
        sg.linear_cross_entropy(h, w, y, class_weight=cw, **BLOCKS),
        *sg.linear_cross_entropy_and_grad(h, w, y, class_weight=cw, **BLOCKS),
    ]
    kernels_ = (_linear.lse_block, _linear.grad_block)
    before = [len(k.signatures) for k in kernels_]
    cw_ro = np.repeat(cw, 2)[::2]  # strided
    cw_ro.flags.writeable = False
    y32 = y.astype(np.int32)
    y32.flags.writeable = False
    got = [
        sg.linear_cross_entropy(h, w, y32, class_weight=cw_ro, **BLOCKS),
        *sg.linear_cross_entropy_and_grad(h, w, y32, class_weight=cw_ro, **BLOCKS),
    ]
    assert [len(k.signatures) for k in kernels_] == before
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
