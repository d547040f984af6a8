"""The printers behind every format: terminal text, LaTeX (Markdown too) and MathML.

SymPy's printers do the math; three subclasses make them print like the post:
``∂S₁/∂z₁`` as a fraction of partials, ``diag(S)``, indexed symbols as
subscripts, and sums of numeric products (the worked example) with every factor
in parentheses when negative. Terms are printed in the order the derivation
built them (``order="none"``), not SymPy's canonical order.

Grouping is decided here, by precedence, for every format: a sum inside a
product or after a minus sign is parenthesised, a product inside a sum or
after ``Σ`` is not, and ``Σ`` spans the product that follows it. The tests
parse the LaTeX and MathML back and compare them, at random points, with the
checked expression of every step.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm, stringPict

from softgrad.explain._model import subscript

__all__ = ["latex", "mathml", "text"]


def _numeric_product(expr: Any) -> bool:
    return isinstance(expr, sp.Mul) and all(a.is_Number for a in expr.args)


def _numeric_sum(expr: Any) -> bool:
    return isinstance(expr, sp.Add) and all(_numeric_product(a) for a in expr.args)


_ADD, _MUL = PRECEDENCE["Add"], PRECEDENCE["Mul"]


def _negative(expr: Any) -> bool:
    """Whether ``expr`` prints with a leading minus sign."""
    if isinstance(expr, sp.Mul):
        return bool(expr.args[0].is_Number and expr.args[0] < 0)
    return bool(expr.is_Number and expr < 0)


def _negated(expr: Any) -> Any:
    """``-expr`` with the factors kept in their order (``-expr`` would reorder them)."""
    if not isinstance(expr, sp.Mul):
        return -expr
    coeff, rest = -expr.args[0], expr.args[1:]
    factors = rest if coeff == 1 else (coeff, *rest)
    return factors[0] if len(factors) == 1 else sp.Mul(*factors, evaluate=False)


def _precedence(expr: Any) -> int:
    """How tightly ``expr`` binds as printed: a sum is an Add, a fraction or ∂ is a unit."""
    if isinstance(expr, sp.Add | sp.MatAdd):
        return int(_ADD)
    if isinstance(expr, sp.Sum):
        return int(_MUL)
    if isinstance(expr, sp.Mul | sp.MatMul):
        return int(_ADD) if _negative(expr) else int(_MUL)
    if expr.is_Number and expr < 0:
        return int(_ADD)
    return int(PRECEDENCE["Atom"])


def _partial_numerator(expr: Any) -> bool:
    """Whether ``expr`` reads well as the numerator of ∂expr/∂x."""
    return isinstance(expr, sp.Symbol | sp.Indexed | sp.exp)


class _Text(PrettyPrinter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__({"use_unicode": True, "order": "none", "wrap_line": False})

    def _print_Derivative(self, expr: Any) -> Any:
        if len(expr.variables) != 1 or not _partial_numerator(expr.expr):
            return super()._print_Derivative(expr)
        num = prettyForm(*self._print(expr.expr).left("∂"))
        den = prettyForm(*self._print(expr.variables[0]).left("∂"))
        return num / den

    def _print_Indexed(self, expr: Any) -> Any:
        return prettyForm(f"{expr.base}{subscript(expr.indices[0])}")

    def _print_KroneckerDelta(self, expr: Any) -> Any:
        return prettyForm("δ" + "".join(subscript(a) for a in expr.args))

    def _print_Determinant(self, expr: Any) -> Any:
        return prettyForm(*prettyForm(*self._print(expr.arg).parens()).left("det"))

    def _print_DiagMatrix(self, expr: Any) -> Any:
        return prettyForm(*prettyForm(*self._print(expr.args[0]).parens()).left("diag"))

    def _print_MatAdd(self, expr: Any) -> Any:
        # SymPy writes "diag(S) -S⋅Sᵀ"; a negative term gets " - " and its positive form
        out = None
        for item in expr.args:
            negative = out is not None and sp.S(item.as_coeff_mmul()[0]).could_extract_minus_sign()
            pform = self._print(-item if negative else item)
            if out is None:
                out = pform
                continue
            out = prettyForm(*stringPict.next(out, " - " if negative else " + "))
            out = prettyForm(*stringPict.next(out, pform))
        return out

    def _print_ImmutableDenseMatrix(self, expr: Any) -> Any:
        if expr.shape == (1, 1):
            return self._print(expr[0, 0])
        return super()._print_MatrixBase(expr)

    def _print_Add(self, expr: Any, order: Any = None) -> Any:
        if not _numeric_sum(expr):
            return super()._print_Add(expr, order)
        out = self._print(expr.args[0])
        for term in expr.args[1:]:
            out = prettyForm(*out.right(" + ", self._print(term)))
        return out

    def _print_Mul(self, expr: Any) -> Any:
        if not _numeric_product(expr):
            return super()._print_Mul(expr)
        out = None
        for factor in expr.args:
            form = self._print(factor)
            if factor < 0:
                form = prettyForm(*form.parens())
            out = form if out is None else prettyForm(*out.right("·", form))
        return out


class _Latex(LatexPrinter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__({"order": "none"})

    def _print_Derivative(self, expr: Any) -> str:
        if len(expr.variables) != 1:
            return str(super()._print_Derivative(expr))
        var = self._print(expr.variables[0])
        if _partial_numerator(expr.expr):
            return rf"\frac{{\partial {self._print(expr.expr)}}}{{\partial {var}}}"
        return rf"\frac{{\partial}}{{\partial {var}}}\left({self._print(expr.expr)}\right)"

    def _print_Indexed(self, expr: Any) -> str:
        return f"{expr.base}_{{{self._print(expr.indices[0])}}}"

    def _print_DiagMatrix(self, expr: Any) -> str:
        return rf"\operatorname{{diag}}\left({self._print(expr.args[0])}\right)"

    def _print_OneMatrix(self, expr: Any) -> str:
        return r"\mathbf{1}"

    def _print_Determinant(self, expr: Any) -> str:
        return rf"\det\left({self._print(expr.arg)}\right)"

    def _print_ImmutableDenseMatrix(self, expr: Any) -> str:
        if expr.shape == (1, 1):
            return str(self._print(expr[0, 0]))
        return str(super()._print_MatrixBase(expr))

    def _print_Sum(self, expr: Any) -> str:
        # one Σ per index, the outermost first, as the HTML and the text write it
        sums = "".join(
            rf"\sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} "
            for var, lo, hi in reversed(expr.limits)
        )
        body = self._print(expr.function)
        if _precedence(expr.function) < _MUL:
            body = rf"\left({body}\right)"
        return sums + str(body)

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        if not _numeric_sum(expr):
            # a term that prints its own minus (−y₂/S₂·∂S₂/∂z₁) follows as "a - …", not "a + - …"
            return str(super()._print_Add(expr, order)).replace(" + - ", " - ")
        return " + ".join(self._print(term) for term in expr.args)

    def _print_Mul(self, expr: Any) -> str:
        if not _numeric_product(expr):
            return str(super()._print_Mul(expr))
        parts = [rf"\left({self._print(f)}\right)" if f < 0 else self._print(f) for f in expr.args]
        return r" \cdot ".join(parts)


class _MathML(MathMLPresentationPrinter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__({"order": "none"})

    def _element(self, tag: str, *children: Any, text: str | None = None) -> Any:
        node = self.dom.createElement(tag)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def _parens(self, inner: Any) -> Any:
        return self._element(
            "mrow", self._element("mo", text="("), inner, self._element("mo", text=")")
        )

    def _print_Derivative(self, expr: Any) -> Any:
        if len(expr.variables) != 1:
            return super()._print_Derivative(expr)
        den = self._element("mrow", self._element("mo", text="∂"), self._print(expr.variables[0]))
        if _partial_numerator(expr.expr):
            num = self._element("mrow", self._element("mo", text="∂"), self._print(expr.expr))
            return self._element("mfrac", num, den)
        frac = self._element("mfrac", self._element("mo", text="∂"), den)
        return self._element("mrow", frac, self._parens(self._print(expr.expr)))

    def _print_Indexed(self, expr: Any) -> Any:
        return self._element(
            "msub", self._element("mi", text=str(expr.base)), self._print(expr.indices[0])
        )

    def _print_DiagMatrix(self, expr: Any) -> Any:
        return self._element(
            "mrow", self._element("mi", text="diag"), self._parens(self._print(expr.args[0]))
        )

    def _print_OneMatrix(self, expr: Any) -> Any:
        return self._element("mn", text="𝟙")

    def _print_Symbol(self, expr: Any, style: str = "plain") -> Any:
        if expr.name == "vbar":
            bar = self._element("mo", text="¯")
            return self._element("mover", self._element("mi", text="v"), bar)
        return super()._print_Symbol(expr, style)

    def _print_KroneckerDelta(self, expr: Any) -> Any:
        indices = self._element("mrow", *(self._print(a) for a in expr.args))
        return self._element("msub", self._element("mi", text="δ"), indices)

    def _print_ZeroMatrix(self, expr: Any) -> Any:
        return self._element("mn", text="0")

    def _print_Transpose(self, expr: Any) -> Any:
        return self._element("msup", self._print(expr.arg), self._element("mi", text="T"))

    def _print_Determinant(self, expr: Any) -> Any:
        return self._element(
            "mrow", self._element("mi", text="det"), self._parens(self._print(expr.arg))
        )

    def _print_ImmutableDenseMatrix(self, expr: Any) -> Any:
        if expr.shape == (1, 1):
            return self._print(expr[0, 0])
        return super()._print_MatrixBase(expr)

    def _print_Exp1(self, expr: Any) -> Any:
        # a plain italic e, as in the other formats (SymPy writes the double-struck ⅇ)
        return self._element("mi", text="e")

    def _print_Add(self, expr: Any, order: Any = None) -> Any:
        row = self._element("mrow")
        if _numeric_sum(expr):
            for k, term in enumerate(expr.args):
                if k:
                    row.appendChild(self._element("mo", text="+"))
                row.appendChild(self._print(term))
            return row
        terms = self._as_ordered_terms(expr, order=order)
        row.appendChild(self._print(terms[0]))  # a negative first term prints its own minus
        for term in terms[1:]:
            negative = _negative(term)
            row.appendChild(self._element("mo", text="-" if negative else "+"))
            # after a minus sign a sum needs parentheses: a − (b + c)
            rest = _negated(term) if negative else term
            row.appendChild(self._grouped(rest, _ADD, strict=not negative))
        return row

    def _print_Mul(self, expr: Any) -> Any:
        if _numeric_product(expr):
            row = self._element("mrow")
            for k, factor in enumerate(expr.args):
                if k:
                    row.appendChild(self._element("mo", text="·"))
                form = self._print(factor)
                row.appendChild(self._parens(form) if factor < 0 else form)
            return row
        if _negative(expr):
            return self._element(
                "mrow", self._element("mo", text="-"), self._product(_negated(expr))
            )
        return self._product(expr)

    def _product(self, expr: Any) -> Any:
        """A product with no leading minus: a fraction, or its factors side by side."""
        if not isinstance(expr, sp.Mul):
            return self._grouped(expr, _MUL, strict=True)
        numer, denom = sp.fraction(expr, exact=True)
        if denom != 1:
            return self._element("mfrac", self._print(numer), self._print(denom))
        row = self._element("mrow")
        factors = expr.args
        for k, factor in enumerate(factors):
            if k:
                row.appendChild(self._element("mo", text="\u2062"))  # invisible times
            # Σ spans every factor after it, so a sum that is not last is enclosed
            enclose = (k > 0 and _negative(factor)) or (
                isinstance(factor, sp.Sum) and k < len(factors) - 1
            )
            row.appendChild(
                self._parens(self._print(factor))
                if enclose
                else self._grouped(factor, _MUL, strict=True)
            )
        return row

    def _grouped(self, expr: Any, level: int, *, strict: bool) -> Any:
        """``expr``, in parentheses when it binds less tightly than ``level``."""
        prec = _precedence(expr)
        if prec < level or (not strict and prec <= level):
            return self._parens(self._print(expr))
        return self._print(expr)

    def _print_Sum(self, expr: Any) -> Any:
        row = self._element("mrow")
        for var, lo, hi in reversed(expr.limits):  # the outermost sum first
            low = self._element(
                "mrow", self._print(var), self._element("mo", text="="), self._print(lo)
            )
            row.appendChild(
                self._element("munderover", self._element("mo", text="∑"), low, self._print(hi))
            )
        # Σ spans the product that follows it; a sum as summand needs parentheses
        row.appendChild(self._grouped(expr.function, _MUL, strict=True))
        return row


def text(expr: Any) -> Any:
    """``expr`` as a 2-D Unicode picture (a ``prettyForm``)."""
    return _Text()._print(expr)


def latex(expr: Any) -> str:
    """``expr`` as LaTeX math."""
    return str(_Latex().doprint(expr))


def mathml(expr: Any) -> str:
    """``expr`` as presentation MathML (without the ``<math>`` element)."""
    # a real minus sign, not the hyphen SymPy writes
    return (
        str(_MathML()._print(expr).toxml())
        .replace("<mo>-</mo>", "<mo>&#x2212;</mo>")
        .replace("<mn>-", "<mn>&#x2212;")
    )
