"""Verification of every step, and the builder that refuses an unverified one.

A step ``lhs = rhs`` is checked when it is built, twice: symbolically (the
definitions are substituted, ``z_k = log x_k`` turns every expression into a
rational function of ``x``, and ``cancel`` decides whether the difference is
zero; ``simplify`` is the fallback) and numerically (both sides at three random
points). A failure raises :class:`~softgrad.explain.DerivationError`: a wrong
step is a bug, it is never printed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.polys.matrices import DomainMatrix

from softgrad.explain._model import RULES, DerivationError, Step
from softgrad.explain._symbols import World, concretize, index_symbols, partial, uadd, umul

__all__ = ["Builder", "general_rule", "verify"]


def _fast_det(matrix: Any) -> Any:
    """Determinant by fraction-free elimination over polynomials (SymPy's default is slow)."""
    m = sp.Matrix(matrix)
    zs = sorted((s for s in m.free_symbols if s.name.startswith("z_")), key=str)
    xs = [sp.Dummy(f"x{k}", positive=True) for k in range(len(zs))]
    to_x = {z: sp.log(x) for z, x in zip(zs, xs, strict=True)}
    entries = [sp.together(e.subs(to_x)) for e in m]
    den = sp.lcm([sp.fraction(e)[1] for e in entries])
    dm = DomainMatrix.from_Matrix((m.subs(to_x) * den).applyfunc(sp.cancel))
    det = sp.cancel(dm.domain.to_sympy(dm.det()) / den ** m.shape[0])
    return det.subs({x: sp.exp(z) for z, x in zip(zs, xs, strict=True)})


def _expand_definitions(expr: Any, definitions: Mapping[Any, Any]) -> Any:
    out = sp.sympify(expr).subs(dict(definitions))
    out = out.replace(
        lambda e: isinstance(e, sp.OneMatrix | sp.ZeroMatrix), lambda e: e.as_explicit()
    )
    out = out.replace(lambda e: isinstance(e, sp.Determinant), lambda e: _fast_det(e.arg))
    out = out.doit()
    if isinstance(out, sp.MatrixExpr) and not isinstance(out, sp.MatrixBase):
        out = out.as_explicit()
    return out


def _entries(expr: Any) -> list[Any]:
    if isinstance(expr, sp.MatrixBase):
        return list(expr)
    return [expr]


def _is_zero(expr: Any) -> bool:
    if expr == 0:
        return True
    zs = [s for s in expr.free_symbols if s.name.startswith("z_")]
    xs = [sp.Dummy(positive=True) for _ in zs]
    rational = expr.subs({z: sp.log(x) for z, x in zip(zs, xs, strict=True)})
    if sp.cancel(sp.together(rational)) == 0:
        return True
    return bool(sp.simplify(expr) == 0)


def verify(lhs: Any, rhs: Any, definitions: Mapping[Any, Any], where: str) -> None:
    """Raise :class:`DerivationError` unless ``lhs = rhs`` holds once ``definitions`` are expanded."""
    left = _expand_definitions(lhs, definitions)
    right = _expand_definitions(rhs, definitions)
    left_entries, right_entries = _entries(left), _entries(right)
    if len(left_entries) != len(right_entries):
        msg = f"step {where!r}: the two sides have different shapes"
        raise DerivationError(msg)
    for a, b in zip(left_entries, right_entries, strict=True):
        if not _is_zero(a - b):
            msg = f"step {where!r} is not an identity: {lhs} = {rhs} reduces to {a - b} ≠ 0"
            raise DerivationError(msg)
    # numeric confirmation at random points
    symbols = sorted(
        set().union(*(sp.sympify(e).free_symbols for e in left_entries + right_entries)), key=str
    )
    rng = np.random.default_rng(abs(hash(where)) % 2**32)
    f_left = sp.lambdify(symbols, left_entries, "mpmath")
    f_right = sp.lambdify(symbols, right_entries, "mpmath")
    for _ in range(3):
        point = [float(v) for v in rng.normal(0.0, 1.5, len(symbols))]
        for a, b in zip(f_left(*point), f_right(*point), strict=True):
            a, b = complex(a), complex(b)
            if abs(a - b) > 1e-9 * (1 + abs(a) + abs(b)):
                msg = f"step {where!r} fails numerically: {a} ≠ {b} at {point}"
                raise DerivationError(msg)


class Builder:
    """Collects the steps of one walk-through, verifying each as it is added."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.steps: list[Step] = []
        self.section = ""

    def add(
        self,
        title: str,
        rule: str,
        lhs: Any,
        rhs: Any,
        note: str = "",
        instances: Iterable[tuple[Any, Any]] | None = None,
    ) -> None:
        if rule not in RULES:  # pragma: no cover - guards the tables in this file
            msg = f"unknown rule {rule!r}"
            raise DerivationError(msg)
        pairs = tuple(instances) if instances is not None else ((lhs, rhs),)
        for k, (a, b) in enumerate(pairs):
            verify(a, b, self.world.definitions, f"{title} [{k}]")
        self.steps.append(Step(self.section, title, rule, lhs, rhs, note, pairs))


def general_rule(b: Builder, values: Iterable[int]) -> None:
    """Add the step ∂Sᵢ/∂zⱼ = Sᵢ(δᵢⱼ − Sⱼ), verified for every pair of ``values``."""
    i, j = index_symbols()[:2]
    zI, sI = sp.IndexedBase("z"), sp.IndexedBase("S")
    lhs = partial(sI[i], zI[j])
    rhs = umul(sI[i], uadd(sp.KroneckerDelta(i, j), -sI[j]))
    vals = list(values)
    b.add(
        "∂Sᵢ/∂zⱼ for every i and j",
        "cases",
        lhs,
        rhs,
        (
            "δᵢⱼ is 1 when i = j and 0 otherwise: i = j gives Sᵢ(1 − Sᵢ), "
            "i ≠ j gives −SᵢSⱼ, as worked out above."
        )
        if len(vals) > 1
        else "δ₁₁ = 1: with one output the rule is S₁(1 − S₁), worked out above.",
        [
            (concretize(lhs, b.world, {i: a, j: c}), concretize(rhs, b.world, {i: a, j: c}))
            for a, c in itertools.product(vals, vals)
        ],
    )
