"""The indexed walk-through: the derivation in ``S_i``, ``z_j`` and sums over ``k``.

Used beyond :data:`~softgrad.explain.SYMBOLIC_LIMIT` outputs (or on request).
An indexed step claims an identity for every ``n``; each is verified on the
concrete instance ``n = 5`` for every pattern of equal and unequal indices,
which SymPy decides quickly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from softgrad.explain._model import Walk
from softgrad.explain._symbols import World, concretize, frac, index_symbols, partial, uadd, umul
from softgrad.explain._verify import Builder, general_rule

__all__ = ["indexed_walk"]

#: Size of the concrete instance on which indexed steps are verified.
_INDEXED_CHECK_N = 5


def indexed_walk(n: int) -> Walk:
    """Build and verify the indexed derivation, stated for ``n`` outputs."""
    w = World.build(_INDEXED_CHECK_N)
    b = Builder(w)
    i, j, k, n_sym = index_symbols()
    zI, sI, yI, gI, vI = (sp.IndexedBase(name) for name in ("z", "S", "y", "g", "v"))
    sig, vbar = w.sigma, w.vbar
    loss = w.loss
    ce = w.ce
    values = range(1, _INDEXED_CHECK_N + 1)

    def pairs(
        *names: Any, keep: Callable[[tuple[int, ...]], bool] = lambda t: True
    ) -> Callable[[Any, Any], list[tuple[Any, Any]]]:
        def make(lhs: Any, rhs: Any) -> list[tuple[Any, Any]]:
            out = []
            for combo in itertools.product(values, repeat=len(names)):
                if keep(combo):
                    vals = dict(zip(names, combo, strict=True))
                    out.append((concretize(lhs, w, vals), concretize(rhs, w, vals)))
            return out

        return make

    def add(title: str, rule: str, lhs: Any, rhs: Any, note: str = "", inst: Any = None) -> None:
        inst = inst or pairs(
            *sorted(
                (
                    s
                    for s in (i, j, k)
                    if s in (sp.sympify(lhs).free_symbols | sp.sympify(rhs).free_symbols)
                ),
                key=str,
            )
        )
        b.add(title, rule, lhs, rhs, note, inst(lhs, rhs))

    def ez(idx: Any) -> Any:
        return sp.exp(zI[idx])

    b.section = "The softmax unit"
    add(
        "The shared denominator Σ: every input contributes to it",
        "definition",
        sig,
        sp.Sum(ez(k), (k, 1, n_sym)),
        f"Here n = {n}. Each output depends on every input through Σ.",
    )
    add("Output i", "definition", sI[i], ez(i) / sig)
    add("The outputs sum to one", "algebra", sp.Sum(sI[i], (i, 1, n_sym)), sp.Integer(1))

    b.section = "∂Sᵢ/∂zⱼ: the four rules"
    add(
        "Sᵢ = e^zᵢ/Σ is a fraction; Σ always depends on zⱼ",
        "quotient",
        partial(sI[i], zI[j]),
        frac(uadd(umul(sig, partial(ez(i), zI[j])), -umul(ez(i), partial(sig, zI[j]))), sig**2),
    )
    add(
        "The denominator's derivative, term by term",
        "sum",
        partial(sig, zI[j]),
        sp.Sum(partial(ez(k), zI[j]), (k, 1, n_sym)),
    )
    add(
        "A term for another input vanishes",
        "independence",
        partial(ez(k), zI[j]),
        sp.Integer(0),
        "For k ≠ j.",
        pairs(j, k, keep=lambda t: t[0] != t[1]),
    )
    add("The term for zⱼ itself", "exponential", partial(ez(j), zI[j]), ez(j))
    add("So only one term of the sum survives", "algebra", partial(sig, zI[j]), ez(j))
    add(
        "Case i = j",
        "algebra",
        partial(sI[j], zI[j]),
        umul(sI[j], uadd(1, -sI[j])),
        "(Σe^zⱼ − e^zⱼe^zⱼ)/Σ² = Sⱼ(1 − Sⱼ).",
    )
    add(
        "Case i ≠ j",
        "algebra",
        partial(sI[i], zI[j]),
        -umul(sI[i], sI[j]),
        "(Σ·0 − e^zᵢe^zⱼ)/Σ² = −SᵢSⱼ.",
        pairs(i, j, keep=lambda t: t[0] != t[1]),
    )

    b.section = "The general rule"
    general_rule(b, values)

    b.section = "The Jacobian matrix"
    jac_ij = umul(sI[i], uadd(sp.KroneckerDelta(i, j), -sI[j]))
    add(
        "Symmetric",
        "property",
        partial(sI[i], zI[j]),
        partial(sI[j], zI[i]),
        "J = diag(S) − SSᵀ, and Jᵀ = J.",
    )
    add(
        "Every row sums to zero (so J is singular: 𝟙 is in its kernel)",
        "property",
        sp.Sum(partial(sI[i], zI[j]), (j, 1, n_sym)),
        sp.Integer(0),
    )
    add(
        "Positive semidefinite: a weighted sum of squares, with v̄ = Σₖ Sₖvₖ",
        "property",
        sp.Sum(sp.Sum(umul(vI[i], jac_ij, vI[j]), (j, 1, n_sym)), (i, 1, n_sym)),
        sp.Sum(umul(sI[i], uadd(vI[i], -vbar) ** 2), (i, 1, n_sym)),
    )

    b.section = "The chain rule: the derivatives add up"
    add(
        "For any loss L of the outputs, with upstream gradient gᵢ = ∂L/∂Sᵢ, "
        "zⱼ reaches L through every output: the paths add (they are not multiplied)",
        "chain",
        partial(loss, zI[j]),
        sp.Sum(umul(gI[i], partial(sI[i], zI[j])), (i, 1, n_sym)),
        "The per-output derivatives are added, each weighted by ∂L/∂Sᵢ.",
    )
    add(
        "The vector–Jacobian product",
        "algebra",
        partial(loss, zI[j]),
        umul(sI[j], uadd(gI[j], -sp.Sum(gI[k] * sI[k], (k, 1, n_sym)))),
        "∂L/∂z = Jᵀg = S ⊙ (g − (Sᵀg)𝟙): O(n) work, no n × n matrix.",
    )

    b.section = "Cross-entropy on top: ∂L/∂z = S − y"
    ce_sum = -sp.Sum(yI[k] * sp.log(sI[k]), (k, 1, n_sym))
    add("Cross-entropy with targets summing to one", "definition", ce, ce_sum)
    add(
        "Chain rule, with ∂L/∂Sᵢ = −yᵢ/Sᵢ",
        "chain",
        partial(ce, zI[j]),
        sp.Sum(umul(-yI[i] / sI[i], partial(sI[i], zI[j])), (i, 1, n_sym)),
    )
    add("Prediction minus target", "algebra", partial(ce, zI[j]), uadd(sI[j], -yI[j]))

    a_, c_ = sp.symbols("a c", integer=True, nonnegative=True)
    jacobian = sp.FunctionMatrix(
        n, n, sp.Lambda((a_, c_), sI[a_ + 1] * (sp.KroneckerDelta(a_, c_) - sI[c_ + 1]))
    )
    definitions: dict[Any, Any] = {
        sig: sp.Sum(ez(k), (k, 1, n)),
        sI[i]: ez(i) / sp.Sum(ez(k), (k, 1, n)),
        sI[j]: ez(j) / sp.Sum(ez(k), (k, 1, n)),
        n_sym: n,
    }
    # the derived rule itself, S_i(δ_ij − S_j), evaluated on every pair (i, j) at once
    (rule,) = [step for step in b.steps if step.rule == "cases"]
    s_i, s_j, delta = sp.symbols("s_i s_j delta", real=True)
    entry = sp.lambdify(
        (s_i, s_j, delta),
        rule.rhs.xreplace({sI[i]: s_i, sI[j]: s_j, sp.KroneckerDelta(i, j): delta}),
        "numpy",
    )

    def jacobian_at(s: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
        return entry(s[:, None], s[None, :], np.eye(s.shape[0]))

    return Walk(
        n=n,
        indexed=True,
        steps=tuple(b.steps),
        definitions=definitions,
        jacobian=jacobian,
        jacobian_at=jacobian_at,
    )
