"""The data of a derivation: its rules, steps, the walk-through's result, errors.

Nothing here imports another module of :mod:`softgrad.explain`: the symbols,
the verifier, the two walk-throughs, the renderers and the diagram all build on
this module, and :mod:`softgrad.explain._derivation` ties them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from softgrad._agnostic._docs import fill_doc

__all__ = [
    "RULES",
    "SYMBOLIC_LIMIT",
    "WALK_ATTRIBUTES",
    "CheckResult",
    "DerivationError",
    "Document",
    "Step",
    "Walk",
    "check_n",
    "subscript",
]

#: Largest ``n`` derived with explicit symbols ``z_1, …, z_n``; larger ``n`` use
#: indexed symbols. ``derive(8)`` builds and verifies in a few seconds.
SYMBOLIC_LIMIT = 8

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
    max_abs_error_vs_softgrad : float
        ``max |J − softgrad.softmax_jacobian(z)|``.
    max_abs_error_vs_finite_differences : float
        ``max |J − J_fd|`` with a five-point central stencil, step ``1e-3``.
    """

    z: np.ndarray[Any, np.dtype[np.float64]]
    jacobian: np.ndarray[Any, np.dtype[np.float64]]
    max_abs_error_vs_softgrad: float
    max_abs_error_vs_finite_differences: float

    def ok(self, atol: float = 1e-8) -> bool:
        """Whether both errors are at most ``atol``."""
        return (
            self.max_abs_error_vs_softgrad <= atol
            and self.max_abs_error_vs_finite_differences <= atol
        )


#: The attributes of a walk-through's result, and so of a :class:`Derivation`.
WALK_ATTRIBUTES = """
    n : int
        Number of outputs.
    indexed : bool
        Whether the steps use indexed symbols (by default when ``n >``
        :data:`SYMBOLIC_LIMIT`).
    steps : tuple of Step
        The verified steps, in order.
    definitions : dict
        Abbreviation → its expression in ``z`` (and ``y``, ``g``, ``v``).
    jacobian : sympy.Matrix or sympy.FunctionMatrix
        ``J[i, j] = S_i(δ_ij − S_j)`` in the symbols ``S``; an explicit ``n × n``
        Matrix when not ``indexed``, else a lazy ``FunctionMatrix``.
    jacobian_at : callable
        ``jacobian_at(s)`` evaluates the derived Jacobian with NumPy at the
        outputs ``s`` (shape ``(n,)``), giving shape ``(n, n)``.
    z, S : tuple of sympy.Symbol
        The input and output symbols (empty when ``indexed``).
    """


@fill_doc(attributes=WALK_ATTRIBUTES)
@dataclass(frozen=True, eq=False)
class Walk:
    """What a walk-through (explicit or indexed) builds: the verified steps and the rule.

    Attributes
    ----------
    {{attributes}}
    """

    n: int
    indexed: bool
    steps: tuple[Step, ...]
    definitions: dict[Any, Any]
    jacobian: Any
    jacobian_at: Callable[[np.ndarray[Any, np.dtype[np.float64]]], Any] = field(repr=False)
    z: tuple[Any, ...] = ()
    S: tuple[Any, ...] = ()


class Document(Protocol):
    """What a renderer needs of a derivation."""

    @property
    def n(self) -> int: ...

    @property
    def indexed(self) -> bool: ...

    @property
    def steps(self) -> tuple[Step, ...]: ...


def subscript(index: object) -> str:
    """Unicode subscript of an index: ``12 → '₁₂'``, ``'i' → 'ᵢ'``."""
    return str(index).translate(str.maketrans("0123456789ijkn", "₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₙ"))


def check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        msg = f"n must be an int >= 1 (the number of softmax outputs), got {n!r} of type {type(n).__name__}"
        raise TypeError(msg)
    if n < 1:
        msg = f"n must be an int >= 1 (the number of softmax outputs), got n={n}"
        raise ValueError(msg)
    return int(n)
