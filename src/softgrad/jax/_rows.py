r"""The rows of softgrad.jax's functions: the exact path and ``jax.nn``'s common one.

:func:`_rows` is the exact path of the behaviour contract (masks, +inf rows
give the limit, excluded entries selected out before anything is computed
from them); softmax and logsumexp take it for every call (on XLA:CPU its
select-exp loop, split over both threads, was as fast as or faster than
``jax.nn``'s fused pattern on most shapes). :func:`_plain` is what ``jax.nn``
computes (max, ``exp(x − max)``, the sum): log_softmax takes it for calls
without a mask, with :func:`_special_rows` giving the per-row vectors of rows
whose max is ±inf or NaN under a ``lax.cond``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

Array = Any


class _Rows(NamedTuple):
    """One reduction over ``axis``; the per-row pieces keep the reduced axis."""

    z: Array  # x − max where probability flows (finite for finite x), −inf or 0 elsewhere
    e: Array  # exp(z), 0 exactly where nothing flows
    total: Array  # Σ e: 0 exactly on a row with nothing left, NaN on a NaN row
    row_max: Array  # max over the kept entries (±inf, NaN; the lowest float when all masked)
    pos_inf: Array  # the row holds +inf
    active: Array | None  # with a mask: the entries that carry probability


def _rows(x: Array, keep: Array | None, axis: int) -> _Rows:
    if keep is None:
        # no mask: −inf entries fall out of exp by themselves, as in jax.nn
        row_max = lax.stop_gradient(jnp.max(x, axis, keepdims=True))
        pos_inf = jnp.isinf(row_max) & (row_max > 0)
        shift = jnp.where(jnp.isfinite(row_max), row_max, 0)
        # a row holding +inf: the limit shares the mass among its +inf entries
        # (−row_max is the −inf of such a row, built from the data)
        z = jnp.where(pos_inf, jnp.where(x == row_max, 0, -row_max), x - shift)
        e = jnp.exp(z)
        return _Rows(z, e, jnp.sum(e, axis, keepdims=True), row_max, pos_inf, None)
    # a mask: excluded entries become finite constants, never ±inf (the lowest
    # float for the max, 0 in the exponent, then exp is zeroed by selection)
    kept = keep & jnp.logical_not(jnp.isinf(x) & (x < 0))  # NaN stays
    row_max = jnp.max(jnp.where(kept, x, np.finfo(x.dtype).min), axis, keepdims=True)
    row_max = lax.stop_gradient(row_max)
    pos_inf = jnp.isinf(row_max) & (row_max > 0)
    active = kept & (jnp.logical_not(pos_inf) | (x == row_max))
    shift = jnp.where(pos_inf, 0, row_max)
    z = jnp.where(active & jnp.logical_not(pos_inf), x - shift, 0)
    e = jnp.where(active, jnp.exp(z), 0)
    return _Rows(z, e, jnp.sum(e, axis, keepdims=True), row_max, pos_inf, active)


def _log_total(r: _Rows, axis: int) -> Array:
    r"""log Σ e (0 on an empty row), accurate when one entry holds nearly all the mass.

    With :math:`t \ge 1` entries at the max (each adding exactly 1) and the rest
    :math:`r`, :math:`\log(t + r) = \log t + \operatorname{log1p}(r/t)`. Rounding
    :math:`t + r` loses :math:`r` only when :math:`t = 1` and :math:`r < 1`, i.e.
    when :math:`\sum e < 2`: a call with such a row counts the max entries and
    sums the rest apart (two more passes on XLA:CPU); otherwise ``log(Σ e)`` is
    already within an ulp or two, and is what runs.
    """

    def split(z: Array, total: Array, active: Array | None) -> Array:
        # e is recomputed here: passing it in would make XLA keep it in memory
        at_max = z == 0 if active is None else active & (z == 0)  # each adds exp(0) = 1
        e = jnp.exp(z) if active is None else jnp.where(active, jnp.exp(z), 0)
        rest = jnp.sum(jnp.where(at_max, 0, e), axis, keepdims=True)
        n_max = jnp.sum(at_max.astype(z.dtype), axis, keepdims=True)
        safe_n = jnp.where(n_max == 0, 1, n_max)
        return jnp.log(safe_n) + jnp.log1p(rest / safe_n)

    def plain(z: Array, total: Array, active: Array | None) -> Array:
        return jnp.log(jnp.where(total == 0, 1, total))

    dominated = jnp.any((r.total > 0) & (r.total < 2))
    return lax.cond(dominated, split, plain, r.z, r.total, r.active)


class _Plain(NamedTuple):
    """``jax.nn``'s pieces of a call without a mask, and whether some row needs :func:`_rows`."""

    z: Array  # x − max (−inf at a −inf entry)
    e: Array  # exp(z)
    total: Array  # Σ e: at least 1 on a row with a finite max
    row_max: Array
    special: Array  # 0-d: some total is NaN (a row with max ±inf, or holding NaN)


def _plain(x: Array, axis: int, *, mark: bool = False) -> _Plain:
    """The rows as ``jax.nn`` computes them: one reduction, then ``exp(x − max)``.

    Nothing stands between the max and ``x − max``, so XLA:CPU fuses them into
    one kernel (the select of the +inf rule in :func:`_rows` prevents that, and
    so does any other use of the max, hence the test on the totals). Rows
    whose max is finite come out right, −inf entries included (``exp(−inf) =
    0``); a row whose max is ±inf (``−inf − (−inf)``, ``inf − inf``) or that
    holds NaN has a NaN total, and when there is one the caller computes
    those rows' vectors apart (:func:`_special_rows`), under a ``lax.cond``
    that costs a check of the (rows,) totals in the common case. With ``mark``, ``e`` is −0.0 at a −inf
    entry (in the loop that computes the exponentials, which the sum then
    reads), so the entries where nothing flows can be told from ``e`` alone.
    """
    row_max = lax.stop_gradient(jnp.max(x, axis, keepdims=True))
    z = x - row_max
    e = jnp.where(z == -jnp.inf, -0.0, jnp.exp(z)) if mark else jnp.exp(z)
    total = jnp.sum(e, axis, keepdims=True)
    return _Plain(z, e, total, row_max, jnp.any(jnp.isnan(total)))


def _plain_log_total(p: _Plain, axis: int) -> Array:
    r"""log Σ e on rows with a finite max, accurate when the max holds nearly all the mass.

    The max entry adds exactly 1, so :math:`\sum e < 2` means it is the only
    entry at 1 and :math:`\log \sum e = \operatorname{log1p}(r)` with :math:`r`
    the sum of the others (rounding :math:`1 + r` would lose it). That sum is
    taken only when some row is so dominated.
    """

    def split(e: Array, total: Array) -> Array:
        rest = jnp.sum(jnp.where(e == 1, 0, e), axis, keepdims=True)
        return jnp.where(total < 2, jnp.log1p(rest), jnp.log(total))

    def plain(e: Array, total: Array) -> Array:
        return jnp.log(total)

    return lax.cond(jnp.any(p.total < 2), split, plain, p.e, p.total)


def _special_rows(x: Array, p: _Plain, axis: int) -> tuple[Array, Array, Array, Array]:
    """``(log Σ e, inv, s_fill, y_fill)`` when some row's max is ±inf or NaN.

    A +inf row gives the limit: its ``k`` entries at +inf (where ``x − max`` is
    ``inf − inf = NaN``) share the mass, ``S = 1/k``, ``log S = −log k``, and
    every other entry is ``x − inf = −inf``. A row of −inf only has nothing
    left (``S = 0``, ``log S = −inf``, taken from its max); a NaN row is NaN.
    """
    pos = p.row_max == jnp.inf
    k = jnp.sum(x == jnp.inf, axis, keepdims=True)  # from x: x − max stays unwritten
    k = jnp.where(pos, k, 1).astype(x.dtype)
    special = jnp.isnan(p.total)
    finite_total = jnp.where(special, 1, p.total)
    log_total = _plain_log_total(p._replace(total=finite_total), axis)
    nan_or_0 = jnp.where(jnp.isnan(p.row_max), p.row_max, 0)  # NaN on a NaN row
    lt = jnp.where(special, nan_or_0, log_total)
    inv = jnp.where(special, nan_or_0, 1 / finite_total)
    s_fill = jnp.where(pos, 1 / k, nan_or_0)
    y_fill = jnp.where(pos, -jnp.log(k), p.row_max)  # −inf on a −inf row, NaN on a NaN row
    return lt, inv, s_fill, y_fill
