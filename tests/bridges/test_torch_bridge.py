"""softgrad.torch: gradcheck/gradgradcheck of every op on both paths, native agreement, masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import softgrad.torch as sgt
from softgrad import kernels

PATHS = {
    # the kernels at every size (the default policy keeps small inputs on the reference)
    "kernels": lambda: kernels.policy(min_size=0),
    "device_agnostic": kernels.disabled,
}


@pytest.fixture(params=list(PATHS), ids=list(PATHS))
def path(request: pytest.FixtureRequest) -> Any:
    with PATHS[request.param]():
        yield request.param


def _x(shape: tuple[int, ...] = (3, 5)) -> Any:
    g = torch.Generator().manual_seed(0)
    return torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)


def _check(f: Callable[[Any], Any], x: Any) -> None:
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


class TestGradcheck:
    def test_softmax_masked(self, path: str) -> None:
        m = torch.tensor([[True, False, True, True, False]] * 3)
        _check(lambda x: sgt.softmax(x, where=m), _x())

    def test_log_softmax_masked(self, path: str) -> None:
        m = torch.tensor([[True, False, True, True, False]] * 3)
        _check(lambda x: torch.where(m, sgt.log_softmax(x, where=m), 0.0), _x())

    def test_log_softmax_keeping_s_below_the_kernel_size(self) -> None:
        # default policy, a small tensor: the S-keeping op (CPU, whole rows) computes
        # in torch operations; its backward and double backward are closed forms too
        m = torch.tensor([[True, False, True, True, False]] * 3)
        x = _x()
        x.data[0, 2] = -float("inf")
        assert kernels.current_policy().min_size > x.numel()
        _check(lambda x: torch.where(m, sgt.log_softmax(x, where=m), 0.0), _x())
        out = sgt.log_softmax(x, where=m)
        # the op (softgrad::log_softmax_and_s) or its eager Function (SoftgradLogSoftmaxAndS)
        assert "logsoftmaxands" in out.grad_fn.name().lower().replace("_", "")
        (g,) = torch.autograd.grad(torch.where(m, out, 0.0).sum(), x)
        assert g[~m].eq(0).all()
        assert g[0, 2].item() == 0.0  # a -inf logit: excluded, no gradient

    def test_logsumexp(self, path: str) -> None:
        _check(lambda x: sgt.logsumexp(x, axis=0), _x())

    @pytest.mark.parametrize(
        "kw",
        [
            {},
            {"reduction": "sum"},
            {"reduction": "none"},
            {"ignore_index": 1, "label_smoothing": 0.2},
        ],
        ids=["mean", "sum", "none", "ignore-smooth"],
    )
    def test_cross_entropy(self, path: str, kw: dict[str, Any]) -> None:
        y = torch.tensor([0, 1, 4])
        _check(lambda x: sgt.cross_entropy(x, y, **kw), _x())


class TestNative:
    def test_values_and_grads_match_torch(self, path: str) -> None:
        x = _x((4, 7))
        v = torch.randn(4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        for ours, theirs in [(sgt.softmax, torch.softmax), (sgt.log_softmax, torch.log_softmax)]:
            (g1,) = torch.autograd.grad((ours(x) * v).sum(), x)
            (g2,) = torch.autograd.grad((theirs(x, -1) * v).sum(), x)
            torch.testing.assert_close(ours(x), theirs(x, -1))
            torch.testing.assert_close(g1, g2)

    def test_cross_entropy_weighted_matches_torch(self, path: str) -> None:
        x = _x((6, 5))
        y = torch.tensor([0, 1, 4, 2, 2, 3])
        w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
        (g1,) = torch.autograd.grad(sgt.cross_entropy(x, y, weight=w), x)
        ref = torch.nn.functional.cross_entropy(x, y, weight=w)
        (g2,) = torch.autograd.grad(ref, x)
        torch.testing.assert_close(sgt.cross_entropy(x, y, weight=w), ref)
        torch.testing.assert_close(g1, g2)


class TestContract:
    def test_masked_gradient_exactly_zero_with_huge_values(self, path: str) -> None:
        x = torch.tensor([36.0, 1e4, 1.0], dtype=torch.float64, requires_grad=True)
        m = torch.tensor([True, False, True])
        for f in (sgt.softmax, sgt.log_softmax):
            x.grad = None
            out = torch.where(m, f(x, where=m), 0.0)
            (out * torch.tensor([1.0, 5.0, -2.0], dtype=torch.float64)).sum().backward()
            assert x.grad is not None
            assert torch.isfinite(x.grad).all()
            assert x.grad[1].item() == 0.0

    def test_inf_nan_rows(self, path: str) -> None:
        inf, nan = float("inf"), float("nan")
        x = torch.tensor([[0.0, inf, inf], [1.0, nan, 2.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
        s = sgt.softmax(x)
        torch.testing.assert_close(s[0], torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64))
        assert torch.isnan(s[1]).all()
        assert torch.isfinite(s[2]).all()

    def test_half_and_transposed(self, path: str) -> None:
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2)).t()
        torch.testing.assert_close(sgt.softmax(x), torch.softmax(x, -1))
        assert sgt.softmax(x.to(torch.bfloat16)).dtype == torch.bfloat16
        assert sgt.softmax(torch.zeros(2, 0)).shape == (2, 0)


class TestRouting:
    def test_public_functions_route_tensors_to_the_bridge(self) -> None:
        import softgrad as sg

        x = _x((2, 3))
        for public, bridged in [
            (sg.softmax, sgt.softmax),
            (sg.log_softmax, sgt.log_softmax),
            (lambda t: sg.logsumexp(t, keepdims=True), lambda t: sgt.logsumexp(t, keepdims=True)),
        ]:
            out = public(x)
            assert (
                "softgrad" in out.grad_fn.name().lower()
            )  # the bridge's op, not autodiff of the reference
            torch.testing.assert_close(out, bridged(x))


def test_torch_compile_fullgraph() -> None:
    """One small compiled training step: no graph break, same loss and gradient as eager."""
    z = _x((8, 5))
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])

    def step(z: Any, y: Any) -> Any:
        return sgt.cross_entropy(sgt.log_softmax(z), y) + sgt.logsumexp(z).sum()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    (g_compiled,) = torch.autograd.grad(compiled(z, y), z)
    (g_eager,) = torch.autograd.grad(step(z, y), z)
    torch.testing.assert_close(compiled(z, y), step(z, y))
    torch.testing.assert_close(g_compiled, g_eager)


def test_torch_compile_as_the_first_call_of_a_process() -> None:
    """A compiled step that is the process's first softgrad call traces without a graph
    break (the README's example: lazy first-call state must not be traced)."""
    import subprocess
    import sys

    code = (
        "import torch, softgrad.torch as sgt\n"
        "z = torch.randn(8, 5, requires_grad=True); y = torch.arange(8) % 5\n"
        "f = lambda z: sgt.cross_entropy(z, y) + sgt.softmax(z).sum() + sgt.log_softmax(z).sum()\n"
        "loss = torch.compile(f, fullgraph=True, backend='aot_eager')(z)\n"
        "loss.backward()\n"
        "print(bool(torch.isfinite(z.grad).all()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"


class TestKernelPaths:
    """The numba paths the bridge reaches directly, against the device-agnostic path."""

    @pytest.mark.parametrize(
        "layout",
        [{"serial_max": 10**9}, {"serial_max": 0}, {"serial_max": 0, "chunk": 3}],
        ids=["serial", "parallel", "parallel-split-rows"],
    )
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_log_softmax_backward_from_log_s(self, layout: dict[str, int], dtype: str) -> None:
        # the backward reads log S (its -inf entries excluded, NaN rows kept NaN)
        inf, nan = float("inf"), float("nan")
        gen = torch.Generator().manual_seed(3)
        dt = getattr(torch, dtype)
        x = torch.randn(6, 11, dtype=dt, generator=gen) * 4
        x[1, 3] = -inf
        x[2] = -inf
        x[3, 5] = inf
        x[4, 0] = nan
        v = torch.randn(6, 11, dtype=dt, generator=gen)
        m = torch.rand(6, 11, generator=gen) > 0.3
        grads = []
        for ctx in (lambda: kernels.policy(min_size=0, **layout), kernels.disabled):
            with ctx():
                for where in (None, m):
                    z = x.clone().requires_grad_()
                    out = sgt.log_softmax(z, where=where)
                    (g,) = torch.autograd.grad(
                        torch.where(torch.isfinite(out), out * v, 0.0).sum(), z
                    )
                    grads.append(g)
        tol = {"float32": 2e-6, "float64": 1e-14}[dtype]
        torch.testing.assert_close(grads[0], grads[2], rtol=tol, atol=tol, equal_nan=True)
        torch.testing.assert_close(grads[1], grads[3], rtol=tol, atol=tol, equal_nan=True)
        assert grads[0][2].eq(0).all()  # an empty row: no gradient
        finite_rows = torch.arange(6) != 4
        assert grads[1][finite_rows][~m[finite_rows]].eq(0).all()  # masked entries: exactly 0
        assert grads[0][4].isnan().all()  # NaN stays in its row

    def test_log_softmax_backward_other_axis(self) -> None:
        x = _x((5, 9))
        v = torch.randn(5, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        with kernels.policy(min_size=0):
            (g1,) = torch.autograd.grad((sgt.log_softmax(x, axis=0) * v).sum(), x)
        (g2,) = torch.autograd.grad((torch.log_softmax(x, 0) * v).sum(), x)
        torch.testing.assert_close(g1, g2)


class TestCrossEntropyBackward:
    """The saved gradient is handed on by ``loss.backward()``; every other use stays right."""

    def _native(self, x: Any, y: Any, **kw: Any) -> Any:
        z = x.detach().clone().requires_grad_()
        torch.nn.functional.cross_entropy(z, y, **kw).backward()
        return z.grad

    def test_retained_graph_accumulates(self, path: str) -> None:
        x = _x((6, 5))
        y = torch.tensor([0, 1, 4, 2, 2, 3])
        ref = self._native(x, y)
        loss = sgt.cross_entropy(x, y)
        for k in range(1, 4):
            loss.backward(retain_graph=True)
            torch.testing.assert_close(x.grad, k * ref)
        x.grad.zero_()  # an in-place change of .grad reaches no saved state
        loss.backward()
        torch.testing.assert_close(x.grad, ref)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_scaled_upstream_gradient(self, path: str, reduction: str) -> None:
        x = _x((6, 5))
        y = torch.tensor([0, 1, 4, 2, 2, 3])
        z = x.detach().clone().requires_grad_()
        up = torch.linspace(0.5, 3.0, 6, dtype=torch.float64)
        up = up if reduction == "none" else up[2]
        loss = sgt.cross_entropy(x, y, reduction=reduction)
        loss.backward(up)
        torch.nn.functional.cross_entropy(z, y, reduction=reduction).backward(up)
        torch.testing.assert_close(x.grad, z.grad)
        assert x.grad is not None
        x.grad.mul_(0.0)  # the hand-on path must not share this memory with a later call
        sgt.cross_entropy(x, y, reduction=reduction).backward(up)
        torch.testing.assert_close(x.grad, z.grad)

    def test_hand_on_makes_no_copy(self) -> None:
        # loss.backward() with the upstream gradient 1: .grad is the forward's buffer
        from softgrad.torch import _ops

        x = _x((64, 100))
        y = torch.arange(64) % 100
        with kernels.policy(min_size=0):
            loss, grad = _ops.cross_entropy(x, y, 1, None, -100, 0.0, "mean")
            loss.backward()
        assert x.grad is not None
        assert x.grad.data_ptr() == grad.data_ptr()

    def test_backward_allocates_nothing_logits_sized(self, path: str) -> None:
        # the op's second output (the gradient) is internal: autograd must not build a zero
        # cotangent the size of the logits for it (a fresh page-faulted buffer every step)
        x = _x((64, 100))
        y = torch.arange(64) % 100
        loss = sgt.cross_entropy(x, y)
        cpu = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=cpu, profile_memory=True) as prof:
            loss.backward()
        allocated = [e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0]
        assert max(allocated, default=0) < x.numel() * x.element_size() // 4
        torch.testing.assert_close(x.grad, self._native(x, y))


class TestCrossEntropyAndGrad:
    """``softgrad.torch.cross_entropy_and_grad``: the loss and the gradient autograd would give."""

    @pytest.mark.parametrize(
        "kw",
        [
            {},
            {"reduction": "sum"},
            {"reduction": "none"},
            {"weight": "w", "label_smoothing": 0.1, "ignore_index": 3},
            {"weight": "w", "ignore_index": None, "label_smoothing": 1.0, "reduction": "sum"},
        ],
        ids=["mean", "sum", "none", "weight-smooth-ignore", "weight-full-smoothing"],
    )
    @pytest.mark.parametrize("n_classes", [5, 40], ids=["few-class-block", "many-class-rows"])
    def test_matches_autograd_of_the_native_loss(
        self, path: str, kw: dict[str, Any], n_classes: int
    ) -> None:
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(9, n_classes, dtype=torch.float64, generator=gen) * 3
        y = torch.randint(0, n_classes, (9,), generator=gen)
        y[::4] = 3  # some samples carry the ignored label
        if kw.get("weight") == "w":
            kw = {**kw, "weight": torch.rand(n_classes, dtype=torch.float64, generator=gen) + 0.1}
        native = dict(kw)
        if native.get("ignore_index", -100) is None:
            native["ignore_index"] = -100
        loss, grad = sgt.cross_entropy_and_grad(x, y, **kw)
        z = x.clone().requires_grad_()
        want = torch.nn.functional.cross_entropy(z, y, **native)
        (want_grad,) = torch.autograd.grad(want.sum(), z)
        torch.testing.assert_close(loss, want.detach())
        torch.testing.assert_close(grad, want_grad)

    def test_records_no_graph(self, path: str) -> None:
        x = _x((4, 6))
        loss, grad = sgt.cross_entropy_and_grad(x, torch.tensor([0, 5, 2, 1]))
        assert not loss.requires_grad
        assert not grad.requires_grad
        torch.testing.assert_close(grad.sum(1), torch.zeros(4, dtype=torch.float64))

    def test_class_axis_and_half_precision(self, path: str) -> None:
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(6))
        y = torch.tensor([0, 1, 2])
        loss, grad = sgt.cross_entropy_and_grad(x.to(torch.bfloat16), y, axis=0)
        assert loss.dtype == grad.dtype == torch.bfloat16
        want_loss, want_grad = sgt.cross_entropy_and_grad(x.to(torch.bfloat16).float().T, y)
        torch.testing.assert_close(loss.float(), want_loss, atol=1e-2, rtol=1e-2)
        torch.testing.assert_close(grad.float(), want_grad.T, atol=1e-2, rtol=1e-2)

    def test_cpu_tensors_reach_the_kernel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from softgrad.kernels import _dispatch

        k = kernels.load()
        if k is None:
            pytest.skip("numba is not installed")
        seen: list[str] = []
        for name in ("cross_entropy_rows", "cross_entropy_rows_serial"):
            original = getattr(k, name)

            def spy(*args: Any, _f: Any = original, _n: str = name) -> Any:
                seen.append(_n)
                return _f(*args)

            monkeypatch.setattr(k, name, spy)
        x = _x((64, 10)).detach().float()
        y = torch.arange(64) % 10
        with kernels.policy(min_size=0):
            loss, grad = sgt.cross_entropy_and_grad(x, y)
            assert seen == ["cross_entropy_rows_serial"]
            want_loss, want_grad = _dispatch.cross_entropy_and_grad(x.numpy(), y.numpy())
        np.testing.assert_array_equal(loss.numpy(), want_loss)
        np.testing.assert_array_equal(grad.numpy(), want_grad)


def _long_rows(fn: Callable[[Any], Any], x: Any) -> Any:
    """``fn(x)`` with rows longer than the kernels' chunk (log_softmax then keeps log S)."""
    with kernels.policy(chunk=2):
        return fn(x)


class TestEagerPath:
    """Outside torch.compile, CPU kernel tensors take plain autograd.Functions (less
    per-call dispatch); other tensors, and compiled code, take the custom operators."""

    @pytest.mark.parametrize(
        ("fn", "eager_name"),
        [
            (lambda x: sgt.softmax(x), "SoftgradSoftmaxBackward"),
            (lambda x: sgt.log_softmax(x), "SoftgradLogSoftmaxAndSBackward"),
            (lambda x: _long_rows(sgt.log_softmax, x), "SoftgradLogSoftmaxBackward"),
            (
                lambda x: sgt.cross_entropy(x, torch.tensor([0, 1, 4])),
                "SoftgradCrossEntropyBackward",
            ),
        ],
        ids=["softmax", "log_softmax", "log_softmax-long-rows", "cross_entropy"],
    )
    def test_which_path(self, fn: Callable[[Any], Any], eager_name: str) -> None:
        x = _x()
        assert fn(x).grad_fn.name() == eager_name
        with kernels.disabled():
            assert fn(x).grad_fn.name() != eager_name

    def test_second_derivatives_match_the_operators(self) -> None:
        # create_graph backward of the eager Functions = that of the operators (Hessian rows)
        x = _x((4, 6))
        v = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        y = torch.tensor([0, 5, 2, 2])
        losses = [
            lambda z: (sgt.softmax(z) * v).sum() ** 2,
            lambda z: (sgt.log_softmax(z) * v).sum() ** 2,
            lambda z: (_long_rows(sgt.log_softmax, z) * v).sum() ** 2,
            lambda z: sgt.cross_entropy(z, y) * (z * v).sum(),
        ]
        for loss in losses:
            hv = []
            for ctx in (kernels.policy(min_size=0), kernels.disabled()):
                with ctx:
                    (g,) = torch.autograd.grad(loss(x), x, create_graph=True)
                    (h,) = torch.autograd.grad((g * v).sum(), x)
                hv.append(h)
            torch.testing.assert_close(hv[0], hv[1])
