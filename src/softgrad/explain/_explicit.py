"""The explicit walk-through: the post's derivation for ``z_1, …, z_n`` (``n <= 8``).

It works ∂S₁/∂z₁ and ∂S₂/∂z₁ rule by rule, states the general rule, the
Jacobian and its properties, the chain rule with a worked example in exact
fractions, and softmax + cross-entropy's ``S − y``. Every step is verified by
:class:`~softgrad.explain._verify.Builder` as it is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.diagonal import DiagMatrix

from softgrad.explain._model import DerivationError, Walk, subscript
from softgrad.explain._symbols import World, frac, partial, uadd, umul
from softgrad.explain._verify import Builder, general_rule

__all__ = ["explicit_walk"]

#: Largest ``n`` whose Jacobian determinant is expanded symbolically (it grows fast);
#: beyond it, singularity is shown by J𝟙 = 0.
_DET_LIMIT = 5


def explicit_walk(n: int) -> Walk:
    """Build and verify the explicit derivation for ``n`` outputs."""
    w = World.build(n)
    z, S, e = w.z, w.S, [sp.exp(zk) for zk in w.z]
    sig = w.sigma
    b = Builder(w)

    b.section = "The softmax unit"
    b.add(
        "The shared denominator Σ: every input contributes to it",
        "definition",
        sig,
        uadd(*e),
        "This common denominator is what makes the derivative tricky: "
        "each output depends on every input through Σ.",
    )
    for k in range(n):
        b.add(f"Output {k + 1}", "definition", S[k], e[k] / sig)
    if n > 1:
        b.add(
            "The outputs sum to one",
            "algebra",
            uadd(*S),
            sp.Integer(1),
            "Every Sᵢ is positive and they sum to one: a probability distribution over "
            "the n outputs, the p(class) that softgrad predict --proba prints.",
        )

    b.section = "∂S₁/∂z₁: an output with respect to its own input"
    z1, e1, s1 = z[0], e[0], S[0]
    quotient_11 = frac(uadd(umul(sig, partial(e1, z1)), -umul(e1, partial(sig, z1))), sig**2)
    b.add(
        "S₁ = e^z₁/Σ is a fraction whose numerator and denominator both depend on z₁",
        "quotient",
        partial(s1, z1),
        quotient_11,
    )
    b.add("The numerator's derivative", "exponential", partial(e1, z1), e1)
    b.add(
        "The denominator's derivative, term by term",
        "sum",
        partial(sig, z1),
        uadd(*(partial(ek, z1) for ek in e)),
    )
    if n > 1:
        b.add(
            "Only the k = 1 term depends on z₁",
            "independence",
            partial(sig, z1),
            uadd(partial(e1, z1), *([sp.Integer(0)] * (n - 1))),
            "∂e^zₖ/∂z₁ = e^zₖ · ∂zₖ/∂z₁ = 0 for k ≠ 1.",
        )
    b.add("So the denominator's derivative is", "exponential", partial(sig, z1), e1)
    b.add(
        "Put both derivatives into the quotient",
        "algebra",
        partial(s1, z1),
        frac(uadd(umul(sig, e1), -umul(e1, e1)), sig**2),
    )
    b.add(
        "Split the fraction",
        "algebra",
        partial(s1, z1),
        umul(e1 / sig, uadd(1, -e1 / sig)),
    )
    b.add(
        "Recognise S₁ = e^z₁/Σ twice",
        "definition",
        partial(s1, z1),
        umul(s1, uadd(1, -s1)),
        "The output times one minus itself.",
    )

    if n > 1:
        b.section = "∂S₂/∂z₁: an output with respect to another input"
        e2, s2 = e[1], S[1]
        b.add(
            "The same quotient rule; now only the denominator depends on z₁",
            "quotient",
            partial(s2, z1),
            frac(uadd(umul(sig, partial(e2, z1)), -umul(e2, partial(sig, z1))), sig**2),
        )
        b.add("The numerator does not depend on z₁", "independence", partial(e2, z1), sp.Integer(0))
        b.add(
            "Put in ∂e^z₂/∂z₁ = 0 and ∂Σ/∂z₁ = e^z₁",
            "algebra",
            partial(s2, z1),
            frac(uadd(umul(sig, 0), -umul(e2, e1)), sig**2),
        )
        b.add(
            "Split the fraction",
            "algebra",
            partial(s2, z1),
            -umul(e2 / sig, e1 / sig),
        )
        b.add(
            "Recognise S₂ and S₁",
            "definition",
            partial(s2, z1),
            -umul(s2, s1),
            "Minus the product of the two outputs.",
        )
        for k in range(2, n):
            b.add(
                f"The same steps for S{subscript(k + 1)}",
                "quotient",
                partial(S[k], z1),
                -umul(S[k], s1),
                "Quotient, independence, exponential and sum rules exactly as for ∂S₂/∂z₁.",
            )

    b.section = "The general rule"
    general_rule(b, range(1, n + 1))

    b.section = "The Jacobian matrix"
    derivs = sp.ImmutableMatrix(n, n, lambda a, c: partial(S[a], z[c]))
    b.add(
        "J collects every ∂Sᵢ/∂zⱼ: row i is output i, column j is input j",
        "matrix",
        derivs,
        w.jacobian,
    )
    b.add(
        "In matrix form: diag(S) minus the outer product of S with itself",
        "matrix",
        w.J,
        sp.MatAdd(DiagMatrix(w.Svec), -w.Svec * w.Svec.T, evaluate=False),
        "Applying J never needs the n × n matrix: J·v = S ⊙ v − S (Sᵀv) costs O(n).",
    )
    b.add(
        "Symmetric",
        "property",
        w.J.T,
        w.J,
        "∂Sᵢ/∂zⱼ = ∂Sⱼ/∂zᵢ = −SᵢSⱼ for i ≠ j." if n > 1 else "A 1 × 1 matrix is symmetric.",
    )
    b.add(
        "Every row sums to zero" if n <= _DET_LIMIT else "Every row sums to zero, so J is singular",
        "property",
        w.J * sp.OneMatrix(n, 1),
        sp.ZeroMatrix(n, 1),
        "Adding the same constant to every zⱼ leaves S unchanged, so J𝟙 = 0.",
    )
    v_terms = [umul(S[a], (w.v[a] - w.vbar) ** 2) for a in range(n)]
    b.add(
        "Positive semidefinite: a weighted sum of squares, with v̄ = S₁v₁ + … + Sₙvₙ",
        "property",
        w.vvec.T * w.J * w.vvec,
        sp.ImmutableMatrix([[uadd(*v_terms)]]),
        "Every Sᵢ > 0, so vᵀJv ≥ 0 for every v: it is the variance of v under S.",
    )
    if n <= _DET_LIMIT:
        b.add(
            "Singular (the matrix determinant lemma)",
            "property",
            sp.Determinant(w.J),
            sp.Integer(0),
            "det(diag(S) − SSᵀ) = S₁⋯Sₙ (1 − S₁ − … − Sₙ) = 0: 𝟙 spans the kernel.",
        )

    _chain_explicit(b)
    _cross_entropy_explicit(b)

    numeric = sp.lambdify(S, w.jacobian, "numpy")

    def jacobian_at(s: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
        return numeric(*s)

    return Walk(
        n=n,
        indexed=False,
        steps=tuple(b.steps),
        definitions=w.definitions,
        jacobian=w.jacobian,
        jacobian_at=jacobian_at,
        z=z,
        S=S,
    )


def _example_point(n: int) -> tuple[list[Any], list[Any], list[Any]]:
    """z_k = ln k, so S_k = k/(1 + … + n) is rational; a fixed upstream gradient g."""
    zs = [sp.log(k) for k in range(1, n + 1)]
    total = n * (n + 1) // 2
    ss = [sp.Rational(k, total) for k in range(1, n + 1)]
    pattern = [3, -1, 2, 1, -2, 4, -3, 1]
    gs = [sp.Integer(pattern[k % len(pattern)]) for k in range(n)]
    return zs, ss, gs


def _chain_explicit(b: Builder) -> None:
    w = b.world
    n, z, S, g = w.n, w.z, w.S, w.g
    z1, s1, loss = z[0], S[0], w.loss
    b.section = "The chain rule: the derivatives add up"
    b.add(
        "For any loss L of the outputs, with upstream gradient gᵢ = ∂L/∂Sᵢ, "
        "z₁ reaches L through every output: the paths add (they are not multiplied)",
        "chain",
        partial(loss, z1),
        uadd(*(umul(gk, partial(sk, z1)) for gk, sk in zip(g, S, strict=True))),
        "This answers the post's readers: the per-output derivatives are added, "
        "each weighted by the upstream gradient ∂L/∂Sᵢ.",
    )
    terms = [umul(g[0], s1, uadd(1, -s1))] + [-umul(g[k], S[k], s1) for k in range(1, n)]
    b.add("Put in the general rule", "algebra", partial(loss, z1), uadd(*terms))
    b.add(
        "Factor out S₁",
        "algebra",
        partial(loss, z1),
        umul(s1, uadd(g[0], umul(-1, uadd(*(umul(g[k], S[k]) for k in range(n)))))),
    )
    sg = uadd(*(umul(g[k], S[k]) for k in range(n)))
    b.add(
        "For every input at once: the vector–Jacobian product Jᵀg",
        "matrix",
        sp.ImmutableMatrix([partial(loss, zk) for zk in z]),
        sp.ImmutableMatrix([umul(S[c], uadd(g[c], umul(-1, sg))) for c in range(n)]),
        "∂L/∂z = Jᵀg = S ⊙ (g − (Sᵀg)𝟙): O(n) work, no n × n matrix.",
    )

    zs, ss, gs = _example_point(n)
    jac = [[ss[a] * (int(a == c) - ss[c]) for c in range(n)] for a in range(n)]
    z_text = ", ".join("0" if k == 1 else f"ln {k}" for k in range(1, n + 1))
    s_text = ", ".join(str(s) for s in ss)
    g_text = ", ".join(str(x) for x in gs)
    b.add(
        f"A worked example: at z = ({z_text}), S = ({s_text}); take g = ({g_text})",
        "numeric",
        uadd(*(umul(gs[a], jac[a][0]) for a in range(n))),
        sp.Add(*(gs[a] * jac[a][0] for a in range(n))),
        "∂L/∂z₁ = g₁·∂S₁/∂z₁ + g₂·∂S₂/∂z₁ + …: one term per output, added."
        if n > 1
        else "∂L/∂z₁ = g₁·∂S₁/∂z₁: one output, one term.",
    )
    jt = sp.ImmutableMatrix(jac).T
    gv = sp.ImmutableMatrix(gs)
    b.add(
        "The whole gradient at that point, Jᵀg",
        "numeric",
        sp.MatMul(jt, gv, evaluate=False),
        jt * gv,
        "Check: S ⊙ (g − (Sᵀg)𝟙) gives the same vector.",
    )
    # the example's numbers are the derived Jacobian at that point
    at_point = w.jacobian.subs(dict(zip(S, ss, strict=True)))
    if sp.ImmutableMatrix(jac) != at_point or any(
        sp.exp(zk) / sp.Add(*(sp.exp(x) for x in zs)) != sk for zk, sk in zip(zs, ss, strict=True)
    ):  # pragma: no cover - guards _example_point
        msg = "the worked example does not match the derived Jacobian"
        raise DerivationError(msg)


def _cross_entropy_explicit(b: Builder) -> None:
    w = b.world
    n, z, S, y, ce = w.n, w.z, w.S, w.y, w.ce
    z1, s1 = z[0], S[0]
    b.section = "Cross-entropy on top: ∂L/∂z = S − y"
    b.add(
        "Cross-entropy with targets y₁ + … + yₙ = 1 (for instance one-hot)",
        "definition",
        ce,
        -uadd(*(umul(yk, sp.log(sk)) for yk, sk in zip(y, S, strict=True))),
    )
    b.add(
        "Chain rule, with ∂L/∂Sᵢ = −yᵢ/Sᵢ (the derivative of the logarithm)",
        "chain",
        partial(ce, z1),
        uadd(*(umul(-yk / sk, partial(sk, z1)) for yk, sk in zip(y, S, strict=True))),
    )
    terms = [umul(-y[0] / s1, s1, uadd(1, -s1))] + [
        umul(y[k] / S[k], S[k], s1) for k in range(1, n)
    ]
    b.add("Put in the general rule", "algebra", partial(ce, z1), uadd(*terms))
    b.add(
        "Each Sᵢ cancels",
        "algebra",
        partial(ce, z1),
        uadd(-y[0], umul(s1, uadd(*y))),
    )
    b.add(
        "The targets sum to one",
        "algebra",
        partial(ce, z1),
        uadd(s1, -y[0]),
    )
    b.add(
        "For every input at once",
        "matrix",
        sp.ImmutableMatrix([partial(ce, zk) for zk in z]),
        sp.ImmutableMatrix([uadd(sk, -yk) for sk, yk in zip(S, y, strict=True)]),
        "The gradient of softmax + cross-entropy is prediction minus target: "
        "no Jacobian, no division by Sᵢ.",
    )
