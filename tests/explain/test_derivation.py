"""Tests of softgrad.explain's derivation: every step verified, the rules, ``check``."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from softgrad import explain
from softgrad.explain import RULES, SYMBOLIC_LIMIT, DerivationError, derive


def _softmax_z(n: int) -> tuple[list[sp.Symbol], sp.Matrix]:
    z = [sp.Symbol(f"z_{k}", real=True) for k in range(1, n + 1)]
    total = sum(sp.exp(t) for t in z)
    return z, sp.Matrix([sp.exp(t) / total for t in z])


def _explicit(expr: object) -> object:
    if isinstance(expr, sp.MatrixExpr) and not isinstance(expr, sp.MatrixBase):
        return expr.as_explicit()
    return expr


def _numeric_zero(expr: object, seed: int = 0) -> bool:
    """Evaluate ``expr`` (scalar or matrix) at random points; True if ~0 everywhere."""
    entries = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    symbols = sorted(set().union(*(sp.sympify(e).free_symbols for e in entries)), key=str)
    f = sp.lambdify(symbols, entries, "numpy")
    rng = np.random.default_rng(seed)
    for _ in range(3):
        values = f(*rng.normal(0.0, 1.0, len(symbols)))
        if not np.allclose(np.asarray(values, dtype=complex), 0.0, atol=1e-9):
            return False
    return True


class TestDerive:
    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_jacobian_equals_sympys_jacobian(self, n: int) -> None:
        d = derive(n)
        z, s = _softmax_z(n)
        assert tuple(z) == d.z
        expected = s.jacobian(z)
        got = d.jacobian.subs(d.definitions)
        assert got.shape == (n, n)
        diff = (got - expected).applyfunc(sp.simplify)
        assert diff == sp.zeros(n, n)

    @pytest.mark.parametrize("n", [1, 2, 3, 4])
    def test_every_step_is_an_equality(self, n: int) -> None:
        # independent of the build-time check: plain subs/doit and NumPy at random points
        d = derive(n)
        for step in d.steps:
            assert step.instances, step.title
            for lhs, rhs in step.instances:
                if lhs.has(sp.Determinant):
                    # SymPy's own det of the z-form is very slow; evaluate it with NumPy
                    assert rhs == 0
                    f = sp.lambdify(d.z, d.jacobian.subs(d.definitions), "numpy")
                    for point in np.random.default_rng(1).normal(size=(3, n)):
                        assert abs(np.linalg.det(f(*point))) < 1e-12
                    continue
                diff = _explicit((lhs - rhs).subs(d.definitions).doit())
                assert _numeric_zero(diff), (step.title, lhs, rhs)

    def test_every_step_is_an_equality_symbolically(self) -> None:
        d = derive(2)
        for step in d.steps:
            for lhs, rhs in step.instances:
                diff = _explicit((lhs - rhs).subs(d.definitions).doit())
                if isinstance(diff, sp.MatrixBase):
                    assert diff.applyfunc(sp.simplify).is_zero_matrix, step.title
                else:
                    assert sp.simplify(diff) == 0, step.title

    def test_definitions_expand_to_z_alone(self) -> None:
        d = derive(3)
        allowed = {*d.z, *(sp.Symbol(f"{c}_{k}", real=True) for c in "ygv" for k in (1, 2, 3))}
        for step in d.steps:
            # an indexed step (the general rule) stands for its concrete instances
            pairs = step.instances if step.lhs.has(sp.Indexed) else [(step.lhs, step.rhs)]
            for lhs, rhs in pairs:
                if lhs.has(sp.Determinant):
                    continue  # SymPy's det of the z-form is slow; checked numerically above
                diff = _explicit((lhs - rhs).subs(d.definitions).doit())
                assert diff.free_symbols <= allowed, step.title

    def test_each_step_names_a_known_rule(self) -> None:
        d = derive(3)
        rules = [step.rule for step in d.steps]
        assert set(rules) <= set(RULES)
        for rule in ("definition", "quotient", "exponential", "sum", "independence", "chain"):
            assert rule in rules
        assert all(step.rule_text == RULES[step.rule] for step in d.steps)

    def test_follows_the_post(self) -> None:
        d = derive(3)
        titles = d.sections
        assert titles[0] == "The softmax unit"
        assert "∂S₁/∂z₁" in titles[1]
        assert "∂S₂/∂z₁" in titles[2]
        assert titles[-1].endswith("S − y")
        # the diagonal case is worked with rules 3, 2, 4, 1 and ends in S1(1 - S1)
        diag = [s for s in d.steps if s.section == titles[1]]
        assert [s.rule for s in diag][:4] == ["quotient", "exponential", "sum", "independence"]
        s1 = d.S[0]
        assert sp.expand(diag[-1].rhs - s1 * (1 - s1)) == 0
        off = [s for s in d.steps if s.section == titles[2]]
        assert sp.expand(off[4].rhs + d.S[1] * d.S[0]) == 0
        last = d.steps[-1]
        assert last.rhs == sp.Matrix(
            [sp.Add(s, -y) for s, y in zip(d.S, sp.symbols("y_1:4", real=True), strict=True)]
        )

    def test_general_rule_is_checked_for_every_pair(self) -> None:
        d = derive(4)
        (step,) = [s for s in d.steps if s.rule == "cases"]
        assert len(step.instances) == 16
        i, j = sp.symbols("i j", integer=True, positive=True)
        s = sp.IndexedBase("S")
        assert sp.expand(step.rhs - s[i] * (sp.KroneckerDelta(i, j) - s[j])) == 0

    def test_matrix_form_and_properties(self) -> None:
        d = derive(3)
        props = [s.title for s in d.steps if s.rule == "property"]
        assert any("Symmetric" in t for t in props)
        assert any("row sums to zero" in t for t in props)
        assert any("semidefinite" in t for t in props)
        assert any("Singular" in t for t in props)
        j = d.jacobian
        assert j == j.T
        assert sp.simplify((j * sp.ones(3, 1)).subs(d.definitions)) == sp.zeros(3, 1)

    def test_chain_rule_example_adds_the_paths(self) -> None:
        d = derive(3)
        numeric = [s for s in d.steps if s.rule == "numeric"]
        assert numeric[0].rhs == sp.Rational(11, 36)
        s = np.array([1, 2, 3]) / 6
        jac = np.diag(s) - np.outer(s, s)
        g = np.array([3, -1, 2])
        assert float(numeric[0].rhs) == pytest.approx((jac.T @ g)[0])
        np.testing.assert_allclose(np.array(numeric[1].rhs, dtype=float).ravel(), jac.T @ g)

    def test_indexed_beyond_the_symbolic_limit(self) -> None:
        n = SYMBOLIC_LIMIT + 4
        d = derive(n)
        assert d.indexed
        assert d.z == ()
        assert d.jacobian.shape == (n, n)
        s = sp.IndexedBase("S")
        assert sp.expand(d.jacobian[0, 1] + s[1] * s[2]) == 0
        for rule in ("quotient", "exponential", "sum", "independence", "chain", "cases"):
            assert rule in {step.rule for step in d.steps}
        assert all(step.instances for step in d.steps)
        assert f"n = {n}" in d.to_text()
        result = d.check(np.linspace(-2.0, 2.0, n))
        assert result.ok()

    def test_indexed_form_on_request(self) -> None:
        d = derive(3, indexed=True)
        assert d.indexed
        assert repr(d).startswith("<Derivation n=3 (indexed)")

    def test_failing_step_raises(self) -> None:
        from softgrad.explain import _symbols, _verify

        world = _symbols.World.build(2)
        with pytest.raises(DerivationError, match="not an identity"):
            _verify.verify(world.S[0], world.S[1], world.definitions, "bogus")

    @pytest.mark.parametrize(
        ("n", "error"),
        [
            (0, ValueError),
            (-3, ValueError),
            (3.0, TypeError),
            (True, TypeError),
            ("3", TypeError),
            (None, TypeError),
        ],
        ids=["zero", "negative", "float", "bool", "str", "none"],
    )
    def test_bad_n(self, n: object, error: type[Exception]) -> None:
        with pytest.raises(error, match=r"n must be an int >= 1.*got"):
            derive(n)  # type: ignore[arg-type]

    def test_bad_indexed(self) -> None:
        with pytest.raises(TypeError, match="indexed"):
            derive(3, indexed="yes")  # type: ignore[arg-type]


class TestCheck:
    def test_matches_references(self) -> None:
        z = np.array([0.5, -1.0, 2.0])
        result = derive(3).check(z)
        s = np.exp(z) / np.exp(z).sum()
        np.testing.assert_allclose(result.jacobian, np.diag(s) - np.outer(s, s), atol=1e-15)
        assert result.max_abs_error_vs_finite_differences < 1e-10
        if result.max_abs_error_vs_softgrad is not None:
            assert result.max_abs_error_vs_softgrad < 1e-12
        assert result.ok()

    def test_against_softgrad_softmax_jacobian(self) -> None:
        softgrad = pytest.importorskip("softgrad")
        if not hasattr(softgrad, "softmax_jacobian"):
            pytest.skip("softgrad.softmax_jacobian is not there yet")
        result = derive(4).check([1, 2, 3, 4])
        assert result.max_abs_error_vs_softgrad is not None
        assert result.max_abs_error_vs_softgrad < 1e-12

    def test_large_logits_stay_finite(self) -> None:
        result = derive(2).check([1000.0, 999.0])
        assert np.all(np.isfinite(result.jacobian))
        assert result.ok()

    @pytest.mark.parametrize(
        ("z", "error", "match"),
        [
            ([1.0, 2.0], ValueError, r"shape \(3,\)"),
            ([[1.0, 2.0, 3.0]], ValueError, r"shape \(3,\)"),
            ([1.0, float("nan"), 3.0], ValueError, "finite"),
            (["a", "b", "c"], TypeError, "real numbers"),
            ([True, False, True], TypeError, "real numbers"),
        ],
        ids=["short", "2d", "nan", "str", "bool"],
    )
    def test_bad_z(self, z: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            derive(3).check(z)  # type: ignore[arg-type]


def test_public_api() -> None:
    # every public name is in __all__ (its order is ruff's RUF022 order)
    public = {
        name
        for name, value in vars(explain).items()
        if not name.startswith("_") and not isinstance(value, type(explain))
    }
    assert public == set(explain.__all__)
    assert len(explain.__all__) == len(set(explain.__all__))


def test_no_import_circle_and_no_long_module() -> None:
    # every import, at module level or inside a function, between explain's modules
    import ast
    from pathlib import Path

    folder = Path(explain.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("softgrad.explain."):
                    targets.add(node.module.rsplit(".", 1)[1])
                elif node.module == "softgrad.explain":
                    targets |= {alias.name for alias in node.names if alias.name.startswith("_")}
        graph[path.stem] = targets
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 600, path.name
    assert "_derivation" not in set().union(*(graph[m] for m in graph if m != "__init__"))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph.get(start, set())
        )

    circles = [m for m in graph if m != "__init__" and reaches(m, m, {m})]
    assert not circles, {m: graph[m] for m in circles}
