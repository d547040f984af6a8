"""linear_cross_entropy on JAX arrays: the custom rule against materialised JAX, under jit and grad."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

jax = pytest.importorskip("jax")
jnp = jax.numpy

N, D, K = 29, 6, 19  # not multiples of the 8 x 5 blocks
BLOCKS = {"block_rows": 8, "block_vocab": 5}
# (bias, class weights, label smoothing, z-loss, softcap, reduction): each option on and off
OPTIONS = [
    (False, False, 0.0, 0.0, None, "mean"),
    (True, False, 0.2, 0.0, None, "none"),
    (False, True, 0.0, 1e-2, None, "sum"),
    (True, True, 0.2, 1e-2, 2.0, "mean"),
    (False, True, 0.2, 0.0, 2.0, "none"),
    (True, False, 0.0, 1e-2, 2.0, "sum"),
    (True, True, 0.0, 0.0, None, "mean"),
    (False, False, 0.2, 1e-2, 2.0, "none"),
]


def _data():
    rng = np.random.default_rng(3)
    h = rng.normal(size=(N, D)).astype(np.float32)
    w = rng.normal(size=(K, D)).astype(np.float32)
    b = rng.normal(size=K).astype(np.float32)
    cw = rng.uniform(0.2, 2.0, size=K).astype(np.float32)
    y = rng.integers(0, K, size=N)
    y[[2, 9]] = -100
    y[4] = K - 1
    return h, w, b, cw, y


def _materialised(h, w, b, y, cw, eps, zl, cap, red):
    """F.cross_entropy's definition on the full N x K logits, written in jax.numpy."""
    z = h @ w.T + (0.0 if b is None else b)
    z = z if cap is None else cap * jnp.tanh(z / cap)
    counted = y != -100
    yc = jnp.where(counted, y, 0)
    wc = jnp.ones(K, z.dtype) if cw is None else cw
    logp = jax.nn.log_softmax(z, axis=1)
    wy = jnp.where(counted, wc[yc], 0.0)
    nll = -wy * jnp.take_along_axis(logp, yc[:, None], axis=1)[:, 0]
    smooth = jnp.where(counted, -(logp @ wc) / K, 0.0)
    ce = (1 - eps) * nll + eps * smooth
    zterm = jnp.where(counted, zl * jax.nn.logsumexp(z, axis=1) ** 2, 0.0)
    if red == "none":
        return ce + zterm
    if red == "sum":
        return jnp.sum(ce + zterm)
    return jnp.sum(ce) / jnp.sum(wy) + jnp.sum(zterm) / jnp.sum(counted)


def _vjp(fn, args, upstream):
    out, pullback = jax.vjp(fn, *args)
    return out, pullback(jnp.asarray(upstream, out.dtype))


@pytest.mark.parametrize(("bias", "weights", "eps", "zl", "cap", "red"), OPTIONS)
def test_values_and_gradients_match_materialised_jax(bias, weights, eps, zl, cap, red):
    h, w, b, cw, y = _data()
    b = jnp.asarray(b) if bias else None
    cw = jnp.asarray(cw) if weights else None
    yj = jnp.asarray(y)
    upstream = np.linspace(-1.0, 2.0, N) if red == "none" else np.array(1.3)
    opts = {"class_weight": cw, "label_smoothing": eps, "z_loss": zl, "softcap": cap}

    def ours(h, w, b):
        return sg.linear_cross_entropy(h, w, yj, bias=b, reduction=red, **opts, **BLOCKS)

    def ref(h, w, b):
        return _materialised(h, w, b, yj, cw, eps, zl, cap, red)

    args = (jnp.asarray(h), jnp.asarray(w), b)
    loss, grads = _vjp(ours, args, upstream)
    loss_ref, grads_ref = _vjp(ref, args, upstream)
    np.testing.assert_allclose(loss, loss_ref, rtol=2e-5, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=2e-6)


def test_jit_and_grad_of_the_public_function_use_the_blocked_rule():
    h, w, b, _, y = _data()
    yj = jnp.asarray(y)

    def loss(h, w, b):
        return sg.linear_cross_entropy(h, w, yj, bias=b, z_loss=1e-3, **BLOCKS)

    args = (jnp.asarray(h), jnp.asarray(w), jnp.asarray(b))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    expected = jax.grad(lambda *a: _materialised(*a, yj, None, 0.0, 1e-3, None, "mean"), (0, 1, 2))
    for g, g_ref in zip(grad(*args), expected(*args), strict=True):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(jax.jit(loss)(*args), loss(*args), rtol=1e-6)
    forward = jax.make_jaxpr(loss)(*args)
    assert "custom_vjp" in str(forward), "the public path bypassed softgrad.jax's custom rule"
    jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(*args)
    shapes = {
        tuple(v.aval.shape)
        for eqn in _equations(jaxpr.jaxpr)
        for v in eqn.outvars
        if hasattr(v.aval, "shape")
    }
    assert (N, K) not in shapes, "an N x K array appears in the traced gradient"
    assert (8, 5) in shapes  # the blocks do


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it (scan, map, custom rules)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_accumulates_in_float32(dtype):
    h, w, _, _, y = _data()
    lo = jnp.dtype(dtype)
    h16, w16 = jnp.asarray(h, lo), jnp.asarray(w, lo)
    yj = jnp.asarray(y)

    def loss(h, w):
        return sg.linear_cross_entropy(h, w, yj, **BLOCKS)

    value, (gh, gw) = jax.value_and_grad(loss, argnums=(0, 1))(h16, w16)
    assert value.dtype == lo
    assert gh.dtype == lo
    assert gw.dtype == lo
    # the same computation on the float32 upcast, rounded once at the end
    v32, (gh32, gw32) = jax.value_and_grad(loss, argnums=(0, 1))(
        h16.astype(jnp.float32), w16.astype(jnp.float32)
    )
    assert value == v32.astype(lo)
    np.testing.assert_array_equal(gh, gh32.astype(lo))
    np.testing.assert_array_equal(gw, gw32.astype(lo))
