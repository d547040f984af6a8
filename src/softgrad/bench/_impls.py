"""What the ops suite times: each library's version of an operation, and its inputs.

:func:`implementations` returns zero-argument callables, one per library
(``softgrad``, ``softgrad (Array API)``, ``numpy``, ``scipy``, ``torch``,
``jax``: the ones installed), all computing the same operation on the same
arrays, so a suite times them alike and compares their results.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["OPS", "implementations", "inputs", "optional", "result_array"]

OPS = ("softmax", "log_softmax", "softmax_vjp", "cross_entropy")
"""The operations timed: the forward, its log, the softmax VJP, and the fused
cross-entropy loss with its gradient (integer labels, mean)."""


def optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def implementations(op: str, x: np.ndarray, aux: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables computing ``op`` on ``x`` (and ``aux``: g or labels)."""
    import softgrad
    from softgrad import kernels

    impls: dict[str, Callable[[], Any]] = {}
    axis = -1
    if op == "softmax":
        impls["softgrad"] = lambda: softgrad.softmax(x)
    elif op == "log_softmax":
        impls["softgrad"] = lambda: softgrad.log_softmax(x)
    elif op == "softmax_vjp":
        s = softgrad.softmax(x)
        impls["softgrad"] = lambda: softgrad.softmax_vjp(s, aux)
    else:
        impls["softgrad"] = lambda: softgrad.cross_entropy_and_grad(x, aux)

    def reference(f: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with kernels.disabled():
                return f()

        return call

    impls["softgrad (Array API)"] = reference(impls["softgrad"])

    def np_softmax(v: np.ndarray) -> Any:
        e = np.exp(v - v.max(axis, keepdims=True))
        e /= e.sum(axis, keepdims=True)
        return e

    if op == "softmax":
        impls["numpy"] = lambda: np_softmax(x)
    elif op == "log_softmax":

        def np_log_softmax() -> Any:
            z = x - x.max(axis, keepdims=True)
            return z - np.log(np.exp(z).sum(axis, keepdims=True))

        impls["numpy"] = np_log_softmax
    elif op == "softmax_vjp":
        s_np = np_softmax(x)
        impls["numpy"] = lambda: s_np * (aux - (aux * s_np).sum(axis, keepdims=True))
    else:

        def np_ce() -> tuple[Any, np.ndarray]:
            m = x.max(axis, keepdims=True)
            e = np.exp(x - m)
            tot = e.sum(axis, keepdims=True)
            rows = np.arange(x.shape[0])
            loss = np.mean(np.log(tot[:, 0]) + m[:, 0] - x[rows, aux])
            e /= tot
            e[rows, aux] -= 1
            e /= x.shape[0]
            return loss, e

        impls["numpy"] = np_ce

    special = optional("scipy.special")
    if special is not None and op in ("softmax", "log_softmax"):
        f = special.softmax if op == "softmax" else special.log_softmax
        impls["scipy"] = lambda: f(x, axis=axis)

    torch = optional("torch")
    if torch is not None:
        xt = torch.from_numpy(x)
        if op == "softmax":
            impls["torch"] = lambda: torch.softmax(xt, axis)
        elif op == "log_softmax":
            impls["torch"] = lambda: torch.log_softmax(xt, axis)
        elif op == "softmax_vjp":
            st = torch.softmax(xt, axis)
            gt = torch.from_numpy(aux)
            impls["torch"] = lambda: torch._softmax_backward_data(gt, st, axis, st.dtype)
        else:
            yt = torch.from_numpy(aux)
            leaf = xt.clone().requires_grad_()

            def torch_ce() -> Any:
                leaf.grad = None
                loss = torch.nn.functional.cross_entropy(leaf, yt)
                loss.backward()
                return loss, leaf.grad

            impls["torch"] = torch_ce

    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        xj = jnp.asarray(x)
        if op == "softmax":
            fj = jax.jit(jax.nn.softmax)
            impls["jax"] = lambda: fj(xj).block_until_ready()
        elif op == "log_softmax":
            fj = jax.jit(jax.nn.log_softmax)
            impls["jax"] = lambda: fj(xj).block_until_ready()
        elif op == "softmax_vjp":
            sj = jax.nn.softmax(xj)
            gj = jnp.asarray(aux)
            fj = jax.jit(lambda s, g: s * (g - (g * s).sum(-1, keepdims=True)))
            impls["jax"] = lambda: fj(sj, gj).block_until_ready()
        else:
            yj = jnp.asarray(aux)

            def loss(z: Any) -> Any:
                lp = jax.nn.log_softmax(z)
                return -jnp.mean(jnp.take_along_axis(lp, yj[:, None], axis=-1))

            fj = jax.jit(jax.value_and_grad(loss))
            impls["jax"] = lambda: jax.block_until_ready(fj(xj))
    return impls


def result_array(res: Any) -> np.ndarray:
    """The array to compare across implementations (the gradient for cross-entropy)."""
    if isinstance(res, tuple):
        res = res[1]
    if hasattr(res, "detach"):
        res = res.detach().numpy()
    return np.asarray(res)


def inputs(op: str, shape: tuple[int, ...], dtype: Any, seed: int = 0) -> tuple[np.ndarray, Any]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if op == "cross_entropy":
        return x, rng.integers(0, shape[-1], shape[0])
    return x, rng.standard_normal(shape).astype(dtype)
