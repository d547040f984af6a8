"""Documents of a derivation: terminal text, Markdown, LaTeX and an HTML page.

The formulas come from :mod:`softgrad.explain._printers`; this module lays out
headings, steps, rules and notes around them.
"""

from __future__ import annotations

import html
import re

from sympy.printing.pretty.stringpict import prettyForm

from softgrad.explain._model import Document, Step
from softgrad.explain._printers import latex, mathml, text

__all__ = ["to_html", "to_latex", "to_markdown", "to_text"]


# ------------------------------------------------------------------------ text


def _equation_text(step: Step) -> str:
    lhs, rhs = text(step.lhs), text(step.rhs)
    return str(prettyForm(*lhs.right(" = ", rhs)).render(wrap_line=False))


def _numbered(derivation: Document) -> list[tuple[str, list[tuple[int, Step]]]]:
    sections: dict[str, list[tuple[int, Step]]] = {}
    for number, step in enumerate(derivation.steps, start=1):
        sections.setdefault(step.section, []).append((number, step))
    return list(sections.items())


def _heading(derivation: Document) -> str:
    how = (
        "indexed symbols, verified on a concrete instance"
        if derivation.indexed
        else "every step proved by SymPy and checked at random points"
    )
    return f"The derivative of softmax, n = {derivation.n} ({how})"


def to_text(derivation: Document) -> str:
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
    return f"{latex(step.lhs)} = {latex(step.rhs)}"


def to_markdown(derivation: Document) -> str:
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


_POWER_OF_E = re.compile("e\\^z([₀-₉ᵢⱼₖₙ]*)")


def _latex_text(text: str) -> str:
    """Escape ``text`` for LaTeX; math characters become inline math, ``e^zᵢ`` is $e^{z_i}$."""
    powers = [
        "$ e^{z"
        + ("_{" + "".join(_UNICODE_LATEX[c][2:-1] for c in m[1]) + "}" if m[1] else "")
        + "}$"
        for m in _POWER_OF_E.finditer(text)
    ]
    out = []
    for ch in _POWER_OF_E.sub("\1", text).replace("v̄", "\0"):
        if ch == "\1":
            out.append(powers.pop(0))
            continue
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


def to_latex(derivation: Document) -> str:
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

# Math fonts, so that brackets stretch and fractions keep their size in Chromium:
# STIX Two Math (macOS), Cambria Math (Windows), Latin Modern Math (fonts-lmodern),
# DejaVu Math TeX Gyre (fonts-dejavu-extra, Debian/Ubuntu), then the browser's own.
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
math { font-family: "STIX Two Math", "Cambria Math", "Latin Modern Math",
       "DejaVu Math TeX Gyre", "Libertinus Math", "TeX Gyre Termes Math", "Noto Sans Math",
       math; }
math[display="block"] { margin: .4rem 0; font-size: 1.3rem; }
.note { color: #444; margin: .2rem 0 0; }
"""


def to_html(derivation: Document) -> str:
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
                    f"{mathml(step.lhs)}<mo>=</mo>{mathml(step.rhs)}</mrow></math></div>"
                ),
            ]
            if step.note:
                out.append(f'<p class="note">{html.escape(step.note)}</p>')
            out.append("</div>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
