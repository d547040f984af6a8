"""PyTorch and JAX autodiff through softgrad's functions, jit and compile."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

X = np.array([[0.5, -1.0, 2.0, 0.1], [3.0, 3.0, -2.0, 0.0]])


class TestTorch:
    torch = pytest.importorskip("torch")

    def test_jacrev_equals_closed_form(self) -> None:
        torch = self.torch
        x = torch.tensor(X[0])
        for f, jac in [
            (sg.softmax, sg.softmax_jacobian),
            (sg.log_softmax, sg.log_softmax_jacobian),
        ]:
            auto = torch.func.jacrev(f)(x)
            torch.testing.assert_close(auto, jac(x), rtol=1e-13, atol=1e-15)

    def test_jvp_vjp_equal_closed_form(self) -> None:
        torch = self.torch
        x, v = torch.tensor(X), torch.tensor(np.random.default_rng(0).normal(size=X.shape))
        s = sg.softmax(x)
        _, jv = torch.func.jvp(sg.softmax, (x,), (v,))
        torch.testing.assert_close(jv, sg.softmax_jvp(s, v))
        _, vjp_fn = torch.func.vjp(sg.log_softmax, x)
        torch.testing.assert_close(vjp_fn(v)[0], sg.log_softmax_vjp(s, v))

    def test_hessian_equals_closed_form(self) -> None:
        torch = self.torch
        x = torch.tensor(X[0])
        auto = torch.func.jacrev(torch.func.jacrev(sg.softmax))(x)
        torch.testing.assert_close(auto, sg.softmax_hessian(x), rtol=1e-12, atol=1e-15)

    def test_masked_gradient_is_exactly_zero(self) -> None:
        """jax#17117 / jax#19490 in PyTorch terms: a huge masked logit must not leak NaN."""
        torch = self.torch
        x = torch.tensor([36.0, 10000.0, 1.0], requires_grad=True)
        mask = torch.tensor([True, False, True])
        for f in (sg.softmax, sg.log_softmax):
            x.grad = None
            (f(x, where=mask) * torch.tensor([1.0, 5.0, -2.0])).sum().backward()
            assert torch.isfinite(x.grad).all()
            assert x.grad[1] == 0.0
        x.grad = None
        sg.logsumexp(x, where=mask).backward()
        assert x.grad[1] == 0.0

    def test_fully_masked_row_gradient(self) -> None:
        torch = self.torch
        x = torch.tensor([[1.0, 2.0], [1e4, -1e4]], requires_grad=True)
        mask = torch.tensor([[True, True], [False, False]])
        sg.softmax(x, where=mask).sum().backward()
        assert torch.isfinite(x.grad).all()
        assert (x.grad[1] == 0).all()

    def test_cross_entropy_double_backward(self) -> None:
        torch = self.torch
        z = torch.tensor(X, requires_grad=True)
        y = torch.tensor([2, 0])
        (g,) = torch.autograd.grad(sg.cross_entropy(z, y), z, create_graph=True)
        v = torch.ones_like(z).cumsum(-1)
        (hv,) = torch.autograd.grad((g * v).sum(), z)
        torch.testing.assert_close(g, sg.cross_entropy_and_grad(z.detach(), y)[1])
        torch.testing.assert_close(hv, sg.cross_entropy_hvp(z.detach(), y, v))

    def test_torch_compile(self) -> None:
        torch = self.torch
        x = torch.tensor(X)
        compiled = torch.compile(sg.softmax, backend="aot_eager")
        torch.testing.assert_close(compiled(x), sg.softmax(x))
        ce = torch.compile(lambda z, y: sg.cross_entropy_and_grad(z, y), backend="aot_eager")
        loss, grad = ce(x, torch.tensor([1, 3]))
        ref = sg.cross_entropy_and_grad(x, torch.tensor([1, 3]))
        torch.testing.assert_close(loss, ref[0])
        torch.testing.assert_close(grad, ref[1])


class TestJax:
    jax = pytest.importorskip("jax")

    def test_jacrev_equals_closed_form(self) -> None:
        jax = self.jax
        x = jax.numpy.asarray(X[1])
        np.testing.assert_allclose(jax.jacrev(sg.softmax)(x), sg.softmax_jacobian(x), atol=1e-15)
        np.testing.assert_allclose(
            jax.jacfwd(sg.log_softmax)(x), sg.log_softmax_jacobian(x), atol=1e-15
        )
        np.testing.assert_allclose(jax.hessian(sg.softmax)(x), sg.softmax_hessian(x), atol=1e-15)

    def test_jit(self) -> None:
        jax = self.jax
        x = jax.numpy.asarray(X)
        for f in (sg.softmax, sg.log_softmax, sg.logsumexp):
            np.testing.assert_allclose(jax.jit(f)(x), f(X), rtol=1e-14)
        y = jax.numpy.asarray([1, 2])
        loss, grad = jax.jit(sg.cross_entropy_and_grad)(x, y)
        ref_loss, ref_grad = sg.cross_entropy_and_grad(X, np.array([1, 2]))
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-14)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-13)

    def test_grad_of_cross_entropy_is_closed_form(self) -> None:
        jax = self.jax
        x, y = jax.numpy.asarray(X), jax.numpy.asarray([1, 2])
        auto = jax.grad(lambda z: sg.cross_entropy(z, y, label_smoothing=0.2))(x)
        np.testing.assert_allclose(
            auto, sg.cross_entropy_and_grad(X, np.array([1, 2]), label_smoothing=0.2)[1]
        )

    def test_masked_gradient_is_exactly_zero(self) -> None:
        """The regression of jax#19490: masked 10000 next to 36 must give gradient 0, not NaN."""
        jax = self.jax
        jnp = jax.numpy
        x = jnp.asarray([36.0, 10000.0])
        mask = jnp.asarray([True, False])
        for f in (sg.softmax, sg.log_softmax):
            g = jax.grad(lambda v, f=f: f(v, where=mask)[0])(x)
            assert bool(jnp.all(jnp.isfinite(g)))
            assert float(g[1]) == 0.0
        g = jax.grad(lambda v: sg.logsumexp(v, where=mask))(x)
        np.testing.assert_array_equal(g, [1.0, 0.0])
