r"""JAX version of the blocked linear cross-entropy primitive: ``custom_vjp`` + ``lax`` loops.

:func:`linear_lse` returns, per row of ``h``, :math:`\mathrm{lse}_i`,
:math:`z_{iy_i}` and :math:`\sum_c w_c z_{ic}` of the logits
:math:`z = \operatorname{cap}(hW^\top + b)` (see ``softgrad._linear``) with a
``jax.custom_vjp`` whose backward is the blocked gradient pass; neither
direction holds more than one ``block_rows × block_vocab`` block of logits.

Row blocks go through ``lax.map`` (forward) or ``lax.scan`` carrying
:math:`\partial W, \partial b` (backward); the vocabulary blocks of a row
block through ``lax.scan`` over ``lax.dynamic_slice`` windows of ``W`` (no
copy, no padding). A shape that is not a multiple of the block size ends with
one smaller block, handled by the same code with static slices. The block math
is the Array API reference's (``softgrad._agnostic._linear``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import jax
import jax.numpy as jnp
from jax import lax

from softgrad._agnostic import _linear as _ref

__all__ = ["linear_lse", "linear_lse_backward"]

Array = Any


def _full_and_tail(n: int, block: int) -> tuple[int, int]:
    """(number of full blocks, size of the last partial block)."""
    return n // block, n % block


def _logits(hb: Array, wk: Array, bk: Array | None, softcap: float | None) -> Array:
    u = hb @ wk.T
    return u if bk is None else u + bk[None, :]


def _vocab_blocks(
    weight: Array,
    bias: Array | None,
    cw: Array | None,
    block: int,
    step: Callable[..., Any],
    carry: Any,
) -> Any:
    """Fold ``step(carry, k0, W_k, b_k, w_k)`` over the vocabulary blocks (scan, then the tail)."""
    k = weight.shape[0]
    full, tail = _full_and_tail(k, block)

    def window(a: Array | None, k0: Any, size: int) -> Array | None:
        return None if a is None else lax.dynamic_slice_in_dim(a, k0, size, axis=0)

    def body(c: Any, i: Any) -> tuple[Any, None]:
        k0 = i * block
        return step(
            c, k0, window(weight, k0, block), window(bias, k0, block), window(cw, k0, block)
        ), None

    if full:
        carry, _ = lax.scan(body, carry, jnp.arange(full))
    if tail:
        k0 = full * block
        carry = step(
            carry,
            k0,
            weight[k0:],
            None if bias is None else bias[k0:],
            None if cw is None else cw[k0:],
        )
    return carry


def _lse_rows(
    hb: Array,
    weight: Array,
    bias: Array | None,
    cw: Array | None,
    softcap: float | None,
    smoothing: bool,
    bv: int,
) -> tuple[Array, Array]:
    def step(c: Any, k0: Any, wk: Array, bk: Array | None, wck: Array | None) -> Any:
        m, s, wz = c
        z = _ref.capped(jnp, _logits(hb, wk, bk, softcap), softcap)
        m, s = _ref.merge_stats(jnp, m, s, *_ref.block_stats(jnp, z))
        if smoothing:
            wz = wz + (jnp.sum(z, axis=1) if wck is None else z @ wck)
        return m, s, wz

    r = hb.shape[0]
    start = (
        jnp.full((r,), -jnp.inf, hb.dtype),
        jnp.zeros((r,), hb.dtype),
        jnp.zeros((r,), hb.dtype),
    )
    m, s, wz = _vocab_blocks(weight, bias, cw, bv, step, start)
    return m + jnp.log(s), wz


def _forward(operands: _ref.LinearOperands, options: _ref.LseOptions) -> tuple[Array, Array, Array]:
    h, weight, bias, y = operands
    cw, softcap, smoothing = options["class_weight"], options["softcap"], options["smoothing"]
    br, bv = options["block_rows"], options["block_vocab"]
    n = h.shape[0]
    full, tail = _full_and_tail(n, br)
    lse_parts, wz_parts = [], []
    if full:
        lse, wz = lax.map(
            lambda i: _lse_rows(
                lax.dynamic_slice_in_dim(h, i * br, br), weight, bias, cw, softcap, smoothing, bv
            ),
            jnp.arange(full),
        )
        lse_parts.append(lse.reshape(-1))
        wz_parts.append(wz.reshape(-1))
    if tail:
        lse, wz = _lse_rows(h[full * br :], weight, bias, cw, softcap, smoothing, bv)
        lse_parts.append(lse)
        wz_parts.append(wz)
    empty = jnp.zeros((0,), h.dtype)
    lse = jnp.concatenate(lse_parts) if lse_parts else empty
    wz = jnp.concatenate(wz_parts) if wz_parts else empty
    zy = _ref.target_logit(jnp, h, weight, bias, y, softcap)
    return lse, zy, wz


def linear_lse_backward(
    operands: _ref.LinearOperands,
    lse: Array,
    coef: _ref.Coefficients,
    **options: Unpack[_ref.BackwardOptions],
) -> tuple[Array, Array, Array | None]:
    r"""The blocked gradient pass for :math:`\partial L/\partial z = \alpha S - \beta e_y - \gamma w`."""
    h, weight, bias, y = operands
    n = h.shape[0]
    softcap, class_weight = options["softcap"], options["class_weight"]
    br, bv = options["block_rows"], options["block_vocab"]

    def row_block(
        hb: Array, yb: Array, lb: Array, cb: tuple[Array, ...], dw: Array, db: Array
    ) -> Any:
        def step(c: Any, k0: Any, wk: Array, bk: Array | None, wck: Array | None) -> Any:
            dhb, dw, db = c
            u = _logits(hb, wk, bk, softcap)
            g = _ref.block_grad(jnp, u, lb, cb, wck, yb - k0, softcap)
            size = wk.shape[0]
            dwk = lax.dynamic_slice_in_dim(dw, k0, size) + g.T @ hb
            dbk = lax.dynamic_slice_in_dim(db, k0, size) + jnp.sum(g, axis=0)
            return (
                dhb + g @ wk,
                lax.dynamic_update_slice_in_dim(dw, dwk, k0, 0),
                lax.dynamic_update_slice_in_dim(db, dbk, k0, 0),
            )

        return _vocab_blocks(weight, bias, class_weight, bv, step, (jnp.zeros_like(hb), dw, db))

    dw = jnp.zeros(weight.shape, h.dtype)
    db = jnp.zeros((weight.shape[0],), h.dtype)
    full, tail = _full_and_tail(n, br)
    parts = []
    if full:

        def body(c: Any, i: Any) -> tuple[Any, Array]:
            r0 = i * br

            def rows(a: Array) -> Array:
                return lax.dynamic_slice_in_dim(a, r0, br)

            dhb, dw, db = row_block(rows(h), rows(y), rows(lse), tuple(rows(a) for a in coef), *c)
            return (dw, db), dhb

        (dw, db), dh = lax.scan(body, (dw, db), jnp.arange(full))
        parts.append(dh.reshape(full * br, h.shape[1]))
    if tail:
        r0 = full * br
        dhb, dw, db = row_block(h[r0:], y[r0:], lse[r0:], tuple(a[r0:] for a in coef), dw, db)
        parts.append(dhb)
    dh = jnp.concatenate(parts) if parts else jnp.zeros_like(h)
    return dh, dw, (db if bias is not None else None)


def linear_lse(
    operands: _ref.LinearOperands, **options: Unpack[_ref.LseOptions]
) -> tuple[Array, Array, Array]:
    """The differentiable primitive: ``(lse, z_y, Σ w z)`` per row of ``h`` (N, D).

    Differentiable in ``h``, ``weight`` and ``bias``; ``y`` and
    ``class_weight`` are constants of the rule.
    """
    y = operands.y

    @jax.custom_vjp
    def primitive(h: Array, weight: Array, bias: Array | None) -> tuple[Array, Array, Array]:
        return _forward(_ref.LinearOperands(h, weight, bias, y), options)

    def fwd(h: Array, weight: Array, bias: Array | None) -> tuple[Any, Any]:
        out = _forward(_ref.LinearOperands(h, weight, bias, y), options)
        return out, (h, weight, bias, out[0])

    def bwd(res: Any, g: tuple[Array, Array, Array]) -> tuple[Array, Array, Array | None]:
        h, weight, bias, lse = res
        g_lse, g_zy, g_wz = g
        return linear_lse_backward(
            _ref.LinearOperands(h, weight, bias, y),
            lse,
            (g_lse, -g_zy, -g_wz),
            **_ref.backward_options(options),
        )

    primitive.defvjp(fwd, bwd)
    out: tuple[Array, Array, Array] = primitive(operands.h, operands.weight, operands.bias)
    return out
