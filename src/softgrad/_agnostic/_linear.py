r"""Linear layer + logsumexp, block by block: the reference behind ``linear_cross_entropy``.

The logits :math:`z = \operatorname{cap}(h W^\top + b)` of a language-model
head are N × K with K the vocabulary; here they only ever exist one block of
``block_rows`` rows × ``block_vocab`` classes at a time. Two passes, written
once against the Array API standard (NumPy, PyTorch on any device,
array-api-strict; JAX runs the same block functions inside ``lax.scan``):

* :func:`linear_lse` — per row, the logsumexp by the online rescaling
  :math:`m' = \max(m, \max_j z_j)`, :math:`s' = s\,e^{m - m'} + \sum_j e^{z_j - m'}`
  (Milakov & Gimelshein 2018), the target's logit :math:`z_y` by an indexed
  dot product, and (for label smoothing) :math:`\sum_c w_c z_c`;
* :func:`linear_backward` — recompute each block, form
  :math:`G = \alpha\,S - \beta\,e_y - \gamma\,w` (times the softcap's
  derivative :math:`1 - (z/c)^2`), then :math:`\partial h \mathrel{+}= G W`,
  :math:`\partial W \mathrel{+}= G^\top h`, :math:`\partial b \mathrel{+}= \sum G`.

What :math:`\alpha, \beta, \gamma` are for each loss option is the public
module's business (``softgrad._linear``); these functions only know the blocks.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict, Unpack

from softgrad._lib._array import Array, Namespace, constant, device

__all__ = [
    "BackwardOptions",
    "Coefficients",
    "LinearOperands",
    "LseOptions",
    "backward_options",
    "block_grad",
    "block_stats",
    "capped",
    "linear_backward",
    "linear_lse",
    "merge_stats",
    "target_logit",
]


class LinearOperands(NamedTuple):
    """The arrays of every ``linear_lse``/``linear_backward`` (reference, kernel, JAX, torch).

    Any array library; ``y`` holds a valid class for every row (ignored rows
    are given class 0 by the caller and weighted out through the coefficients).
    """

    h: Any  # (N, D)
    weight: Any  # (K, D)
    bias: Any  # (K,), or None
    y: Any  # (N,) integer targets, each in [0, K)


Coefficients = tuple[Any, Any, Any]
"""``(alpha, beta, gamma)``, each (N,): :math:`\\partial L/\\partial z = \\alpha S - \\beta e_y - \\gamma w`."""


class BackwardOptions(TypedDict):
    """The keyword arguments of every ``linear_backward`` (reference, kernel, JAX, torch)."""

    softcap: float | None
    class_weight: Any  # array of shape (K,), or None
    block_rows: int
    block_vocab: int


class LseOptions(BackwardOptions):
    """The keyword arguments of every ``linear_lse``: :class:`BackwardOptions` and ``smoothing``."""

    smoothing: bool


def backward_options(options: LseOptions) -> BackwardOptions:
    """The :class:`BackwardOptions` among ``linear_lse``'s options (all but ``smoothing``)."""
    return BackwardOptions(
        softcap=options["softcap"],
        class_weight=options["class_weight"],
        block_rows=options["block_rows"],
        block_vocab=options["block_vocab"],
    )


def capped(xp: Namespace, u: Array, softcap: float | None) -> Array:
    r"""The softcap :math:`c \tanh(u / c)` (``u`` itself when ``softcap`` is None)."""
    return u if softcap is None else softcap * xp.tanh(u / softcap)


def block_stats(xp: Namespace, z: Array) -> tuple[Array, Array]:
    r"""A block's row max :math:`m_b` and :math:`\sum_j e^{z_j - m_b}`."""
    m = xp.max(z, axis=1)
    return m, xp.sum(xp.exp(z - m[:, None]), axis=1)


def merge_stats(xp: Namespace, m: Array, s: Array, mb: Array, sb: Array) -> tuple[Array, Array]:
    r"""Merge two (max, sum of exp) pairs: :math:`m' = \max(m, m_b)`, rescale both sums to it."""
    m_new = xp.maximum(m, mb)
    # exp(−inf − m') = 0: the empty start (m = −inf, s = 0) merges to the other pair
    return m_new, s * xp.exp(m - m_new) + sb * xp.exp(mb - m_new)


def target_logit(
    xp: Namespace, h: Array, weight: Array, bias: Array | None, y: Array, softcap: float | None
) -> Array:
    r""":math:`z_{i,y_i} = \operatorname{cap}(h_i \cdot W_{y_i} + b_{y_i})`, one dot product per row."""
    u = xp.sum(h * xp.take(weight, y, axis=0), axis=1)
    if bias is not None:
        u = u + xp.take(bias, y, axis=0)
    return capped(xp, u, softcap)


def block_grad(
    xp: Namespace,
    u: Array,
    lse: Array,
    coef: tuple[Array, Array, Array],
    w: Array | None,
    y_local: Array,
    softcap: float | None,
) -> Array:
    r""":math:`\partial L / \partial u` on one block of pre-cap logits ``u`` (rows × classes).

    With ``coef = (alpha, beta, gamma)``, one value per row:
    :math:`G = (\alpha\,S - \beta\,e_y - \gamma\,w) \odot (1 - (z/c)^2)`,
    :math:`S = e^{z - \mathrm{lse}}`; ``y_local`` is the target's column in
    this block (outside ``[0, columns)`` when the target lies elsewhere).
    """
    alpha, beta, gamma = coef
    z = capped(xp, u, softcap)
    g = alpha[:, None] * xp.exp(z - lse[:, None])
    cols = xp.arange(u.shape[1], dtype=y_local.dtype, device=device(u))
    g = g - xp.where(y_local[:, None] == cols, beta[:, None], constant(xp, 0.0, g))
    g = g - gamma[:, None] * (constant(xp, 1.0, g) if w is None else w[None, :])
    if softcap is not None:
        g = g * (1.0 - (z / softcap) ** 2)
    return g


def _spans(n: int, block: int) -> list[tuple[int, int]]:
    return [(i, min(i + block, n)) for i in range(0, n, block)]


def linear_lse(
    xp: Namespace, operands: LinearOperands, **options: Unpack[LseOptions]
) -> tuple[Array, Array, Array]:
    r"""Per row: logsumexp of the logits, the target's logit and :math:`\sum_c w_c z_c`.

    Parameters
    ----------
    operands : LinearOperands
        ``h`` (N, D), ``weight`` (K, D), ``bias`` (K,) or None, ``y`` (N,):
        targets, each in ``[0, K)`` (ignored rows given any valid class).
    softcap : float, optional
    class_weight : array, shape (K,), optional
        The :math:`w` of the third result (all ones when None).
    smoothing : bool
        Whether to compute the third result (zeros otherwise).
    block_rows, block_vocab : int
        The block of logits alive at any time.

    Returns
    -------
    lse, zy, wz : arrays, shape (N,)
    """
    h, weight, bias, y = operands
    softcap, class_weight = options["softcap"], options["class_weight"]
    n, k = h.shape[0], weight.shape[0]
    lse_parts, wz_parts = [], []
    for r0, r1 in _spans(n, options["block_rows"]):
        hb = h[r0:r1, ...]
        m = xp.full((r1 - r0,), -xp.inf, dtype=h.dtype, device=device(h))
        s = xp.zeros((r1 - r0,), dtype=h.dtype, device=device(h))
        wz = xp.zeros((r1 - r0,), dtype=h.dtype, device=device(h))
        for k0, k1 in _spans(k, options["block_vocab"]):
            u = hb @ xp.matrix_transpose(weight[k0:k1, ...])
            if bias is not None:
                u = u + bias[None, k0:k1]
            z = capped(xp, u, softcap)
            m, s = merge_stats(xp, m, s, *block_stats(xp, z))
            if options["smoothing"]:
                wz = wz + (xp.sum(z, axis=1) if class_weight is None else z @ class_weight[k0:k1])
        lse_parts.append(m + xp.log(s))
        wz_parts.append(wz)
    zy = target_logit(xp, h, weight, bias, y, softcap)
    return _concat(xp, lse_parts, h), zy, _concat(xp, wz_parts, h)


def _concat(xp: Namespace, parts: list[Array], like: Array) -> Array:
    if not parts:
        return xp.zeros((0,), dtype=like.dtype, device=device(like))
    return xp.concat(parts) if len(parts) > 1 else parts[0]


def linear_backward(
    xp: Namespace,
    operands: LinearOperands,
    lse: Array,
    coef: tuple[Array, Array, Array],
    **options: Unpack[BackwardOptions],
) -> tuple[Array, Array, Array | None]:
    r"""Gradients of :math:`L` for ``h``, ``weight`` and ``bias``, block by block.

    ``coef = (alpha, beta, gamma)`` (each shape (N,)) defines
    :math:`\partial L/\partial z_{ic} = \alpha_i S_{ic} - \beta_i [c = y_i] - \gamma_i w_c`
    (see :func:`block_grad`). The vocabulary loop is outermost, so each block
    of :math:`\partial W` is finished before the next starts and nothing is
    written in place (the function also runs on immutable arrays).
    """
    h, weight, bias, y = operands
    softcap, class_weight = options["softcap"], options["class_weight"]
    n, k = h.shape[0], weight.shape[0]
    rows = _spans(n, options["block_rows"])
    dh: list[Any] = [None] * len(rows)
    dw_parts, db_parts = [], []
    for k0, k1 in _spans(k, options["block_vocab"]):
        wk = weight[k0:k1, ...]
        dwk = xp.zeros(wk.shape, dtype=h.dtype, device=device(h))
        dbk = xp.zeros((k1 - k0,), dtype=h.dtype, device=device(h))
        for i, (r0, r1) in enumerate(rows):
            hb = h[r0:r1, ...]
            u = hb @ xp.matrix_transpose(wk)
            if bias is not None:
                u = u + bias[None, k0:k1]
            part = tuple(c[r0:r1] for c in coef)
            w = None if class_weight is None else class_weight[k0:k1]
            g = block_grad(xp, u, lse[r0:r1], part, w, y[r0:r1] - k0, softcap)
            dh[i] = g @ wk if dh[i] is None else dh[i] + g @ wk
            dwk = dwk + xp.matrix_transpose(g) @ hb
            dbk = dbk + xp.sum(g, axis=0)
        dw_parts.append(dwk)
        db_parts.append(dbk)
    if k == 0 or n == 0:
        dh_full = xp.zeros(h.shape, dtype=h.dtype, device=device(h))
    else:
        dh_full = xp.concat(dh, axis=0) if len(dh) > 1 else dh[0]
    dw = (
        xp.concat(dw_parts, axis=0)
        if k
        else xp.zeros(weight.shape, dtype=h.dtype, device=device(h))
    )
    db = None if bias is None else (xp.concat(db_parts) if k else xp.zeros((0,), dtype=h.dtype))
    return dh_full, dw, db
