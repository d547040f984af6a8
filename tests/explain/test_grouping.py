"""Every rendered formula is the checked one: LaTeX and MathML read back and compared.

A page that claims to be machine-checked must show exactly the expression that
was checked. These tests read every equation of the Markdown (LaTeX) and of the
HTML page (MathML) back into SymPy, with the reading a person would give it:
products bind tighter than ``+`` and ``−``, a fraction bar, a subscript, a
superscript and parentheses group, and ``Σ`` spans the product that follows it.
The reading is then compared with the step's ``lhs`` and ``rhs`` at random
values of every symbol (and at two patterns of the free indices), so a dropped
parenthesis, a lost ``Σ`` or a reordered difference fails.

Each format has a small reader that turns it into the same token tree; one
evaluator reads the tree.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import sympy as sp

from softgrad.explain import Derivation, derive

Node = tuple[Any, ...]

# ------------------------------------------------------------------ MathML reader


def _row(items: list[Node]) -> Node:
    """A row with every nested row spliced in.

    An ``<mrow>`` (or a LaTeX ``{…}``) draws nothing: it must not group what it
    holds, or the reader would see parentheses the page does not show.
    Parentheses are read only where they are drawn (``<mo>(</mo>``, ``\\left(``).
    """
    out: list[Node] = []
    for item in items:
        out.extend(item[1] if item[0] == "row" else [item])
    return ("row", out)


_ENTITIES = {"&InvisibleTimes;": "\u2062", "&ExponentialE;": "ⅇ", "&dd;": "ⅆ"}


def _mathml_tree(el: ET.Element) -> Node:
    tag = el.tag.rsplit("}", 1)[-1]
    kids = list(el)
    text = (el.text or "").strip()
    if tag in {"math", "mrow", "mtd", "mstyle"}:
        return _row([_mathml_tree(k) for k in kids])
    if tag == "mi":
        return ("id", text)
    if tag == "mn":
        return ("num", text)
    if tag == "mo":
        return ("op", text)
    if tag == "mfrac":
        return ("frac", _mathml_tree(kids[0]), _mathml_tree(kids[1]))
    if tag == "msub":
        return ("sub", _mathml_tree(kids[0]), _mathml_tree(kids[1]))
    if tag == "msup":
        return ("sup", _mathml_tree(kids[0]), _mathml_tree(kids[1]))
    if tag == "mover":
        base, accent = _mathml_tree(kids[0]), _mathml_tree(kids[1])
        assert accent == ("op", "¯"), accent
        return ("id", base[1] + "bar")
    if tag == "munderover":
        assert _mathml_tree(kids[0]) == ("op", "∑")
        low = _mathml_tree(kids[1])[1]
        assert low[1] == ("op", "="), low
        return ("sum", low[0], ("row", low[2:]), _mathml_tree(kids[2]))
    if tag == "mtable":
        return ("table", [[_mathml_tree(td) for td in tr] for tr in kids])
    msg = f"unexpected MathML element <{tag}>"
    raise AssertionError(msg)


def _mathml_sides(page: str) -> Iterator[tuple[Node, Node]]:
    """(lhs, rhs) trees of every ``<math>`` of an HTML page."""
    for source in re.findall(r"<math\b.*?</math>", page, flags=re.DOTALL):
        for name, char in _ENTITIES.items():
            source = source.replace(name, char)
        assert "&" not in source.replace("&#", ""), "unknown entity in " + source[:200]
        items = _mathml_tree(ET.fromstring(source))[1]
        equals = [k for k, item in enumerate(items) if item == ("op", "=")]
        assert len(equals) == 1, source
        (k,) = equals
        yield ("row", items[:k]), ("row", items[k + 1 :])


# ------------------------------------------------------------------- LaTeX reader

_TOKEN = re.compile(r"\\[a-zA-Z]+|\\[,;! ]|[{}_^&()\[\]+\-=]|\\\\|\d+|[a-zA-Z]|\S")
_LATEX_NAMES = {r"\Sigma": "Σ", r"\delta": "δ", r"\det": "det", r"\log": "log", r"\exp": "exp"}


class _Latex:
    def __init__(self, source: str) -> None:
        self.tokens = [t for t in _TOKEN.findall(source) if t not in {"\\,", "\\;", "\\!", "\\ "}]
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.pos]
        assert expected is None or token == expected, (token, expected, self.tokens)
        self.pos += 1
        return token

    def group(self) -> Node:
        if self.peek() != "{":
            return self.atom()
        self.take("{")
        return ("row", self.row_until({"}"}))

    def row_until(self, stops: set[str]) -> list[Node]:
        items: list[Node] = []
        while self.peek() not in stops:
            items.extend(_row([self.postfix(self.atom())])[1])
        if self.peek() is not None:
            self.take()
        return items

    def postfix(self, node: Node) -> Node:
        while self.peek() in {"_", "^"}:
            kind = "sub" if self.take() == "_" else "sup"
            node = (kind, node, self.group())
        return node

    def word(self) -> str:
        self.take("{")
        out = ""
        while self.peek() != "}":
            out += self.take()
        self.take("}")
        return out

    def atom(self) -> Node:
        token = self.take()
        if token == "{":
            return ("row", self.row_until({"}"}))
        if token == r"\frac":
            return ("frac", self.group(), self.group())
        if token == r"\left":
            delim = self.take()
            if delim == "[" and self.peek() == r"\begin":
                self.take(r"\begin")
                assert self.word() == "matrix"
                rows: list[list[Node]] = [[]]
                cell: list[Node] = []
                while self.peek() != r"\end":
                    if self.peek() in {"&", "\\\\"}:
                        rows[-1].append(("row", cell))
                        cell = []
                        if self.take() == "\\\\":
                            rows.append([])
                        continue
                    cell.append(self.postfix(self.atom()))
                rows[-1].append(("row", cell))
                self.take(r"\end")
                self.word()
                self.take(r"\right")
                self.take("]")
                return ("table", [r for r in rows if r])
            inner = self.row_until({r"\right"})
            close = self.take()
            return ("row", [("op", delim), *inner, ("op", close)])
        if token == r"\sum":
            self.take("_")
            low = self.group()[1]
            assert low[1] == ("op", "="), low
            self.take("^")
            return ("sum", low[0], ("row", low[2:]), self.group())
        if token == r"\partial":
            return ("op", "∂")
        if token == r"\cdot":
            return ("op", "·")
        if token in _LATEX_NAMES:
            return ("id", _LATEX_NAMES[token])
        if token in {r"\bar", r"\overline"}:
            return ("id", self.word() + "bar")
        if token == r"\operatorname":
            return ("id", self.word())
        if token == r"\mathbf":
            assert self.word() == "1"
            return ("num", "𝟙")
        if token in {"+", "-", "=", "(", ")", "[", "]"}:
            return ("op", token)
        if token.isdigit():
            return ("num", token)
        if token.isalpha():
            return ("id", token)
        msg = f"unexpected LaTeX token {token!r} in {self.tokens}"
        raise AssertionError(msg)


def _latex_sides(markdown: str) -> Iterator[tuple[Node, Node]]:
    """(lhs, rhs) trees of every ``$$…$$`` equation of the Markdown."""
    for source in re.findall(r"\$\$\n(.*?)\n\$\$", markdown, flags=re.DOTALL):
        items = _Latex(source).row_until({None})  # type: ignore[arg-type]
        equals = [k for k, item in enumerate(items) if item == ("op", "=")]
        assert len(equals) == 1, source
        (k,) = equals
        yield ("row", items[:k]), ("row", items[k + 1 :])


# ---------------------------------------------------------------------- evaluator


class _Apply:
    """A prefix operator (∂/∂x, diag, det, log) waiting for its argument."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class _Reader:
    def __init__(self, n: int) -> None:
        self.n = n

    def value(self, node: Node) -> Any:
        kind = node[0]
        if kind == "row":
            return self.expression(list(node[1]))
        if kind == "id":
            # SymPy writes the subscript of z_1 as <mi>1</mi>
            return sp.Integer(node[1]) if node[1].isdigit() else self.identifier(node[1])
        if kind == "num":
            text = node[1].replace("−", "-")
            return sp.OneMatrix(self.n, 1) if text == "𝟙" else sp.Integer(text)
        if kind == "frac":
            num, den = node[1], node[2]
            if self.is_partial(num) or self.is_partial(den):
                var = self.value(("row", den[1][1:]))
                if num == ("op", "∂") or num == ("row", [("op", "∂")]):
                    return _Apply(lambda arg: sp.Derivative(arg, var, evaluate=False))
                return sp.Derivative(self.value(("row", num[1][1:])), var, evaluate=False)
            return self.value(num) / self.value(den)
        if kind == "sub":
            base, index = node[1], node[2]
            assert base[0] == "id", base
            if base[1] == "δ":
                return sp.KroneckerDelta(*(self.value(i) for i in self.items(index)))
            idx = self.value(index)
            if idx.is_Integer:
                return sp.Symbol(f"{base[1]}_{idx}")
            return sp.IndexedBase(base[1])[idx]
        if kind == "sup":
            base, exponent = node[1], node[2]
            if exponent == ("id", "T") or exponent == ("row", [("id", "T")]):
                return sp.Transpose(self.value(base))
            if base in [("id", "e"), ("id", "ⅇ")]:
                return sp.exp(self.value(exponent))
            return sp.Pow(self.value(base), self.value(exponent))
        if kind == "table":
            return sp.ImmutableMatrix([[self.value(cell) for cell in row] for row in node[1]])
        msg = f"cannot read {node}"
        raise AssertionError(msg)

    @staticmethod
    def items(node: Node) -> list[Node]:
        return list(node[1]) if node[0] == "row" else [node]

    @staticmethod
    def is_partial(node: Node) -> bool:
        return node == ("op", "∂") or (
            node[0] == "row" and bool(node[1]) and node[1][0] == ("op", "∂")
        )

    def identifier(self, name: str) -> Any:
        functions: dict[str, Callable[[Any], Any]] = {
            "diag": sp.DiagMatrix,
            "det": sp.Determinant,
            "log": sp.log,
        }
        if name in functions:
            return _Apply(functions[name])
        if name == "J":
            return sp.MatrixSymbol("J", self.n, self.n)
        if name in {"S", "g", "v"}:
            return sp.MatrixSymbol(name, self.n, 1)
        return sp.Symbol({"Σ": "Sigma", "e": "E"}.get(name, name)) if name != "e" else sp.E

    # expression := ['−'] term (('+' | '−') term)* ; term := factor+ ; Σ takes the rest of the term
    def expression(self, items: list[Node]) -> Any:
        self.stack = getattr(self, "stack", [])
        self.stack.append((items, 0))
        try:
            return self._expression()
        finally:
            self.stack.pop()

    @property
    def _items(self) -> list[Node]:
        return self.stack[-1][0]

    def _peek(self) -> Node | None:
        items, pos = self.stack[-1]
        return items[pos] if pos < len(items) else None

    def _next(self) -> Node:
        items, pos = self.stack[-1]
        self.stack[-1] = (items, pos + 1)
        return items[pos]

    def _expression(self) -> Any:
        minus = [("op", "-"), ("op", "−")]
        sign = 1
        if self._peek() in minus:
            self._next()
            sign = -1
        out = sign * self._term()
        while self._peek() in [*minus, ("op", "+")]:
            op = self._next()
            term = self._term()
            out = out - term if op in minus else out + term
        assert self._peek() in [None, ("op", ")"), ("op", "]")], self._peek()
        return out

    def _term(self) -> Any:
        factors: list[Any] = []
        stop = [("op", s) for s in "+-−)]"]
        while self._peek() is not None and self._peek() not in stop:
            node = self._next()
            if node in [("op", "·"), ("op", "\u2062")]:
                continue
            if node[0] == "sum":
                # Σ spans the product after it, including a leading minus sign
                negate = self._peek() in [("op", "-"), ("op", "−")]
                if negate:
                    self._next()
                body = -self._term() if negate else self._term()
                limits = (self.value(node[1]), self.value(node[2]), self.value(node[3]))
                factors.append(sp.Sum(body, limits))
                break
            factors.append(self._factor(node))
        assert factors, "empty term"
        out = factors[0]
        for f in factors[1:]:
            out = out * f
        return out

    def _factor(self, node: Node) -> Any:
        if node in [("op", "("), ("op", "[")]:
            close = ("op", ")") if node == ("op", "(") else ("op", "]")
            if node == ("op", "[") and self._peek() is not None and self._peek()[0] == "table":
                inner = self.value(self._next())
            else:
                inner = self._expression()
            assert self._next() == close
            return inner
        value = self.value(node)
        if isinstance(value, _Apply):
            return value.fn(self._factor(self._next()))
        return value


# --------------------------------------------------------------------- comparison


def _derivative_key(expr: Any) -> Any:
    """∂X/∂v as a plain symbol (indexed when X or v are), so it gets a random value."""

    def name_and_indices(e: Any) -> tuple[str, tuple[Any, ...]]:
        if isinstance(e, sp.exp):
            name, idx = name_and_indices(e.args[0])
            return "exp" + name, idx
        if isinstance(e, sp.Indexed):
            return str(e.base), tuple(e.indices)
        return str(e), ()

    (var,) = expr.variables
    top, i1 = name_and_indices(expr.expr)
    bottom, i2 = name_and_indices(var)
    name = f"D[{top}/{bottom}]"
    return sp.IndexedBase(name)[(*i1, *i2)] if i1 or i2 else sp.Symbol(name)


def _numeric(expr: Any, n: int, indices: dict[str, int], seed: int) -> np.ndarray[Any, Any]:
    expr = sp.sympify(expr)
    expr = expr.xreplace({s: sp.Symbol(s.name) for s in expr.atoms(sp.Symbol)})
    expr = expr.replace(lambda e: isinstance(e, sp.Derivative), _derivative_key)
    # free indices only: subs leaves the bound variable of a Σ alone
    expr = expr.subs({s: indices[s.name] for s in expr.free_symbols if str(s) in indices})
    expr = expr.xreplace({sp.Symbol("n"): sp.Integer(n)})
    rng = np.random.default_rng(seed)

    def draw(key: str, shape: tuple[int, int] | None = None) -> Any:
        local = np.random.default_rng(abs(hash((key, seed))) % 2**32)
        if shape is None:
            return sp.Float(local.uniform(0.3, 1.7))
        return sp.ImmutableMatrix(local.uniform(0.3, 1.7, shape))

    del rng
    mats = {m: draw(m.name, m.shape) for m in expr.atoms(sp.MatrixSymbol)}
    expr = expr.xreplace(mats)
    expr = expr.replace(
        lambda e: isinstance(e, sp.OneMatrix | sp.ZeroMatrix), lambda e: e.as_explicit()
    )
    expr = expr.doit()
    if isinstance(expr, sp.MatrixExpr) and not isinstance(expr, sp.MatrixBase):
        expr = expr.as_explicit()
    atoms = {a for a in sp.sympify(expr).atoms(sp.Symbol, sp.Indexed) if not a.is_Integer}
    atoms = {a for a in atoms if not (isinstance(a, sp.Symbol) and a in {sp.Symbol("E")})}
    expr = expr.xreplace({a: draw(str(a)) for a in atoms if not isinstance(a, sp.Idx)})
    return np.array(sp.N(expr), dtype=float).reshape(-1)


def _same(parsed: Any, checked: Any, n: int) -> bool:
    if isinstance(checked, sp.MatrixBase) and checked.shape == (1, 1):
        checked = checked[0, 0]
    if isinstance(checked, sp.ZeroMatrix) and parsed == 0:
        return True  # the zero vector is written 0
    for pattern in ({"i": 2, "j": 3, "k": 1}, {"i": 2, "j": 2, "k": 2}):
        for seed in (1, 2):
            a = _numeric(parsed, n, pattern, seed)
            b = _numeric(checked, n, pattern, seed)
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-12):
                return False
    return True


def _derivations() -> list[Derivation]:
    return [derive(n) for n in range(1, 9)] + [derive(12)]


def _cases() -> list[Any]:
    return [pytest.param(n, id=f"n{n}") for n in range(1, 9)] + [pytest.param(12, id="indexed")]


def _check_all(d: Derivation, sides: list[tuple[Node, Node]], fmt: str) -> None:
    assert len(sides) == len(d.steps)
    size = 4 if d.indexed else d.n
    wrong = []
    for number, ((lhs, rhs), step) in enumerate(zip(sides, d.steps, strict=True), start=1):
        reader = _Reader(size)
        for side, tree, checked in (("lhs", lhs, step.lhs), ("rhs", rhs, step.rhs)):
            if not _same(reader.value(tree), checked, size):
                wrong.append(f"step {number} {side} ({step.title!r})")
    assert not wrong, f"{fmt} shows a different expression than was checked: {wrong}"


@pytest.mark.parametrize("n", _cases())
def test_mathml_reads_back_as_the_checked_expression(n: int) -> None:
    d = derive(n)
    _check_all(d, list(_mathml_sides(d.to_html())), "HTML")


@pytest.mark.parametrize("n", _cases())
def test_latex_reads_back_as_the_checked_expression(n: int) -> None:
    d = derive(n)
    _check_all(d, list(_latex_sides(d.to_markdown())), "Markdown")


def _page(rhs: str) -> str:
    return f"<math><mrow><mi>x</mi><mo>=</mo><mrow>{rhs}</mrow></mrow></math>"


def _ml(name: str, k: int) -> str:
    return f"<msub><mi>{name}</mi><mn>{k}</mn></msub>"


def test_the_reader_catches_a_dropped_parenthesis() -> None:
    # the reading is strict enough to see the bug of issue 13: S₁(g₁ − S₁g₁ + S₂g₂)
    # without the parentheses around the inner sum reads as a different expression
    s1, g1, s2, g2 = sp.symbols("S_1 g_1 S_2 g_2")
    right = s1 * (g1 - (s1 * g1 + s2 * g2))
    inner = _ml("S", 1) + _ml("g", 1) + "<mo>+</mo>" + _ml("S", 2) + _ml("g", 2)
    dropped = _ml("S", 1) + "<mo>(</mo>" + _ml("g", 1) + "<mo>−</mo>" + inner + "<mo>)</mo>"
    kept = (
        _ml("S", 1)
        + "<mo>(</mo>"
        + _ml("g", 1)
        + "<mo>−</mo><mo>(</mo>"
        + inner
        + "<mo>)</mo><mo>)</mo>"
    )
    ((_, rhs),) = list(_mathml_sides(_page(dropped)))
    assert not _same(_Reader(2).value(rhs), right, 2)
    ((_, rhs),) = list(_mathml_sides(_page(kept)))
    assert _same(_Reader(2).value(rhs), right, 2)


def test_the_reader_catches_a_lost_outer_sum() -> None:
    # Σⱼ (δᵢⱼ − Sⱼ)Sᵢvᵢvⱼ without its outer Σᵢ (issue 13 at n = 50) differs from the step
    i, j, n = sp.symbols("i j n")
    s, v = sp.IndexedBase("S"), sp.IndexedBase("v")
    body = s[i] * (sp.KroneckerDelta(i, j) - s[j]) * v[i] * v[j]
    both = sp.Sum(body, (j, 1, n), (i, 1, n))
    assert not _same(sp.Sum(body, (j, 1, n)), both, 4)
    assert _same(sp.Sum(sp.Sum(body, (j, 1, n)), (i, 1, n)), both, 4)
