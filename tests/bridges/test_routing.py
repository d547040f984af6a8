"""The public functions send JAX arrays to softgrad.jax and torch tensors to softgrad.torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import softgrad as sg


def _primitives(jaxpr: Any) -> set[str]:
    names: set[str] = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for v in eqn.params.values():
            inner = getattr(v, "jaxpr", v)
            if hasattr(inner, "eqns"):
                names |= _primitives(inner)
    return names


class TestJax:
    jax = pytest.importorskip("jax")

    @pytest.mark.parametrize(
        "public",
        [sg.softmax, sg.log_softmax, lambda v: sg.logsumexp(v, keepdims=True)],
        ids=["softmax", "log_softmax", "logsumexp"],
    )
    def test_rows_route_to_the_custom_jvp(self, public: Any) -> None:
        jax, jnp = self.jax, self.jax.numpy
        x = jnp.asarray([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
        out = public(x)
        assert isinstance(out, jax.Array)
        # the bridge's closed-form rule, not autodiff through the Array API reference
        jaxpr = jax.make_jaxpr(jax.grad(lambda v: public(v).sum()))(x)
        assert "custom_jvp_call" in _primitives(jaxpr.jaxpr)
        np.testing.assert_allclose(np.asarray(out), public(np.asarray(x)), rtol=1e-12)

    def test_cross_entropy_routes(self) -> None:
        jax, jnp = self.jax, self.jax.numpy
        z, y = jnp.asarray([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0]]), jnp.asarray([2, -100])
        jaxpr = jax.make_jaxpr(jax.grad(lambda v: sg.cross_entropy(v, y, label_smoothing=0.1)))(z)
        assert "custom_jvp_call" in _primitives(jaxpr.jaxpr)
        loss, grad = sg.cross_entropy_and_grad(z, y, label_smoothing=0.1)
        assert isinstance(grad, jax.Array)
        want_loss, want_grad = sg.cross_entropy_and_grad(
            np.asarray(z), np.asarray(y), label_smoothing=0.1
        )
        np.testing.assert_allclose(float(loss), want_loss, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-12, atol=1e-15)

    def test_masked_gradient_through_the_public_function(self) -> None:
        jax, jnp = self.jax, self.jax.numpy
        m = jnp.asarray([True, False, True])
        g = jax.grad(lambda v: sg.softmax(v, where=m)[0])(jnp.asarray([1.0, jnp.inf, 2.0]))
        assert float(g[1]) == 0.0
        assert bool(jnp.all(jnp.isfinite(g)))

    def test_mixed_libraries_are_refused_by_name(self) -> None:
        jnp = self.jax.numpy
        with pytest.raises(TypeError, match=r"where is a numpy array but x is a jax array"):
            sg.softmax(jnp.zeros(3), where=np.array([True, False, True]))
        with pytest.raises(TypeError, match=r"target is a numpy array but logits is a jax array"):
            sg.cross_entropy(jnp.zeros((2, 3)), np.array([0, 1]))


class TestTorch:
    torch = pytest.importorskip("torch")

    def test_cross_entropy_routes_to_the_bridge_op(self) -> None:
        torch = self.torch
        z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        y = torch.tensor([0, 2, -100, 1])
        loss = sg.cross_entropy(z, y, label_smoothing=0.2)
        assert "softgrad" in loss.grad_fn.name().lower()  # the bridge's op, not the reference
        want = torch.nn.functional.cross_entropy(z, y, label_smoothing=0.2)
        torch.testing.assert_close(loss, want)
        (g,) = torch.autograd.grad(loss, z)
        (g_want,) = torch.autograd.grad(want, z)
        torch.testing.assert_close(g, g_want)

    def test_mixed_libraries_are_refused_by_name(self) -> None:
        torch = self.torch
        with pytest.raises(TypeError, match=r"where is a numpy array but x is a torch array"):
            sg.softmax(torch.zeros(3), where=np.array([True, False, True]))
        with pytest.raises(TypeError, match=r"weight is a numpy array but logits is a torch"):
            sg.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), weight=np.ones(3))

    def test_cross_entropy_and_grad_of_tensors_equals_numpy(self) -> None:
        torch = self.torch
        z = torch.randn(3, 4, dtype=torch.float64)
        y = torch.tensor([0, 3, 1])
        loss, grad = sg.cross_entropy_and_grad(z, y)
        want_loss, want_grad = sg.cross_entropy_and_grad(z.numpy(), y.numpy())
        np.testing.assert_allclose(float(loss), want_loss, rtol=1e-12)
        np.testing.assert_allclose(grad.numpy(), want_grad, rtol=1e-12)
        from softgrad.torch import cross_entropy_and_grad as bridge

        bridged_loss, bridged_grad = bridge(z, y)
        np.testing.assert_allclose(float(bridged_loss), want_loss, rtol=1e-12)
        np.testing.assert_allclose(bridged_grad.numpy(), want_grad, rtol=1e-12)

    def test_cross_entropy_and_grad_routes_to_the_bridge(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import softgrad.torch as sgt

        torch = self.torch
        calls: list[int] = []
        original = sgt.cross_entropy_and_grad

        def spy(*args: Any, **kw: Any) -> Any:
            calls.append(1)
            return original(*args, **kw)

        monkeypatch.setattr(sgt, "cross_entropy_and_grad", spy)
        z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        loss, grad = sg.cross_entropy_and_grad(z, torch.tensor([0, 3, 1]), label_smoothing=0.1)
        assert calls == [1]
        assert not loss.requires_grad  # the bridge records no graph
        assert not grad.requires_grad


def test_numpy_stays_numpy() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    assert type(sg.softmax(x)) is np.ndarray
    assert type(sg.cross_entropy_and_grad(x, np.array([0]))[1]) is np.ndarray
