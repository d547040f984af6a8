r"""NumPy kernel of ``linear_cross_entropy``: BLAS for the block products, numba for the rest.

Same two passes as the reference (``softgrad._agnostic._linear``), on one
preallocated buffer of ``block_rows × block_vocab`` logits:

* the block product :math:`u = h_b W_k^\top` goes to BLAS through
  ``np.matmul(..., out=buffer)`` (threaded: every core busy);
* the elementwise work on that block is one numba loop per row, run with
  ``prange`` over the rows: the softcap, the online max/sum rescaling and the
  smoothing term in :func:`lse_block`; :math:`S`, :math:`G` and the softcap's
  derivative, written over the logits in place, in :func:`grad_block`;
* :math:`G` then goes back to BLAS: ``dh_b += G W_k`` and ``dW_k += Gᵀ h_b``
  (``np.matmul(..., out=)`` into a second buffer, then an in-place add).

Per-row accumulators (max, sum, smoothing term) are float64 whatever the
input dtype; :math:`e^{z - m}` uses :func:`~softgrad.kernels._exp.fast_exp`
(arguments are never positive). The row-block loop is outermost in both passes,
so a Dask version can call these functions on each block of rows and sum the
``dW`` of the blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Unpack

import numpy as np
from numba import njit, prange

from softgrad._agnostic._linear import (
    BackwardOptions,
    LinearOperands,
    LseOptions,
    backward_options,
)
from softgrad.kernels._exp import fast_exp

__all__ = ["grad_block", "linear_backward", "linear_fused", "linear_lse", "lse_block"]

_FM = {"contract", "reassoc", "nsz"}


@njit(parallel=True, fastmath=_FM, cache=True)
def lse_block(u, m, s, wz, w, has_w, smoothing, cap):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Cap ``u`` in place (``cap > 0``) and merge its rows into (m, s) and wz."""
    one = u.dtype.type(1.0)
    for i in prange(u.shape[0]):
        row = u[i]
        mx = -np.inf
        if cap > 0:
            c = u.dtype.type(cap)
            for j in range(row.shape[0]):
                row[j] = c * math.tanh(row[j] / c)
        for j in range(row.shape[0]):
            mx = max(mx, row[j])
        m_new = max(m[i], mx)
        mt = u.dtype.type(m_new)
        acc = u.dtype.type(0.0)
        for j in range(row.shape[0]):
            acc += fast_exp(row[j] - mt)
        s[i] = s[i] * math.exp(m[i] - m_new) + acc
        m[i] = m_new
        if smoothing:
            t = u.dtype.type(0.0)
            for j in range(row.shape[0]):
                t += row[j] * (w[j] if has_w else one)
            wz[i] += t


@njit(parallel=True, fastmath={"contract"}, cache=True)
def grad_block(u, lse, alpha, beta, gamma, w, has_w, y_local, cap, is_capped):  # type: ignore[no-untyped-def]  # pragma: no cover
    r"""Overwrite ``u`` with :math:`(\alpha S - \beta e_y - \gamma w) \odot (1 - (z/c)^2)`.

    ``u`` holds the logits before the cap, or after it when ``is_capped``
    (:func:`lse_block` caps in place: the fused order's chunk).
    """
    one = u.dtype.type(1.0)
    for i in prange(u.shape[0]):
        row = u[i]
        a = u.dtype.type(alpha[i])
        gm = u.dtype.type(gamma[i])
        lt = u.dtype.type(lse[i])
        yl = y_local[i]
        hit = 0 <= yl < row.shape[0]
        slope_y = one
        if cap > 0:
            c = u.dtype.type(cap)
            if hit:
                t = row[yl] / c if is_capped else math.tanh(row[yl] / c)
                slope_y = one - t * t
            for j in range(row.shape[0]):
                t = row[j] / c if is_capped else math.tanh(row[j] / c)
                g = a * fast_exp(c * t - lt) - gm * (w[j] if has_w else one)
                row[j] = g * (one - t * t)
        else:
            for j in range(row.shape[0]):
                row[j] = a * fast_exp(row[j] - lt) - gm * (w[j] if has_w else one)
        if hit:
            # the target's −β carries the same softcap derivative as the rest
            row[yl] -= u.dtype.type(beta[i]) * slope_y


def _kernel_array(a: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """``a`` as a writeable C-contiguous array (of ``dtype``): the argument types the
    warm-up compiled. numba types a read-only, strided or other-width array apart and
    would compile :func:`lse_block` / :func:`grad_block` again in the caller."""
    return np.require(a, dtype, ["C", "W"])


def _spans(n: int, block: int) -> list[tuple[int, int]]:
    return [(i, min(i + block, n)) for i in range(0, n, block)]


def _product(buf: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` written into the front of the flat buffer ``buf`` (contiguous)."""
    out = buf[: a.shape[0] * b.shape[1]].reshape(a.shape[0], b.shape[1])
    np.matmul(a, b, out=out)
    return out


def linear_lse(
    operands: LinearOperands, **options: Unpack[LseOptions]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As ``softgrad._agnostic._linear.linear_lse``, on NumPy arrays (float32/float64)."""
    h, weight, bias, y = operands
    softcap, class_weight = options["softcap"], options["class_weight"]
    block_rows, block_vocab = options["block_rows"], options["block_vocab"]
    n, k = h.shape[0], weight.shape[0]
    dt = h.dtype
    lse = np.empty(n, dtype=dt)
    wz_all = np.zeros(n, dtype=dt)
    buf = np.empty(min(block_rows, n) * min(block_vocab, k), dtype=dt)
    w = np.ones(1, dtype=dt) if class_weight is None else _kernel_array(class_weight)
    cap = 0.0 if softcap is None else float(softcap)
    for r0, r1 in _spans(n, block_rows):
        hb = h[r0:r1]
        m = np.full(r1 - r0, -np.inf)
        s = np.zeros(r1 - r0)
        wz = np.zeros(r1 - r0)
        for k0, k1 in _spans(k, block_vocab):
            u = _product(buf, hb, weight[k0:k1].T)
            if bias is not None:
                u += bias[k0:k1]
            wk = w[k0:k1] if class_weight is not None else w
            lse_block(u, m, s, wz, wk, class_weight is not None, options["smoothing"], cap)
        with np.errstate(divide="ignore"):
            lse[r0:r1] = m + np.log(s)
        wz_all[r0:r1] = wz
    zy = np.einsum("ij,ij->i", h, weight[np.asarray(y)]) if n else np.zeros(0, dtype=dt)
    if bias is not None:
        zy += bias[y]
    if softcap is not None:
        zy = softcap * np.tanh(zy / softcap)
    return lse, zy.astype(dt, copy=False), wz_all


def linear_backward(
    operands: LinearOperands,
    lse: np.ndarray,
    coef: tuple[np.ndarray, np.ndarray, np.ndarray],
    **options: Unpack[BackwardOptions],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """As ``softgrad._agnostic._linear.linear_backward``, on NumPy arrays."""
    h, weight, bias, y = operands
    softcap, class_weight = options["softcap"], options["class_weight"]
    block_rows, block_vocab = options["block_rows"], options["block_vocab"]
    n, k = h.shape[0], weight.shape[0]
    dt = h.dtype
    dh = np.zeros_like(h)
    dw = np.zeros_like(weight, dtype=dt)
    db = None if bias is None else np.zeros(k, dtype=dt)
    if n == 0 or k == 0:
        return dh, dw, db
    buf = np.empty(min(block_rows, n) * min(block_vocab, k), dtype=dt)
    tmp = np.empty(max(min(block_rows, n), min(block_vocab, k)) * h.shape[1], dtype=dt)
    alpha, beta, gamma = (np.ascontiguousarray(c, dtype=np.float64) for c in coef)
    w = np.ones(1, dtype=dt) if class_weight is None else _kernel_array(class_weight)
    cap = 0.0 if softcap is None else float(softcap)
    for r0, r1 in _spans(n, block_rows):
        hb = h[r0:r1]
        for k0, k1 in _spans(k, block_vocab):
            wk = weight[k0:k1]
            u = _product(buf, hb, wk.T)
            if bias is not None:
                u += bias[k0:k1]
            y_local = np.asarray(y[r0:r1], dtype=np.int64) - k0
            grad_block(
                u,
                lse[r0:r1],
                alpha[r0:r1],
                beta[r0:r1],
                gamma[r0:r1],
                w[k0:k1] if class_weight is not None else w,
                class_weight is not None,
                y_local,
                cap,
                False,
            )
            dh[r0:r1] += _product(tmp, u, wk)
            dw[k0:k1] += _product(tmp, u.T, hb)
            if db is not None:
                db[k0:k1] += u.sum(axis=0)
    return dh, dw, db


def linear_fused(
    operands: LinearOperands,
    coef: Callable[[int, int, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    chunk_rows: int,
    **options: Unpack[LseOptions],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Forward and gradient in one pass (Liger-Kernel's order): each logit computed once.

    For each chunk of ``chunk_rows`` rows, the logits over the *whole*
    vocabulary are formed (one product), reduced to the rows' logsumexp, and
    overwritten with :math:`G` for the coefficients ``coef(r0, r1, lse)``
    returns (known before the pass: the upstream gradient is given), then
    :math:`\partial h = G W`, :math:`\partial W \mathrel{+}= G^\top h`.
    Three block products per chunk instead of the two-pass order's four;
    ``chunk_rows × K`` logits alive instead of one block (``options["block_rows"]``
    is not used; ``options["block_vocab"]`` blocks the ``Gᵀ h`` product).

    Returns
    -------
    lse, zy, wz, dh, dw, db
        As :func:`linear_lse` and :func:`linear_backward` return them.
    """
    h, weight, bias, y = operands
    softcap, class_weight = options["softcap"], options["class_weight"]
    n, k = h.shape[0], weight.shape[0]
    if n == 0 or k == 0:
        lse, zy, wz = linear_lse(operands, **options)
        dh, dw, db = linear_backward(operands, lse, coef(0, n, lse), **backward_options(options))
        return lse, zy, wz, dh, dw, db
    dt = h.dtype
    lse, zy, wz_all = np.empty(n, dtype=dt), np.empty(n, dtype=dt), np.zeros(n, dtype=dt)
    dh = np.empty_like(h, dtype=dt, order="C")
    dw = np.zeros_like(weight, dtype=dt)
    db = None if bias is None else np.zeros(k, dtype=dt)
    rows = min(chunk_rows, n)
    buf = np.empty(rows * k, dtype=dt)
    block_vocab = options["block_vocab"]
    tmp = np.empty(min(block_vocab, k) * h.shape[1], dtype=dt)
    w = np.ones(1, dtype=dt) if class_weight is None else _kernel_array(class_weight)
    cap = 0.0 if softcap is None else float(softcap)
    y = _kernel_array(np.asarray(y), np.int64)
    for r0, r1 in _spans(n, rows):
        hb = h[r0:r1]
        u = _product(buf, hb, weight.T)
        if bias is not None:
            u += bias
        m, s, wz = np.full(r1 - r0, -np.inf), np.zeros(r1 - r0), np.zeros(r1 - r0)
        lse_block(u, m, s, wz, w, class_weight is not None, options["smoothing"], cap)  # caps u
        with np.errstate(divide="ignore"):
            lse[r0:r1] = m + np.log(s)
        wz_all[r0:r1] = wz
        zy[r0:r1] = u[np.arange(r1 - r0), y[r0:r1]]
        alpha, beta, gamma = (
            np.ascontiguousarray(c, dtype=np.float64) for c in coef(r0, r1, lse[r0:r1])
        )
        grad_block(
            u, lse[r0:r1], alpha, beta, gamma, w, class_weight is not None, y[r0:r1], cap, True
        )
        np.matmul(u, weight, out=dh[r0:r1])
        for k0, k1 in _spans(k, block_vocab):
            dw[k0:k1] += _product(tmp, u[:, k0:k1].T, hb)
        if db is not None:
            db += u.sum(axis=0)
    return lse, zy, wz_all, dh, dw, db
