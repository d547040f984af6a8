r"""The derivation of the softmax derivative: build it, check it, render it.

Design notes (read once, they hold for every step here):

* A step is an equation ``lhs = rhs`` between SymPy expressions plus the rule it
  applies. Abbreviations (``S_i``, the shared denominator ``Σ``, the Jacobian
  ``J``, the vector ``S``, a loss ``L``) stay symbols in the step so that it reads
  like the post; :attr:`Derivation.definitions` maps each of them to its
  expression in ``z_1, …, z_n``, so ``(lhs - rhs).subs(definitions).doit()`` is
  an expression in ``z`` (and the free quantities ``y``, ``g``, ``v``) alone.
* Every step is verified when it is built (:mod:`softgrad.explain._verify`);
  a failure raises :class:`DerivationError`, it is never printed.
* Up to :data:`SYMBOLIC_LIMIT` outputs the derivation is written out for the
  concrete ``n`` (:mod:`softgrad.explain._explicit`); beyond it, the steps use
  indexed symbols (:mod:`softgrad.explain._indexed`).
* The modules form a chain with no circle: ``_model`` ← ``_symbols`` ←
  ``_verify`` ← ``_explicit``/``_indexed``; ``_model`` ← ``_printers`` ←
  ``_render``; ``_model`` ← ``_diagram``; and this module uses them all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from softgrad import softmax, softmax_jacobian
from softgrad._agnostic._docs import fill_doc
from softgrad._gradcheck import _stencil
from softgrad.explain import _render
from softgrad.explain._diagram import draw_dependencies
from softgrad.explain._explicit import explicit_walk
from softgrad.explain._indexed import indexed_walk
from softgrad.explain._model import SYMBOLIC_LIMIT, WALK_ATTRIBUTES, CheckResult, Walk, check_n

__all__ = ["Derivation", "derive"]

#: Step of the five-point stencil in :meth:`Derivation.check`.
_FD_STEP = 1e-3


@fill_doc(attributes=WALK_ATTRIBUTES)
@dataclass(frozen=True, eq=False)
class Derivation(Walk):
    """The derivation of ∂S_i/∂z_j for a softmax unit with ``n`` outputs.

    Build one with :func:`derive`; every step was verified when it was built.
    It is the walk-through's result (:class:`~softgrad.explain._model.Walk`)
    with its renderers, diagram and numeric :meth:`check`.

    Attributes
    ----------
    {{attributes}}
    """

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
        jac = np.asarray(self.jacobian_at(np.asarray(softmax(point))), dtype=np.float64)
        ref = np.asarray(softmax_jacobian(point), dtype=np.float64)
        # column j: the five-point directional derivative of softmax along e_j
        fd = np.stack([_stencil(softmax, point, e_j, _FD_STEP) for e_j in np.eye(self.n)], axis=1)
        return CheckResult(
            z=point,
            jacobian=jac,
            max_abs_error_vs_softgrad=float(np.max(np.abs(jac - ref))),
            max_abs_error_vs_finite_differences=float(np.max(np.abs(jac - fd))),
        )

    def diagram(self, path: str | Path) -> Path:
        """Draw the dependency diagram (every z_j feeds every S_i through Σ) to ``path``.

        See :func:`softgrad.explain.draw_dependencies`.
        """
        return draw_dependencies(self.n, path)

    def to_text(self) -> str:
        """The derivation as terminal text with Unicode math."""
        return _render.to_text(self)

    def to_markdown(self) -> str:
        """The derivation as Markdown with ``$$…$$`` LaTeX math."""
        return _render.to_markdown(self)

    def to_latex(self) -> str:
        """The derivation as a complete LaTeX document (pdflatex)."""
        return _render.to_latex(self)

    def to_html(self) -> str:
        """The derivation as one self-contained HTML page with MathML."""
        return _render.to_html(self)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        kind = "indexed" if self.indexed else "explicit"
        return f"<Derivation n={self.n} ({kind}), {len(self.steps)} steps>"


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


@functools.lru_cache(maxsize=32)
def _derive_cached(n: int, indexed: bool) -> Derivation:
    walk = indexed_walk(n) if indexed else explicit_walk(n)
    return Derivation(**{f.name: getattr(walk, f.name) for f in fields(walk)})


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
    n = check_n(n)
    if indexed is not None and not isinstance(indexed, bool):
        msg = f"indexed must be True, False or None, got {indexed!r}"
        raise TypeError(msg)
    use_indexed = n > SYMBOLIC_LIMIT if indexed is None else indexed
    return _derive_cached(n, use_indexed)
