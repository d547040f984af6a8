"""The torch operation of linear_cross_entropy: low precision, gradcheck, torch.compile, the head."""

from __future__ import annotations

import pytest

import softgrad as sg
from softgrad import kernels

torch = pytest.importorskip("torch")
F = torch.nn.functional

N, D, K = 21, 4, 13
BLOCKS = {"block_rows": 8, "block_vocab": 5}


def _data(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, D, generator=g, dtype=dtype)
    w = torch.randn(K, D, generator=g, dtype=dtype)
    b = torch.randn(K, generator=g, dtype=dtype)
    y = torch.randint(0, K, (N,), generator=g)
    y[3] = -100
    y[4] = K - 1
    return h, w, b, y


def _loss_and_grads(h, w, b, y, **opts):
    h, w, b = (t.detach().requires_grad_() for t in (h, w, b))
    loss = sg.linear_cross_entropy(h, w, y, bias=b, **opts, **BLOCKS)
    loss.backward()
    return loss.detach(), h.grad, w.grad, b.grad


@pytest.mark.parametrize("use_kernel", [True, False], ids=["cpu-kernel", "torch-ops"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_is_computed_in_float32(use_kernel, dtype):
    h, w, b, y = _data(torch.float32)
    h, w, b = h.to(dtype), w.to(dtype), b.to(dtype)
    opts = {"z_loss": 1e-3, "label_smoothing": 0.1}
    with kernels.policy(enabled=use_kernel):
        low = _loss_and_grads(h, w, b, y, **opts)
        high = _loss_and_grads(h.float(), w.float(), b.float(), y, **opts)
    for got, want in zip(low, high, strict=True):
        assert got.dtype == dtype
        # one rounding of the float32 result: a half-precision accumulation would differ
        assert torch.equal(got, want.to(dtype))


@pytest.mark.parametrize("use_kernel", [True, False], ids=["cpu-kernel", "torch-ops"])
def test_gradcheck_every_gradient(use_kernel):
    h, w, b, y = _data()
    cw = torch.rand(K, dtype=torch.float64) + 0.5
    h, w, b = (t.requires_grad_() for t in (h, w, b))

    def fn(h, w, b):
        return sg.linear_cross_entropy(
            h, w, y, bias=b, class_weight=cw, label_smoothing=0.1, z_loss=1e-2,
            softcap=3.0, reduction="none", **BLOCKS,
        )  # fmt: skip

    with kernels.policy(enabled=use_kernel):
        assert torch.autograd.gradcheck(fn, (h, w, b))


def test_under_torch_compile_matches_eager():
    h, w, b, y = _data()

    def step(h, w, b, y):
        return sg.linear_cross_entropy(h, w, y, bias=b, z_loss=1e-3, **BLOCKS)

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    hc, wc, bc = (t.clone().requires_grad_() for t in (h, w, b))
    loss = compiled(hc, wc, bc, y)
    loss.backward()
    eager = _loss_and_grads(h, w, b, y, z_loss=1e-3)
    torch.testing.assert_close(loss.detach(), eager[0])
    for got, want in zip((hc.grad, wc.grad, bc.grad), eager[1:], strict=True):
        torch.testing.assert_close(got, want)


def test_head_matches_materialised_linear_and_cross_entropy():
    from softgrad.torch import LinearCrossEntropyHead

    torch.manual_seed(0)
    head = LinearCrossEntropyHead(D, K, dtype=torch.float64, label_smoothing=0.1, **BLOCKS)
    h, _, _, y = _data()
    h = h.reshape(3, 7, D).requires_grad_()
    loss = head(h, y.reshape(3, 7))
    loss.backward()
    h2 = h.detach().clone().requires_grad_()
    w2 = head.weight.detach().clone().requires_grad_()
    b2 = head.bias.detach().clone().requires_grad_()
    ref = F.cross_entropy((h2 @ w2.T + b2).reshape(-1, K), y, label_smoothing=0.1)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(h.grad, h2.grad)
    torch.testing.assert_close(head.weight.grad, w2.grad)
    torch.testing.assert_close(head.bias.grad, b2.grad)
