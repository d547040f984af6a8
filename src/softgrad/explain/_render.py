"""Renderers of a :class:`~softgrad.explain.Derivation`: text, Markdown, LaTeX, HTML.

SymPy's printers do the math; three small subclasses make them print like the
post: ``∂S₁/∂z₁`` as a fraction of partials, ``diag(S)``, indexed symbols as
subscripts, and sums of numeric products (the worked example) with every
factor in parentheses when negative. Terms are printed in the order the
derivation built them (``order="none"``), not SymPy's canonical order.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm, stringPict

if TYPE_CHECKING:
    from softgrad.explain._derivation import Derivation, Step

__all__ = ["to_html", "to_latex", "to_markdown", "to_text"]


def _sub(index: Any) -> str:
    """Unicode subscript of an index (``i → ᵢ``, ``12 → ₁₂``)."""
    return str(index).translate(str.maketrans("0123456789ijkn", "₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₙ"))


def _numeric_product(expr: Any) -> bool:
    return isinstance(expr, sp.Mul) and all(a.is_Number for a in expr.args)


def _numeric_sum(expr: Any) -> bool:
    return isinstance(expr, sp.Add) and all(_numeric_product(a) for a in expr.args)


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
        return prettyForm(f"{expr.base}{_sub(expr.indices[0])}")

    def _print_KroneckerDelta(self, expr: Any) -> Any:
        return prettyForm("δ" + "".join(_sub(a) for a in expr.args))

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

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        if not _numeric_sum(expr):
            return str(super()._print_Add(expr, order))
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

    def _print_Add(self, expr: Any, order: Any = None) -> Any:
        if not _numeric_sum(expr):
            return super()._print_Add(expr, order)
        row = self._element("mrow")
        for k, term in enumerate(expr.args):
            if k:
                row.appendChild(self._element("mo", text="+"))
            row.appendChild(self._print(term))
        return row

    def _print_Mul(self, expr: Any) -> Any:
        if not _numeric_product(expr):
            return super()._print_Mul(expr)
        row = self._element("mrow")
        for k, factor in enumerate(expr.args):
            if k:
                row.appendChild(self._element("mo", text="·"))
            form = self._print(factor)
            row.appendChild(self._parens(form) if factor < 0 else form)
        return row


# ------------------------------------------------------------------------ text


def _equation_text(step: Step) -> str:
    printer = _Text()
    lhs, rhs = printer._print(step.lhs), printer._print(step.rhs)
    return str(prettyForm(*lhs.right(" = ", rhs)).render(wrap_line=False))


def _numbered(derivation: Derivation) -> list[tuple[str, list[tuple[int, Step]]]]:
    sections: dict[str, list[tuple[int, Step]]] = {}
    for number, step in enumerate(derivation.steps, start=1):
        sections.setdefault(step.section, []).append((number, step))
    return list(sections.items())


def _heading(derivation: Derivation) -> str:
    how = (
        "indexed symbols, verified on a concrete instance"
        if derivation.indexed
        else "every step proved by SymPy and checked at random points"
    )
    return f"The derivative of softmax, n = {derivation.n} ({how})"


def to_text(derivation: Derivation) -> str:
    """Terminal text: one block per step, the rule named, the equation in Unicode."""
    lines = [_heading(derivation), "=" * len(_heading(derivation)), ""]
    for k, (section, steps) in enumerate(_numbered(derivation), start=1):
        title = f"{k}. {section}"
        lines += [title, "-" * len(title), ""]
        for number, step in steps:
            lines.append(f"Step {number} [{step.rule_text}]")
            lines.append(f"  {step.title}")
            lines.append("")
            lines += ["    " + row.rstrip() for row in _equation_text(step).splitlines()]
            lines.append("")
            if step.note:
                lines += [f"  {step.note}", ""]
    return "\n".join(lines).rstrip() + "\n"


# -------------------------------------------------------------------- markdown


def _latex_equation(step: Step) -> str:
    printer = _Latex()
    return f"{printer.doprint(step.lhs)} = {printer.doprint(step.rhs)}"


def to_markdown(derivation: Derivation) -> str:
    """Markdown with ``$$…$$`` display math (GitHub, Jupyter, MkDocs with MathJax)."""
    out = [f"# {_heading(derivation)}", ""]
    for k, (section, steps) in enumerate(_numbered(derivation), start=1):
        out += [f"## {k}. {section}", ""]
        for number, step in steps:
            out += [f"**Step {number}.** {step.title} — *{step.rule_text}*", ""]
            out += ["$$", _latex_equation(step), "$$", ""]
            if step.note:
                out += [step.note, ""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------- LaTeX

# every non-ASCII character the titles and notes use, as LaTeX (pdflatex + newunicodechar)
_UNICODE_LATEX = {
    "∂": r"\partial",
    "Σ": r"\Sigma",
    "δ": r"\delta",
    "≠": r"\neq",
    "≥": r"\geq",
    "−": "-",
    "…": r"\ldots",
    "⋯": r"\cdots",
    "·": r"\cdot",
    "⊙": r"\odot",
    "×": r"\times",
    "²": "^{2}",
    "ᵀ": "^{T}",
    "𝟙": r"\mathbf{1}",
    "–": "--",
    "—": "---",
    "v̄": r"\bar{v}",
    "̄": "",
    **{chr(0x2080 + d): f"_{{{d}}}" for d in range(10)},
    "ᵢ": "_{i}",
    "ⱼ": "_{j}",
    "ₖ": "_{k}",
    "ₙ": "_{n}",
}

_TEXT_CHARS = {"–", "—"}


def _latex_text(text: str) -> str:
    """Escape ``text`` for LaTeX; math characters become inline math."""
    out = []
    for ch in text.replace("v̄", "\0"):
        if ch == "\0":
            out.append(r"$\bar{v}$")
        elif ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch in "^~\\":
            out.append({"^": r"\^{}", "~": r"\~{}", "\\": r"\textbackslash{}"}[ch])
        elif ch in _TEXT_CHARS:
            out.append(_UNICODE_LATEX[ch])
        elif ord(ch) > 127:
            if ch not in _UNICODE_LATEX:
                msg = f"no LaTeX for character {ch!r} in {text!r}"
                raise ValueError(msg)
            out.append(f"${_UNICODE_LATEX[ch]}$")
        else:
            out.append(ch)
    return "".join(out).replace("$$", "").replace("}_{", "")


def to_latex(derivation: Derivation) -> str:
    """A complete LaTeX document (``pdflatex`` with amsmath, amssymb)."""
    out = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage[margin=2cm,landscape]{geometry}"
        if derivation.n > 5
        else r"\usepackage[margin=2.5cm]{geometry}",
        r"\setcounter{MaxMatrixCols}{20}",
        rf"\title{{{_latex_text(_heading(derivation))}}}",
        r"\author{generated by softgrad}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        "",
    ]
    for section, steps in _numbered(derivation):
        out += [rf"\section{{{_latex_text(section)}}}", ""]
        for number, step in steps:
            out.append(
                rf"\paragraph{{Step {number}.}} {_latex_text(step.title)} "
                rf"(\emph{{{_latex_text(step.rule_text)}}})"
            )
            out += [r"\begin{equation*}", _latex_equation(step), r"\end{equation*}"]
            if step.note:
                out.append(_latex_text(step.note))
            out.append("")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1d1d1f; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.step { margin: 1rem 0; padding: .6rem 1rem; border-left: 4px solid #4c72b0;
        background: #f7f9fc; border-radius: 4px; }
.step .head { font-weight: 600; }
.rule { display: inline-block; font-size: .8rem; padding: .05rem .5rem; margin-left: .4rem;
        border-radius: 1rem; background: #e3e9f5; color: #2b4a80; font-weight: 500; }
.rule-quotient, .rule-exponential, .rule-sum, .rule-independence { background: #fde7c8;
        color: #7a4600; }
.rule-chain { background: #d8f0dc; color: #1d5e2b; }
.eq { overflow-x: auto; overflow-y: hidden; padding: .3rem 0; }
math[display="block"] { margin: .4rem 0; font-size: 1.3rem; }
.note { color: #444; margin: .2rem 0 0; }
"""


def _mathml(expr: Any) -> str:
    printer = _MathML()
    # a real minus sign, not the hyphen SymPy writes
    return (
        str(printer._print(expr).toxml())
        .replace("<mo>-</mo>", "<mo>&#x2212;</mo>")
        .replace("<mn>-", "<mn>&#x2212;")
    )


def to_html(derivation: Derivation) -> str:
    """One self-contained HTML page: MathML math, inline CSS, no scripts, no network."""
    title = html.escape(_heading(derivation))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
    ]
    for k, (section, steps) in enumerate(_numbered(derivation), start=1):
        out.append(f"<h2>{k}. {html.escape(section)}</h2>")
        for number, step in steps:
            out += [
                f'<div class="step" id="step-{number}">',
                (
                    f'<div class="head">Step {number}. {html.escape(step.title)}'
                    f'<span class="rule rule-{step.rule}">{html.escape(step.rule_text)}</span></div>'
                ),
                (
                    '<div class="eq"><math display="block" '
                    'xmlns="http://www.w3.org/1998/Math/MathML"><mrow>'
                    f"{_mathml(step.lhs)}<mo>=</mo>{_mathml(step.rhs)}</mrow></math></div>"
                ),
            ]
            if step.note:
                out.append(f'<p class="note">{html.escape(step.note)}</p>')
            out.append("</div>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
