r"""The post's derivation of the softmax derivative, generated and machine-checked.

Design notes (read once, they hold for every step here):

* A step is an equation ``lhs = rhs`` between SymPy expressions plus the rule it
  applies. Abbreviations (``S_i``, the shared denominator ``Σ``, the Jacobian
  ``J``, the vector ``S``, a loss ``L``) stay symbols in the step so that it reads
  like the post; :attr:`Derivation.definitions` maps each of them to its
  expression in ``z_1, …, z_n``, so ``(lhs - rhs).subs(definitions).doit()`` is
  an expression in ``z`` (and the free quantities ``y``, ``g``, ``v``) alone.
* Derivatives of the abbreviations are kept unevaluated (``Derivative(S_1, z_1)``)
  until the definitions are substituted; only then does SymPy differentiate.
* Every step is checked when it is built, twice: symbolically (``z_k = log x_k``
  turns every expression into a rational function of ``x``, and ``cancel``
  decides whether the difference is zero; ``simplify`` is the fallback) and
  numerically (both sides at three random points). A failure raises
  :class:`DerivationError`: a wrong step is a bug, it is never printed.
* Up to :data:`SYMBOLIC_LIMIT` outputs the derivation is written out for the
  concrete ``n``. Beyond it, the steps use indexed symbols (``S_i``, ``z_j``,
  sums over ``k = 1..n``) and each is checked on the concrete instance
  ``n = 5`` for every pattern of equal and unequal indices: an indexed step
  claims an identity for all n, and a concrete instance is what SymPy can
  decide quickly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.polys.matrices import DomainMatrix

__all__ = [
    "RULES",
    "SYMBOLIC_LIMIT",
    "CheckResult",
    "Derivation",
    "DerivationError",
    "Step",
    "derive",
]

#: Largest ``n`` derived with explicit symbols ``z_1, …, z_n``; larger ``n`` use
#: indexed symbols. ``derive(8)`` builds and verifies in a few seconds.
SYMBOLIC_LIMIT = 8

#: Largest ``n`` whose Jacobian determinant is expanded symbolically (it grows fast);
#: beyond it, singularity is shown by J𝟙 = 0.
_DET_LIMIT = 5

#: Size of the concrete instance on which indexed steps are verified.
_INDEXED_CHECK_N = 5

#: The rules a step may apply, by name, with the sentence the renderers print.
RULES: dict[str, str] = {
    "definition": "definition",
    "independence": "Rule 1, independence: ∂zₖ/∂zⱼ = 0 for k ≠ j",
    "exponential": "Rule 2, exponential: ∂e^z/∂z = e^z",
    "quotient": "Rule 3, quotient: ∂(f/g) = (g·∂f − f·∂g)/g²",
    "sum": "Rule 4, sum: the derivative of a sum is the sum of the derivatives",
    "algebra": "algebra",
    "cases": "both cases in one formula, with the Kronecker delta δᵢⱼ",
    "matrix": "matrix form",
    "property": "property of the Jacobian",
    "chain": "chain rule: the paths through every Sᵢ add up",
    "numeric": "arithmetic at one point",
}


class DerivationError(RuntimeError):
    """A generated step failed verification (a bug in softgrad, never a user error)."""


@dataclass(frozen=True, eq=False)
class Step:
    """One equation of a derivation and the rule that justifies it.

    Attributes
    ----------
    section : str
        Heading of the part of the derivation the step belongs to.
    title : str
        What the step says, in words (Unicode).
    rule : str
        Name of the rule applied, a key of :data:`RULES`.
    lhs, rhs : sympy.Basic
        The two sides of the equation (scalars or matrices).
    note : str
        A sentence of explanation (Unicode), possibly empty.
    instances : tuple of (sympy.Basic, sympy.Basic)
        The concrete equations that were verified: ``((lhs, rhs),)`` for an
        explicit step, one pair per index pattern for an indexed step.
    """

    section: str
    title: str
    rule: str
    lhs: Any
    rhs: Any
    note: str = ""
    instances: tuple[tuple[Any, Any], ...] = ()

    @property
    def rule_text(self) -> str:
        """The rule as a sentence, e.g. ``"Rule 3, quotient: …"``."""
        return RULES[self.rule]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :meth:`Derivation.check`: the derived Jacobian against two references.

    Attributes
    ----------
    z : numpy.ndarray
        The point, shape ``(n,)``.
    jacobian : numpy.ndarray
        The derived Jacobian evaluated at ``z``, shape ``(n, n)``.
    max_abs_error_vs_softgrad : float or None
        ``max |J − softgrad.softmax_jacobian(z)|``; None where softgrad does not
        provide ``softmax_jacobian``.
    max_abs_error_vs_finite_differences : float
        ``max |J − J_fd|`` with a five-point central stencil, step ``1e-3``.
    """

    z: np.ndarray[Any, np.dtype[np.float64]]
    jacobian: np.ndarray[Any, np.dtype[np.float64]]
    max_abs_error_vs_softgrad: float | None
    max_abs_error_vs_finite_differences: float

    def ok(self, atol: float = 1e-8) -> bool:
        """Whether both errors are at most ``atol``."""
        sg = self.max_abs_error_vs_softgrad
        return (sg is None or sg <= atol) and self.max_abs_error_vs_finite_differences <= atol


@dataclass(frozen=True, eq=False)
class Derivation:
    """The derivation of ∂S_i/∂z_j for a softmax unit with ``n`` outputs.

    Build one with :func:`derive`; every step was verified when it was built.

    Attributes
    ----------
    n : int
        Number of outputs.
    indexed : bool
        True when the steps use indexed symbols (``n >`` :data:`SYMBOLIC_LIMIT`).
    steps : tuple of Step
        The steps in order.
    definitions : dict
        Abbreviation → its expression in ``z`` (and ``y``, ``g``, ``v``).
    jacobian : sympy.Matrix or sympy.FunctionMatrix
        ``J[i, j] = S_i(δ_ij − S_j)`` in the symbols ``S``; an explicit ``n × n``
        Matrix when not ``indexed``, else a lazy ``FunctionMatrix``.
    z, S : tuple of sympy.Symbol
        The input and output symbols (empty when ``indexed``).
    """

    n: int
    indexed: bool
    steps: tuple[Step, ...]
    definitions: dict[Any, Any]
    jacobian: Any
    z: tuple[Any, ...] = ()
    S: tuple[Any, ...] = ()
    _jacobian_numeric: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def sections(self) -> tuple[str, ...]:
        """Section headings, in order of first appearance."""
        return tuple(dict.fromkeys(step.section for step in self.steps))

    def expand(self, expr: Any) -> Any:
        """Substitute :attr:`definitions` into ``expr`` and evaluate derivatives.

        Examples
        --------
        >>> from softgrad.explain import derive
        >>> d = derive(2)
        >>> d.expand(d.S[0])
        exp(z_1)/(exp(z_1) + exp(z_2))
        """
        return sp.sympify(expr).subs(self.definitions).doit()

    def check(self, z: Sequence[float] | np.ndarray[Any, Any]) -> CheckResult:
        r"""Evaluate the derived Jacobian at ``z`` and compare it with two references.

        Parameters
        ----------
        z : array_like, shape (n,)
            Finite real logits, one per output.

        Returns
        -------
        CheckResult
            The Jacobian and its largest absolute error against
            ``softgrad.softmax_jacobian`` and against five-point finite
            differences of the softmax,
            :math:`(-S(z+2h) + 8S(z+h) - 8S(z-h) + S(z-2h))/(12h)`.

        Raises
        ------
        ValueError
            If ``z`` does not have shape ``(n,)`` or is not finite.
        TypeError
            If ``z`` is not real numbers.

        Examples
        --------
        >>> from softgrad.explain import derive
        >>> result = derive(3).check([1.0, 2.0, 3.0])
        >>> result.jacobian.shape
        (3, 3)
        >>> round(float(result.jacobian[0, 0]), 4), round(float(result.jacobian[0, 1]), 4)
        (0.0819, -0.022)
        >>> result.max_abs_error_vs_finite_differences < 1e-10
        True
        """
        point = _as_point(z, self.n)
        s = _softmax(point)
        if self._jacobian_numeric is not None:
            jac = np.asarray(self._jacobian_numeric(*s), dtype=np.float64)
        else:  # indexed: the derived rule J_ij = S_i(δ_ij − S_j) in matrix form
            jac = np.diag(s) - np.outer(s, s)
        fd = _five_point_jacobian(point)
        try:
            from softgrad import softmax_jacobian  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            err_sg: float | None = None
        else:
            ref = np.asarray(softmax_jacobian(point), dtype=np.float64)
            err_sg = float(np.max(np.abs(jac - ref)))
        return CheckResult(
            z=point,
            jacobian=jac,
            max_abs_error_vs_softgrad=err_sg,
            max_abs_error_vs_finite_differences=float(np.max(np.abs(jac - fd))),
        )

    def diagram(self, path: str | Path) -> Path:
        """Draw the dependency diagram (every z_j feeds every S_i through Σ) to ``path``.

        See :func:`softgrad.explain.draw_dependencies`.
        """
        from softgrad.explain._diagram import draw_dependencies

        return draw_dependencies(self.n, path)

    def to_text(self) -> str:
        """The derivation as terminal text with Unicode math."""
        from softgrad.explain._render import to_text

        return to_text(self)

    def to_markdown(self) -> str:
        """The derivation as Markdown with ``$$…$$`` LaTeX math."""
        from softgrad.explain._render import to_markdown

        return to_markdown(self)

    def to_latex(self) -> str:
        """The derivation as a complete LaTeX document (pdflatex)."""
        from softgrad.explain._render import to_latex

        return to_latex(self)

    def to_html(self) -> str:
        """The derivation as one self-contained HTML page with MathML."""
        from softgrad.explain._render import to_html

        return to_html(self)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        kind = "indexed" if self.indexed else "explicit"
        return f"<Derivation n={self.n} ({kind}), {len(self.steps)} steps>"


# --------------------------------------------------------------------------- helpers


def _sub(k: int | str) -> str:
    """``12 → '₁₂'``, ``'i' → 'ᵢ'``: Unicode subscripts for titles."""
    table = str.maketrans("0123456789ijkn", "₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₙ")
    return str(k).translate(table)


def _as_point(z: Any, n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    raw = np.asarray(z)
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    ):
        msg = f"z must be real numbers (int or float), got dtype {raw.dtype}"
        raise TypeError(msg)
    point = raw.astype(np.float64)
    if point.shape != (n,):
        msg = (
            f"z must have shape ({n},): one logit per output of this n={n} derivation, "
            f"got shape {point.shape}"
        )
        raise ValueError(msg)
    if not np.all(np.isfinite(point)):
        msg = f"z must be finite, got {point.tolist()}"
        raise ValueError(msg)
    return point


def _softmax(z: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    # shift by the max: exp never overflows and the value is unchanged
    e = np.exp(z - np.max(z))
    out: np.ndarray[Any, np.dtype[np.float64]] = e / np.sum(e)
    return out


def _five_point_jacobian(
    z: np.ndarray[Any, np.dtype[np.float64]], h: float = 1e-3
) -> np.ndarray[Any, np.dtype[np.float64]]:
    n = z.shape[0]
    jac = np.empty((n, n))
    for j in range(n):
        step = np.zeros(n)
        step[j] = h
        jac[:, j] = (
            -_softmax(z + 2 * step)
            + 8 * _softmax(z + step)
            - 8 * _softmax(z - step)
            + _softmax(z - 2 * step)
        ) / (12 * h)
    return jac


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        msg = f"n must be an int >= 1 (the number of softmax outputs), got {n!r} of type {type(n).__name__}"
        raise TypeError(msg)
    if n < 1:
        msg = f"n must be an int >= 1 (the number of softmax outputs), got n={n}"
        raise ValueError(msg)
    return int(n)


def _uadd(*args: Any) -> Any:
    return sp.Add(*args, evaluate=False)


def _umul(*args: Any) -> Any:
    return sp.Mul(*args, evaluate=False)


def _frac(num: Any, den: Any) -> Any:
    return sp.Mul(num, sp.Pow(den, -1, evaluate=False), evaluate=False)


def _d(expr: Any, var: Any) -> Any:
    return sp.Derivative(expr, var, evaluate=False)


# ------------------------------------------------------------------- verification


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


def _verify(lhs: Any, rhs: Any, definitions: Mapping[Any, Any], where: str) -> None:
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


# ----------------------------------------------------------------------- symbols


@dataclass(frozen=True)
class _World:
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
    def build(cls, n: int) -> _World:
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


class _Builder:
    def __init__(self, world: _World) -> None:
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
            _verify(a, b, self.world.definitions, f"{title} [{k}]")
        self.steps.append(Step(self.section, title, rule, lhs, rhs, note, pairs))


# ------------------------------------------------------------- explicit derivation


def _explicit(n: int) -> Derivation:
    w = _World.build(n)
    z, S, e = w.z, w.S, [sp.exp(zk) for zk in w.z]
    sig = w.sigma
    b = _Builder(w)

    b.section = "The softmax unit"
    b.add(
        "The shared denominator Σ: every input contributes to it",
        "definition",
        sig,
        _uadd(*e),
        "This common denominator is what makes the derivative tricky: "
        "each output depends on every input through Σ.",
    )
    for k in range(n):
        b.add(f"Output {k + 1}", "definition", S[k], e[k] / sig)
    if n > 1:
        b.add(
            "The outputs sum to one",
            "algebra",
            _uadd(*S),
            sp.Integer(1),
            "They can be treated as a measure of certainty (they are not probabilities).",
        )

    b.section = "∂S₁/∂z₁: an output with respect to its own input"
    z1, e1, s1 = z[0], e[0], S[0]
    quotient_11 = _frac(_uadd(_umul(sig, _d(e1, z1)), -_umul(e1, _d(sig, z1))), sig**2)
    b.add(
        "S₁ = e^z₁/Σ is a fraction whose numerator and denominator both depend on z₁",
        "quotient",
        _d(s1, z1),
        quotient_11,
    )
    b.add("The numerator's derivative", "exponential", _d(e1, z1), e1)
    b.add(
        "The denominator's derivative, term by term",
        "sum",
        _d(sig, z1),
        _uadd(*(_d(ek, z1) for ek in e)),
    )
    if n > 1:
        b.add(
            "Only the k = 1 term depends on z₁",
            "independence",
            _d(sig, z1),
            _uadd(_d(e1, z1), *([sp.Integer(0)] * (n - 1))),
            "∂e^zₖ/∂z₁ = e^zₖ · ∂zₖ/∂z₁ = 0 for k ≠ 1.",
        )
    b.add("So the denominator's derivative is", "exponential", _d(sig, z1), e1)
    b.add(
        "Put both derivatives into the quotient",
        "algebra",
        _d(s1, z1),
        _frac(_uadd(_umul(sig, e1), -_umul(e1, e1)), sig**2),
    )
    b.add(
        "Split the fraction",
        "algebra",
        _d(s1, z1),
        _umul(e1 / sig, _uadd(1, -e1 / sig)),
    )
    b.add(
        "Recognise S₁ = e^z₁/Σ twice",
        "definition",
        _d(s1, z1),
        _umul(s1, _uadd(1, -s1)),
        "The output times one minus itself.",
    )

    if n > 1:
        b.section = "∂S₂/∂z₁: an output with respect to another input"
        e2, s2 = e[1], S[1]
        b.add(
            "The same quotient rule; now only the denominator depends on z₁",
            "quotient",
            _d(s2, z1),
            _frac(_uadd(_umul(sig, _d(e2, z1)), -_umul(e2, _d(sig, z1))), sig**2),
        )
        b.add("The numerator does not depend on z₁", "independence", _d(e2, z1), sp.Integer(0))
        b.add(
            "Put in ∂e^z₂/∂z₁ = 0 and ∂Σ/∂z₁ = e^z₁",
            "algebra",
            _d(s2, z1),
            _frac(_uadd(_umul(sig, 0), -_umul(e2, e1)), sig**2),
        )
        b.add(
            "Split the fraction",
            "algebra",
            _d(s2, z1),
            -_umul(e2 / sig, e1 / sig),
        )
        b.add(
            "Recognise S₂ and S₁",
            "definition",
            _d(s2, z1),
            -_umul(s2, s1),
            "Minus the product of the two outputs.",
        )
        for k in range(2, n):
            b.add(
                f"The same steps for S{_sub(k + 1)}",
                "quotient",
                _d(S[k], z1),
                -_umul(S[k], s1),
                "Quotient, independence, exponential and sum rules exactly as for ∂S₂/∂z₁.",
            )

    b.section = "The general rule"
    _general_rule(b, n, range(1, n + 1))

    b.section = "The Jacobian matrix"
    derivs = sp.ImmutableMatrix(n, n, lambda a, c: _d(S[a], z[c]))
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
    b.add("Symmetric", "property", w.J.T, w.J, "∂Sᵢ/∂zⱼ = ∂Sⱼ/∂zᵢ = −SᵢSⱼ for i ≠ j.")
    b.add(
        "Every row sums to zero" if n <= _DET_LIMIT else "Every row sums to zero, so J is singular",
        "property",
        w.J * sp.OneMatrix(n, 1),
        sp.ZeroMatrix(n, 1),
        "Adding the same constant to every zⱼ leaves S unchanged, so J𝟙 = 0.",
    )
    v_terms = [_umul(S[a], (w.v[a] - w.vbar) ** 2) for a in range(n)]
    b.add(
        "Positive semidefinite: a weighted sum of squares, with v̄ = S₁v₁ + … + Sₙvₙ",
        "property",
        w.vvec.T * w.J * w.vvec,
        sp.ImmutableMatrix([[_uadd(*v_terms)]]),
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

    return Derivation(
        n=n,
        indexed=False,
        steps=tuple(b.steps),
        definitions=w.definitions,
        jacobian=w.jacobian,
        z=z,
        S=S,
        _jacobian_numeric=sp.lambdify(S, w.jacobian, "numpy"),
    )


def _general_rule(b: _Builder, n_check: int, values: Iterable[int]) -> None:
    i, j = _index_symbols()[:2]
    zI, sI = sp.IndexedBase("z"), sp.IndexedBase("S")
    lhs = _d(sI[i], zI[j])
    rhs = _umul(sI[i], _uadd(sp.KroneckerDelta(i, j), -sI[j]))
    vals = list(values)
    b.add(
        "∂Sᵢ/∂zⱼ for every i and j",
        "cases",
        lhs,
        rhs,
        "δᵢⱼ is 1 when i = j and 0 otherwise: i = j gives Sᵢ(1 − Sᵢ), "
        "i ≠ j gives −SᵢSⱼ, as worked out above.",
        [
            (_concretize(lhs, b.world, {i: a, j: c}), _concretize(rhs, b.world, {i: a, j: c}))
            for a, c in itertools.product(vals, vals)
        ],
    )


def _example_point(n: int) -> tuple[list[Any], list[Any], list[Any]]:
    """z_k = ln k, so S_k = k/(1 + … + n) is rational; a fixed upstream gradient g."""
    zs = [sp.log(k) for k in range(1, n + 1)]
    total = n * (n + 1) // 2
    ss = [sp.Rational(k, total) for k in range(1, n + 1)]
    pattern = [3, -1, 2, 1, -2, 4, -3, 1]
    gs = [sp.Integer(pattern[k % len(pattern)]) for k in range(n)]
    return zs, ss, gs


def _chain_explicit(b: _Builder) -> None:
    w = b.world
    n, z, S, g = w.n, w.z, w.S, w.g
    z1, s1, loss = z[0], S[0], w.loss
    b.section = "The chain rule: the derivatives add up"
    b.add(
        "For any loss L of the outputs, with upstream gradient gᵢ = ∂L/∂Sᵢ, "
        "z₁ reaches L through every output: the paths add (they are not multiplied)",
        "chain",
        _d(loss, z1),
        _uadd(*(_umul(gk, _d(sk, z1)) for gk, sk in zip(g, S, strict=True))),
        "This answers the post's readers: the per-output derivatives are added, "
        "each weighted by the upstream gradient ∂L/∂Sᵢ.",
    )
    terms = [_umul(g[0], s1, _uadd(1, -s1))] + [-_umul(g[k], S[k], s1) for k in range(1, n)]
    b.add("Put in the general rule", "algebra", _d(loss, z1), _uadd(*terms))
    b.add(
        "Factor out S₁",
        "algebra",
        _d(loss, z1),
        _umul(s1, _uadd(g[0], _umul(-1, _uadd(*(_umul(g[k], S[k]) for k in range(n)))))),
    )
    sg = _uadd(*(_umul(g[k], S[k]) for k in range(n)))
    b.add(
        "For every input at once: the vector–Jacobian product Jᵀg",
        "matrix",
        sp.ImmutableMatrix([_d(loss, zk) for zk in z]),
        sp.ImmutableMatrix([_umul(S[c], _uadd(g[c], _umul(-1, sg))) for c in range(n)]),
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
        _uadd(*(_umul(gs[a], jac[a][0]) for a in range(n))),
        sp.Add(*(gs[a] * jac[a][0] for a in range(n))),
        "∂L/∂z₁ = g₁·∂S₁/∂z₁ + g₂·∂S₂/∂z₁ + …: one term per output, added.",
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


def _cross_entropy_explicit(b: _Builder) -> None:
    w = b.world
    n, z, S, y, ce = w.n, w.z, w.S, w.y, w.ce
    z1, s1 = z[0], S[0]
    b.section = "Cross-entropy on top: ∂L/∂z = S − y"
    b.add(
        "Cross-entropy with targets y₁ + … + yₙ = 1 (for instance one-hot)",
        "definition",
        ce,
        -_uadd(*(_umul(yk, sp.log(sk)) for yk, sk in zip(y, S, strict=True))),
    )
    b.add(
        "Chain rule, with ∂L/∂Sᵢ = −yᵢ/Sᵢ (the derivative of the logarithm)",
        "chain",
        _d(ce, z1),
        _uadd(*(_umul(-yk / sk, _d(sk, z1)) for yk, sk in zip(y, S, strict=True))),
    )
    terms = [_umul(-y[0] / s1, s1, _uadd(1, -s1))] + [
        _umul(y[k] / S[k], S[k], s1) for k in range(1, n)
    ]
    b.add("Put in the general rule", "algebra", _d(ce, z1), _uadd(*terms))
    b.add(
        "Each Sᵢ cancels",
        "algebra",
        _d(ce, z1),
        _uadd(-y[0], _umul(s1, _uadd(*y))),
    )
    b.add(
        "The targets sum to one",
        "algebra",
        _d(ce, z1),
        _uadd(s1, -y[0]),
    )
    b.add(
        "For every input at once",
        "matrix",
        sp.ImmutableMatrix([_d(ce, zk) for zk in z]),
        sp.ImmutableMatrix([_uadd(sk, -yk) for sk, yk in zip(S, y, strict=True)]),
        "The gradient of softmax + cross-entropy is prediction minus target: "
        "no Jacobian, no division by Sᵢ.",
    )


# -------------------------------------------------------------- indexed derivation


@functools.cache
def _index_symbols() -> tuple[Any, Any, Any, Any]:
    i, j, k = (sp.Symbol(name, integer=True, positive=True) for name in "ijk")
    return i, j, k, sp.Symbol("n", integer=True, positive=True)


def _expand_sum(expr: Any) -> Any:
    """A Sum with integer limits written out term by term (nothing else evaluated)."""
    out = expr.function
    for var, lo, hi in reversed(expr.limits):
        out = _uadd(*(out.xreplace({var: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)))
    return out


def _concretize(expr: Any, world: _World, values: Mapping[Any, int]) -> Any:
    """Indexed expression → explicit symbols of ``world`` at the given index values."""
    n_sym = _index_symbols()[3]
    out = sp.sympify(expr).xreplace(
        {**{s: sp.Integer(v) for s, v in values.items()}, n_sym: sp.Integer(world.n)}
    )
    out = out.replace(lambda e: isinstance(e, sp.Sum), _expand_sum)
    bases = {"z": world.z, "S": world.S, "y": world.y, "g": world.g, "v": world.v}

    def explicit(e: Any) -> Any:
        return bases[str(e.base)][int(e.indices[0]) - 1]

    return out.replace(lambda e: isinstance(e, sp.Indexed) and e.indices[0].is_Integer, explicit)


def _indexed(n: int) -> Derivation:
    w = _World.build(_INDEXED_CHECK_N)
    b = _Builder(w)
    i, j, k, n_sym = _index_symbols()
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
                    out.append((_concretize(lhs, w, vals), _concretize(rhs, w, vals)))
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
        _d(sI[i], zI[j]),
        _frac(_uadd(_umul(sig, _d(ez(i), zI[j])), -_umul(ez(i), _d(sig, zI[j]))), sig**2),
    )
    add(
        "The denominator's derivative, term by term",
        "sum",
        _d(sig, zI[j]),
        sp.Sum(_d(ez(k), zI[j]), (k, 1, n_sym)),
    )
    add(
        "A term for another input vanishes",
        "independence",
        _d(ez(k), zI[j]),
        sp.Integer(0),
        "For k ≠ j.",
        pairs(j, k, keep=lambda t: t[0] != t[1]),
    )
    add("The term for zⱼ itself", "exponential", _d(ez(j), zI[j]), ez(j))
    add("So only one term of the sum survives", "algebra", _d(sig, zI[j]), ez(j))
    add(
        "Case i = j",
        "algebra",
        _d(sI[j], zI[j]),
        _umul(sI[j], _uadd(1, -sI[j])),
        "(Σe^zⱼ − e^zⱼe^zⱼ)/Σ² = Sⱼ(1 − Sⱼ).",
    )
    add(
        "Case i ≠ j",
        "algebra",
        _d(sI[i], zI[j]),
        -_umul(sI[i], sI[j]),
        "(Σ·0 − e^zᵢe^zⱼ)/Σ² = −SᵢSⱼ.",
        pairs(i, j, keep=lambda t: t[0] != t[1]),
    )

    b.section = "The general rule"
    _general_rule(b, _INDEXED_CHECK_N, values)

    b.section = "The Jacobian matrix"
    jac_ij = _umul(sI[i], _uadd(sp.KroneckerDelta(i, j), -sI[j]))
    add(
        "Symmetric",
        "property",
        _d(sI[i], zI[j]),
        _d(sI[j], zI[i]),
        "J = diag(S) − SSᵀ, and Jᵀ = J.",
    )
    add(
        "Every row sums to zero (so J is singular: 𝟙 is in its kernel)",
        "property",
        sp.Sum(_d(sI[i], zI[j]), (j, 1, n_sym)),
        sp.Integer(0),
    )
    add(
        "Positive semidefinite: a weighted sum of squares, with v̄ = Σₖ Sₖvₖ",
        "property",
        sp.Sum(sp.Sum(_umul(vI[i], jac_ij, vI[j]), (j, 1, n_sym)), (i, 1, n_sym)),
        sp.Sum(_umul(sI[i], _uadd(vI[i], -vbar) ** 2), (i, 1, n_sym)),
    )

    b.section = "The chain rule: the derivatives add up"
    add(
        "For any loss L of the outputs, with upstream gradient gᵢ = ∂L/∂Sᵢ, "
        "zⱼ reaches L through every output: the paths add (they are not multiplied)",
        "chain",
        _d(loss, zI[j]),
        sp.Sum(_umul(gI[i], _d(sI[i], zI[j])), (i, 1, n_sym)),
        "The per-output derivatives are added, each weighted by ∂L/∂Sᵢ.",
    )
    add(
        "The vector–Jacobian product",
        "algebra",
        _d(loss, zI[j]),
        _umul(sI[j], _uadd(gI[j], -sp.Sum(gI[k] * sI[k], (k, 1, n_sym)))),
        "∂L/∂z = Jᵀg = S ⊙ (g − (Sᵀg)𝟙): O(n) work, no n × n matrix.",
    )

    b.section = "Cross-entropy on top: ∂L/∂z = S − y"
    ce_sum = -sp.Sum(yI[k] * sp.log(sI[k]), (k, 1, n_sym))
    add("Cross-entropy with targets summing to one", "definition", ce, ce_sum)
    add(
        "Chain rule, with ∂L/∂Sᵢ = −yᵢ/Sᵢ",
        "chain",
        _d(ce, zI[j]),
        sp.Sum(_umul(-yI[i] / sI[i], _d(sI[i], zI[j])), (i, 1, n_sym)),
    )
    add("Prediction minus target", "algebra", _d(ce, zI[j]), _uadd(sI[j], -yI[j]))

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
    return Derivation(
        n=n, indexed=True, steps=tuple(b.steps), definitions=definitions, jacobian=jacobian
    )


# ----------------------------------------------------------------------- public


@functools.lru_cache(maxsize=32)
def _derive_cached(n: int, indexed: bool) -> Derivation:
    return _indexed(n) if indexed else _explicit(n)


def derive(n: int = 3, *, indexed: bool | None = None) -> Derivation:
    r"""Derive ∂S_i/∂z_j for a softmax unit with ``n`` outputs, step by step, verified.

    Parameters
    ----------
    n : int, default 3
        Number of outputs (the post's network has 3). Must be an int ``>= 1``.
    indexed : bool, optional
        Write the steps with indexed symbols (``S_i``, ``z_j``, sums over
        ``k``) instead of ``z_1, …, z_n``. Default: only when
        ``n >`` :data:`SYMBOLIC_LIMIT` (8).

    Returns
    -------
    Derivation
        The steps (each naming its rule), the Jacobian, renderers and a
        numeric :meth:`~Derivation.check`.

    Raises
    ------
    TypeError
        If ``n`` is not an int (bool and float are refused too).
    ValueError
        If ``n < 1``.

    Notes
    -----
    The derivation follows the post: with
    :math:`\Sigma = \sum_k e^{z_k}` and :math:`S_i = e^{z_i}/\Sigma`, the
    quotient, exponential, sum and independence rules give

    .. math::

        \frac{\partial S_i}{\partial z_j} = S_i(\delta_{ij} - S_j),
        \qquad J = \operatorname{diag}(S) - S S^\top,

    the chain rule adds the paths through every output,
    :math:`\partial L/\partial z_j = \sum_i \partial L/\partial S_i \cdot
    \partial S_i/\partial z_j`, and cross-entropy
    :math:`L = -\sum_i y_i \log S_i` gives :math:`\partial L/\partial z = S - y`.
    Every step is proved by SymPy and confirmed at random points when it is
    built; results are cached per ``n``.

    Examples
    --------
    >>> from softgrad.explain import derive
    >>> d = derive(3)
    >>> d.steps[5].rule, d.steps[5].lhs, d.steps[5].rhs
    ('quotient', Derivative(S_1, z_1), (Sigma*Derivative(exp(z_1), z_1) - exp(z_1)*Derivative(Sigma, z_1))/(Sigma**2))
    >>> d.jacobian[0, 1]
    -S_1*S_2
    >>> (d.steps[5].lhs - d.steps[5].rhs).subs(d.definitions).doit().simplify()
    0
    """
    n = _check_n(n)
    if indexed is not None and not isinstance(indexed, bool):
        msg = f"indexed must be True, False or None, got {indexed!r}"
        raise TypeError(msg)
    use_indexed = n > SYMBOLIC_LIMIT if indexed is None else indexed
    return _derive_cached(n, use_indexed)
