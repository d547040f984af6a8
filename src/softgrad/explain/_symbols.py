"""The symbols of the derivation and the constructors its steps are written with.

Explicit steps use ``z_1, …, z_n``, ``S_1, …, S_n`` (and ``y``, ``g``, ``v``);
:class:`World` holds them with the definitions that expand every abbreviation
into ``z``. Indexed steps use ``S_i``, ``z_j`` and sums over ``k = 1..n``;
:func:`concretize` turns one into the explicit symbols of a world at given
index values, which is how an indexed step is verified.

Sums and products are built unevaluated (:func:`uadd`, :func:`umul`,
:func:`frac`, :func:`partial`) so that a step keeps the shape the post writes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

__all__ = ["World", "concretize", "frac", "index_symbols", "partial", "uadd", "umul"]


def uadd(*args: Any) -> Any:
    """``a + b + …`` as written, not collected or reordered."""
    return sp.Add(*args, evaluate=False)


def umul(*args: Any) -> Any:
    """``a·b·…`` as written, not collected or reordered."""
    return sp.Mul(*args, evaluate=False)


def frac(num: Any, den: Any) -> Any:
    """``num/den`` as written."""
    return sp.Mul(num, sp.Pow(den, -1, evaluate=False), evaluate=False)


def partial(expr: Any, var: Any) -> Any:
    """``∂expr/∂var``, not evaluated."""
    return sp.Derivative(expr, var, evaluate=False)


@dataclass(frozen=True)
class World:
    """Explicit symbols for ``n`` outputs and the definitions that expand them."""

    n: int
    z: tuple[Any, ...]
    S: tuple[Any, ...]
    y: tuple[Any, ...]
    g: tuple[Any, ...]
    v: tuple[Any, ...]
    sigma: Any
    loss: Any  # L: any loss of the outputs, through its upstream gradient g
    ce: Any  # L: the cross-entropy (a different symbol that prints the same)
    vbar: Any
    J: Any
    Svec: Any
    gvec: Any
    vvec: Any
    definitions: dict[Any, Any]
    jacobian: Any

    @classmethod
    def build(cls, n: int) -> World:
        z = tuple(sp.Symbol(f"z_{k}", real=True) for k in range(1, n + 1))
        S = tuple(sp.Symbol(f"S_{k}", positive=True) for k in range(1, n + 1))
        y = tuple(sp.Symbol(f"y_{k}", real=True) for k in range(1, n + 1))
        g = tuple(sp.Symbol(f"g_{k}", real=True) for k in range(1, n + 1))
        v = tuple(sp.Symbol(f"v_{k}", real=True) for k in range(1, n + 1))
        sigma = sp.Symbol("Sigma", positive=True)
        loss = sp.Symbol("L")
        ce = sp.Symbol("L", real=True)
        vbar = sp.Symbol("vbar", real=True)
        J = sp.MatrixSymbol("J", n, n)
        Svec, gvec, vvec = (sp.MatrixSymbol(name, n, 1) for name in ("S", "g", "v"))

        total = sp.Add(*(sp.exp(zk) for zk in z))
        s_of_z = [sp.exp(zk) / total for zk in z]
        # the targets sum to one: y_n is whatever the others leave
        y_last = 1 - sp.Add(*y[:-1])
        y_of = [*y[:-1], y_last]
        jacobian = sp.ImmutableMatrix(n, n, lambda a, b: S[a] * (sp.KroneckerDelta(a, b) - S[b]))
        jac_z = sp.ImmutableMatrix(
            n, n, lambda a, b: s_of_z[a] * (sp.KroneckerDelta(a, b) - s_of_z[b])
        )
        definitions: dict[Any, Any] = {
            sigma: total,
            **dict(zip(S, s_of_z, strict=True)),
            y[-1]: y_last,
            # only the first-order behaviour of a loss enters the chain rule:
            # L stands for any loss whose gradient with respect to S is g there
            loss: sp.Add(*(gk * sk for gk, sk in zip(g, s_of_z, strict=True))),
            ce: -sp.Add(*(yk * sp.log(sk) for yk, sk in zip(y_of, s_of_z, strict=True))),
            vbar: sp.Add(*(sk * vk for sk, vk in zip(s_of_z, v, strict=True))),
            J: jac_z,
            Svec: sp.ImmutableMatrix(s_of_z),
            gvec: sp.ImmutableMatrix(g),
            vvec: sp.ImmutableMatrix(v),
        }
        return cls(
            n, z, S, y, g, v, sigma, loss, ce, vbar, J, Svec, gvec, vvec, definitions, jacobian
        )


@functools.cache
def index_symbols() -> tuple[Any, Any, Any, Any]:
    """The indices ``i, j, k`` and the size ``n`` of the indexed derivation."""
    i, j, k = (sp.Symbol(name, integer=True, positive=True) for name in "ijk")
    return i, j, k, sp.Symbol("n", integer=True, positive=True)


def _expand_sum(expr: Any) -> Any:
    """A Sum with integer limits written out term by term (nothing else evaluated)."""
    out = expr.function
    for var, lo, hi in reversed(expr.limits):
        out = uadd(*(out.xreplace({var: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)))
    return out


def concretize(expr: Any, world: World, values: Mapping[Any, int]) -> Any:
    """Indexed expression → explicit symbols of ``world`` at the given index values."""
    n_sym = index_symbols()[3]
    out = sp.sympify(expr).xreplace(
        {**{s: sp.Integer(v) for s, v in values.items()}, n_sym: sp.Integer(world.n)}
    )
    out = out.replace(lambda e: isinstance(e, sp.Sum), _expand_sum)
    bases = {"z": world.z, "S": world.S, "y": world.y, "g": world.g, "v": world.v}

    def explicit(e: Any) -> Any:
        return bases[str(e.base)][int(e.indices[0]) - 1]

    return out.replace(lambda e: isinstance(e, sp.Indexed) and e.indices[0].is_Integer, explicit)
