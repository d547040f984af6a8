r"""A gradient checker: closed-form derivatives against finite differences.

Along a few random directions :math:`v` the directional derivative of ``f`` is
estimated with the five-point stencil

.. math::

    D_v f(x) \approx \frac{-f(x+2hv) + 8f(x+hv) - 8f(x-hv) + f(x-2hv)}{12h},

whose truncation error is :math:`O(h^4)` and rounding error
:math:`O(\epsilon \lVert f\rVert / h)`; the default
:math:`h = \epsilon^{1/5}` balances the two. Each supplied derivative is held
against it: a gradient through :math:`\langle \nabla f, v\rangle`, a JVP
directly, a VJP through :math:`\langle u, D_v f\rangle`, an HVP against the
stencil of the gradient. When both a JVP and a VJP are given they must also
agree with each other, :math:`\langle u, Jv\rangle = \langle u^\top J, v\rangle`,
to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from softgrad._lib._array import Array, Namespace, array_namespace, device

__all__ = ["GradcheckError", "GradcheckResult", "gradcheck"]

Fn = Callable[[Array], Array]
Fn2 = Callable[[Array, Array], Array]


@dataclass(frozen=True)
class Check:
    """One comparison: an analytic value against its finite-difference estimate."""

    name: str
    direction: int
    analytic: float  # the analytic value's largest magnitude (a norm for arrays)
    numeric: float
    abs_err: float
    rel_err: float
    tolerance: float
    ok: bool


@dataclass(frozen=True)
class GradcheckResult:
    """The outcome of :func:`gradcheck`: ``ok``, the worst errors and every check."""

    ok: bool
    max_abs_err: float
    max_rel_err: float
    checks: tuple[Check, ...]
    step: float
    rtol: float
    atol: float

    def report(self) -> str:
        """A readable table of every comparison, failures marked."""
        head = (
            f"gradcheck {'passed' if self.ok else 'FAILED'}: max abs err {self.max_abs_err:.3e}, "
            f"max rel err {self.max_rel_err:.3e} (step h={self.step:.3g}, rtol={self.rtol:.3g}, "
            f"atol={self.atol:.3g})"
        )
        header = (
            f"  {'check':<12} {'dir':>3} {'|analytic|':>12} {'|numeric|':>12} {'abs err':>10} "
            f"{'rel err':>10} {'tolerance':>10}"
        )
        rows = [header]
        for c in self.checks:
            mark = "" if c.ok else "  <-- FAILED"
            rows.append(
                f"  {c.name:<12} {c.direction:>3} {c.analytic:>12.5g} {c.numeric:>12.5g} "
                f"{c.abs_err:>10.3e} {c.rel_err:>10.3e} {c.tolerance:>10.3e}{mark}"
            )
        return "\n".join([head, *rows])

    def __str__(self) -> str:
        return self.report()


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when a derivative disagrees with finite differences."""

    def __init__(self, result: GradcheckResult) -> None:
        super().__init__(result.report())
        self.result = result


def _stencil(f: Fn, x: Array, v: Array, h: float) -> Array:
    return (-f(x + 2 * h * v) + 8 * f(x + h * v) - 8 * f(x - h * v) + f(x - 2 * h * v)) / (12 * h)


def _max_abs(xp: Namespace, a: Array) -> float:
    return float(xp.max(xp.abs(a))) if a.size else 0.0


def _dot(xp: Namespace, a: Array, b: Array) -> float:
    return float(xp.sum(a * b))


def _random_like(xp: Namespace, rng: np.random.Generator, like: Array) -> Array:
    v = rng.standard_normal(tuple(like.shape))
    v /= max(float(np.max(np.abs(v))), 1e-300) if v.size else 1.0
    return xp.asarray(v, dtype=like.dtype, device=device(like))


def gradcheck(
    f: Fn,
    x: Array,
    *,
    grad: Fn | None = None,
    vjp: Fn2 | None = None,
    jvp: Fn2 | None = None,
    hvp: Fn2 | None = None,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    n_directions: int = 3,
    seed: int | None = None,
    raise_exception: bool = True,
) -> GradcheckResult:
    r"""Check derivatives of ``f`` at ``x`` against five-point finite differences.

    Parameters
    ----------
    f : callable ``x -> array``
        The function (any output shape; scalar for ``grad``/``hvp``).
    x : array, real floating
        The point. Any Array API array.
    grad : callable ``x -> array``, optional
        Gradient of a scalar ``f`` (shape of ``x``).
    vjp : callable ``(x, u) -> array``, optional
        :math:`u^\top J` for ``u`` of ``f``'s output shape.
    jvp : callable ``(x, v) -> array``, optional
        :math:`J v` for ``v`` of ``x``'s shape.
    hvp : callable ``(x, v) -> array``, optional
        Hessian-vector product of a scalar ``f``; needs ``grad`` (its finite
        differences are the reference).
    eps : float, optional
        Finite-difference step :math:`h`; default :math:`\epsilon^{1/5}` of
        ``x``'s dtype (about 7e-4 in float64, 4e-2 in float32).
    rtol, atol : float, optional
        A check passes when :math:`|a - n| \le atol + rtol \max(|a|, |n|)`
        (max-norms for arrays). Defaults: ``rtol`` 1e-6 in float64, 2e-3 in
        float32 — both flag a derivative that is 1% off — and ``atol`` ten
        times the stencil's rounding error, :math:`10\,\epsilon\,(1 +
        \max|f(x)|)/h`.
    n_directions : int, default 3
        Random directions tried (each check runs once per direction).
    seed : int, optional
        Seed of the random directions.
    raise_exception : bool, default True
        Raise :class:`GradcheckError` (an ``AssertionError`` carrying the
        report) when a check fails; otherwise return the result.

    Returns
    -------
    GradcheckResult
        ``.ok``, ``.max_abs_err``, ``.max_rel_err``, ``.checks`` and ``.report()``.

    Notes
    -----
    .. math::

        D_v f(x) = \frac{-f(x+2hv) + 8f(x+hv) - 8f(x-hv) + f(x-2hv)}{12h}
                 + O(h^4) + O(\epsilon/h).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import gradcheck, softmax, softmax_jvp, softmax_vjp
    >>> x = np.array([0.5, -1.0, 2.0])
    >>> r = gradcheck(softmax, x, jvp=lambda x, v: softmax_jvp(softmax(x), v),
    ...               vjp=lambda x, u: softmax_vjp(softmax(x), u), seed=0)
    >>> r.ok, r.max_rel_err < 1e-8
    (True, True)
    >>> wrong = gradcheck(softmax, x, jvp=lambda x, v: 1.01 * softmax_jvp(softmax(x), v),
    ...                   seed=0, raise_exception=False)
    >>> wrong.ok
    False
    """
    if grad is None and vjp is None and jvp is None and hvp is None:
        msg = "gradcheck needs something to check: pass grad=, vjp=, jvp= or hvp="
        raise ValueError(msg)
    if hvp is not None and grad is None:
        msg = "hvp= is checked against finite differences of the gradient: pass grad= too"
        raise ValueError(msg)
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        msg = f"n_directions must be a positive int, got {n_directions!r}"
        raise ValueError(msg)
    xp = array_namespace(x)
    if x.dtype not in (xp.float32, xp.float64):
        msg = f"x must be float32 or float64 for finite differences, got {x.dtype}"
        raise TypeError(msg)
    machine_eps = float(xp.finfo(x.dtype).eps)
    h = machine_eps ** (1 / 5) if eps is None else float(eps)
    if not (math.isfinite(h) and h > 0):
        msg = f"eps must be a positive finite step, got {eps!r}"
        raise ValueError(msg)
    if rtol is None:
        rtol = 1e-6 if x.dtype == xp.float64 else 2e-3
    fx = f(x)
    if atol is None:
        atol = 10 * machine_eps * (1 + _max_abs(xp, fx)) / h
        if grad is not None and tuple(grad(x).shape) == tuple(x.shape):
            atol = max(atol, 10 * machine_eps * (1 + _max_abs(xp, grad(x))) / h)
    rng = np.random.default_rng(seed)
    checks: list[Check] = []

    def record(name: str, k: int, analytic: float, numeric: float, err: float, tol: float) -> None:
        scale = max(abs(analytic), abs(numeric))
        rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        ok = bool(err <= tol) and math.isfinite(err)
        checks.append(Check(name, k, analytic, numeric, err, rel, tol, ok))

    def compare_scalars(name: str, k: int, a: float, n: float) -> None:
        err = abs(a - n)
        record(name, k, a, n, err, atol + rtol * max(abs(a), abs(n)))

    def compare_arrays(name: str, k: int, a: Array, n: Array) -> None:
        if tuple(a.shape) != tuple(n.shape):
            msg = f"{name} returned shape {tuple(a.shape)}, expected {tuple(n.shape)}"
            raise ValueError(msg)
        a_max, n_max = _max_abs(xp, a), _max_abs(xp, n)
        err = _max_abs(xp, a - n)
        record(name, k, a_max, n_max, err, atol + rtol * max(a_max, n_max))

    def check_shape(name: str, a: Array, expected: tuple[int, ...]) -> Array:
        if tuple(a.shape) != expected:
            msg = f"{name} returned shape {tuple(a.shape)}, expected {expected} (the shape of x)"
            raise ValueError(msg)
        return a

    if grad is not None and tuple(fx.shape) not in ((), (1,)):
        msg = (
            f"f must return a scalar (a 0-d array) when grad= is checked; it returned shape "
            f"{tuple(fx.shape)}. Check a vector-valued f with jvp= or vjp=, or reduce it"
        )
        raise ValueError(msg)
    shape = tuple(x.shape)
    g = check_shape("grad", grad(x), shape) if grad is not None else None
    for k in range(n_directions):
        v = _random_like(xp, rng, x)
        d_f = _stencil(f, x, v, h)
        if g is not None:
            compare_scalars("grad", k, _dot(xp, g, v), float(xp.sum(d_f)))
        if jvp is not None:
            compare_arrays("jvp", k, jvp(x, v), d_f)
        if vjp is not None:
            u = _random_like(xp, rng, fx)
            u_j = check_shape("vjp", vjp(x, u), shape)
            compare_scalars("vjp", k, _dot(xp, u_j, v), _dot(xp, u, d_f))
            if jvp is not None:  # adjoint identity: exact up to rounding
                j_v = jvp(x, v)
                a, b = _dot(xp, u, j_v), _dot(xp, u_j, v)
                # rounding bound of two dot products of `size` terms
                terms = _dot(xp, xp.abs(u), xp.abs(j_v)) + _dot(xp, xp.abs(u_j), xp.abs(v))
                tol = machine_eps * (10 + x.size + fx.size) * terms + 1e-300
                record("jvp~vjp", k, a, b, abs(a - b), tol)
        if hvp is not None and grad is not None:
            compare_arrays("hvp", k, hvp(x, v), _stencil(grad, x, v, h))

    result = GradcheckResult(
        ok=all(c.ok for c in checks),
        max_abs_err=max(c.abs_err for c in checks),
        max_rel_err=max(c.rel_err for c in checks),
        checks=tuple(checks),
        step=h,
        rtol=rtol,
        atol=atol,
    )
    if raise_exception and not result.ok:
        raise GradcheckError(result)
    return result
