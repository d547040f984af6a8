"""softgrad.jax: values and derivatives against jax.nn and the reference, transforms, edge cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
jnp = jax.numpy

import softgrad.jax as sgj
from softgrad._agnostic import _losses, _softmax

ROWS = ["softmax", "log_softmax", "logsumexp"]
NATIVE: dict[str, Callable[..., Any]] = {
    "softmax": jax.nn.softmax,
    "log_softmax": jax.nn.log_softmax,
    "logsumexp": jax.scipy.special.logsumexp,
}


def _x(shape: tuple[int, ...] = (3, 5), dtype: Any = np.float64, seed: int = 0) -> Any:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * 3, dtype=dtype)


def _close(a: Any, b: Any, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _jaxpr_primitives(jaxpr: Any) -> set[str]:
    """Every primitive name in a jaxpr, sub-jaxprs included."""
    names: set[str] = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (list, tuple)) else [v]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= _jaxpr_primitives(inner)
    return names


class TestAgainstJaxNn:
    @pytest.mark.parametrize("name", ROWS)
    @pytest.mark.parametrize("axis", [-1, 0, 1])
    def test_values_and_gradients(self, name: str, axis: int) -> None:
        x = _x((4, 6, 3))
        ours, native = getattr(sgj, name), NATIVE[name]
        _close(ours(x, axis=axis), native(x, axis=axis))
        y, pull = jax.vjp(lambda v: ours(v, axis=axis), x)
        _, pull_n = jax.vjp(lambda v: native(v, axis=axis), x)
        g = jnp.asarray(np.random.default_rng(1).normal(size=y.shape))
        _close(pull(g)[0], pull_n(g)[0])

    @pytest.mark.parametrize("name", ROWS)
    def test_float32_within_rounding(self, name: str) -> None:
        x = _x((8, 100), np.float32)
        out = getattr(sgj, name)(x)
        assert out.dtype == jnp.float32
        _close(out, NATIVE[name](x, axis=-1), rtol=2e-6, atol=2e-6)

    def test_masked_values_match_jax_nn(self) -> None:
        x = _x((3, 5))
        m = jnp.asarray(np.random.default_rng(3).random((3, 5)) < 0.7).at[:, 0].set(True)
        _close(sgj.softmax(x, where=m), jax.nn.softmax(x, where=m))
        _close(sgj.log_softmax(x, where=m), jax.nn.log_softmax(x, where=m))


class TestClosedForm:
    """The rules are the closed forms and compose with every transform."""

    def test_grad_uses_the_custom_rule(self) -> None:
        for name in ROWS:
            f = getattr(sgj, name)
            jaxpr = jax.make_jaxpr(jax.grad(lambda v, f=f: f(v).sum()))(_x((5,)))
            assert "custom_jvp_call" in _jaxpr_primitives(jaxpr.jaxpr), name

    def test_jacobian_is_diag_s_minus_ss(self) -> None:
        x = _x((5,))
        s = sgj.softmax(x)
        want = jnp.diag(s) - jnp.outer(s, s)
        _close(jax.jacfwd(sgj.softmax)(x), want)
        _close(jax.jacrev(sgj.softmax)(x), want)
        _close(jax.jacrev(sgj.log_softmax)(x), jnp.eye(5) - s[None, :])

    def test_hessian_of_logsumexp(self) -> None:
        x = _x((4,))
        s = sgj.softmax(x)
        _close(jax.hessian(sgj.logsumexp)(x), jnp.diag(s) - jnp.outer(s, s))

    def test_hessian_of_cross_entropy_is_the_hvp(self) -> None:
        z = _x((2, 4))
        y = jnp.array([1, 3])
        h = jax.hessian(lambda v: sgj.cross_entropy(v, y))(z).reshape(8, 8)
        v = np.random.default_rng(4).normal(size=(2, 4))
        want = _losses.cross_entropy_hvp(np.asarray(z), np.asarray(y), v)
        _close((h @ v.reshape(-1)).reshape(2, 4), want)

    def test_jvp_is_linear_closed_form(self) -> None:
        x, dx = _x((3, 4)), _x((3, 4), seed=5)
        s, ds = jax.jvp(sgj.softmax, (x,), (dx,))
        _close(ds, s * (dx - (s * dx).sum(-1, keepdims=True)))
        _, dl = jax.jvp(sgj.logsumexp, (x,), (dx,))
        _close(dl, (s * dx).sum(-1))

    @pytest.mark.parametrize("name", ROWS)
    def test_vmap_and_jit(self, name: str) -> None:
        x = _x((3, 4, 5))
        f = getattr(sgj, name)
        _close(jax.vmap(f)(x), jnp.stack([f(r) for r in x]))
        _close(jax.jit(f)(x), f(x))
        g = jax.vmap(jax.grad(lambda r, f=f: f(r).sum()))(x)
        _close(g, jax.grad(lambda v, f=f: f(v).sum())(x))


class TestContract:
    """The behaviour contract of softgrad.softmax, on the JAX path."""

    @pytest.mark.parametrize("name", ["softmax", "log_softmax"])
    @pytest.mark.parametrize("masked_value", [np.inf, -np.inf, np.nan, 1e30])
    def test_masked_entries_get_zero_gradient_never_nan(
        self, name: str, masked_value: float
    ) -> None:
        m = jnp.array([[True, False, True, True], [False, False, False, False]])
        x = jnp.array([[1.0, masked_value, 2.0, 0.5], [masked_value, 1.0, 2.0, 3.0]])
        f = getattr(sgj, name)
        g = jax.grad(lambda v: jnp.where(m, f(v, where=m), 0.0).sum() + f(v, where=m)[0, 2])(x)
        assert bool(jnp.all(jnp.isfinite(g)))
        assert bool(jnp.all(g[~m] == 0))
        # forward mode: a NaN tangent at a masked entry stays there
        dx = jnp.where(m, 1.0, jnp.nan)
        _, dy = jax.jvp(lambda v: f(v, where=m), (x,), (dx,))
        assert bool(jnp.all(jnp.isfinite(jnp.where(m, dy, 0.0))))
        assert bool(jnp.all(dy[~m] == 0))

    def test_fully_masked_row(self) -> None:
        m = jnp.array([[False, False, False], [True, True, False]])
        x = _x((2, 3))
        assert bool(jnp.all(sgj.softmax(x, where=m)[0] == 0))
        assert bool(jnp.all(sgj.log_softmax(x, where=m)[0] == -jnp.inf))
        assert sgj.logsumexp(x, where=m)[0] == -jnp.inf
        g = jax.grad(lambda v: sgj.logsumexp(v, where=m)[1] + sgj.softmax(v, where=m)[0, 0])(x)
        assert bool(jnp.all(g[0] == 0))
        assert bool(jnp.all(jnp.isfinite(g)))

    def test_infinities_and_nan(self) -> None:
        inf, nan = np.inf, np.nan
        x = jnp.array([[0.0, inf, inf], [-inf, 1.0, 1.0], [-inf, -inf, -inf], [1.0, nan, 2.0]])
        _close(sgj.softmax(x)[:3], [[0, 0.5, 0.5], [0, 0.5, 0.5], [0, 0, 0]])
        assert bool(jnp.all(jnp.isnan(sgj.softmax(x)[3])))
        _close(sgj.logsumexp(x)[:3], [inf, 1 + np.log(2), -inf])
        assert bool(jnp.isnan(sgj.logsumexp(x)[3]))
        g = jax.grad(lambda v: sgj.log_softmax(v)[1, 1])(x)
        _close(g[1], [0.0, 0.5, -0.5])  # 0 at the −inf entry

    @given(
        shape=st.sampled_from([(1, 1), (2, 3), (3, 5), (1, 7)]),  # few shapes: few compilations
        seed=st.integers(0, 2**16),
        specials=st.booleans(),
    )
    @settings(max_examples=15, deadline=None)
    def test_same_as_the_reference_with_masks(
        self, shape: tuple[int, int], seed: int, specials: bool
    ) -> None:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=shape) * 5
        if specials:
            x[rng.random(shape) < 0.2] = -np.inf
            x[rng.random(shape) < 0.1] = np.inf
        m = rng.random(shape) < 0.7
        for name in ROWS:
            want = getattr(_softmax, name)(x, where=m)
            got = getattr(sgj, name)(jnp.asarray(x), where=jnp.asarray(m))
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
            grad = jax.grad(
                lambda v, name=name: jnp.sum(
                    jnp.where(
                        jnp.isfinite(getattr(sgj, name)(v, where=jnp.asarray(m))),
                        getattr(sgj, name)(v, where=jnp.asarray(m)),
                        0.0,
                    )
                )
            )(jnp.asarray(x))
            assert bool(jnp.all(jnp.isfinite(grad)))
            assert bool(jnp.all(jnp.asarray(grad)[~m] == 0))

    def test_empty_and_length_one_axes(self) -> None:
        e = jnp.zeros((2, 0))
        assert sgj.softmax(e).shape == (2, 0)
        assert sgj.log_softmax(e).shape == (2, 0)
        assert bool(jnp.all(sgj.logsumexp(e) == -jnp.inf))
        one = _x((3, 1))
        _close(sgj.softmax(one), jnp.ones((3, 1)))
        _close(sgj.log_softmax(one), jnp.zeros((3, 1)))
        _close(sgj.logsumexp(one, keepdims=True), one)
        _close(jax.grad(lambda v: sgj.log_softmax(v).sum())(one), jnp.zeros((3, 1)))

    def test_log1p_accuracy_on_dominated_rows(self) -> None:
        # a row whose max holds nearly all the mass takes the log1p split; a call
        # mixing such a row with ordinary ones must be as accurate
        x = jnp.array([[0.0, -50.0, -60.0], [1.0, 2.0, 3.0]], dtype=jnp.float32)
        got = sgj.log_softmax(x)
        want = _softmax.log_softmax(np.asarray(x))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
        assert float(got[0, 0]) == pytest.approx(-(np.exp(-50.0) + np.exp(-60.0)), rel=1e-6)
        assert float(sgj.logsumexp(jnp.array([0.0, -40.0]))) == pytest.approx(np.exp(-40.0))

    def test_dtype_policy(self) -> None:
        assert sgj.softmax(jnp.zeros(3, jnp.float16)).dtype == jnp.float16
        assert sgj.log_softmax(jnp.arange(3)).dtype == jnp.float64  # x64 in the test session
        with pytest.raises(TypeError, match="log_softmax is defined for real inputs only"):
            sgj.log_softmax(jnp.zeros(3, jnp.complex64))
        with pytest.raises(TypeError, match="where is a numpy array but x is a jax array"):
            sgj.softmax(jnp.zeros(3), where=np.array([True, False, True]))


def _walk_finite(jaxpr: Any, consts: list[Any], args: list[Any]) -> list[Any]:
    """Evaluate a jaxpr equation by equation, asserting every intermediate is free of inf."""
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if type(v).__name__ == "Literal" else env[v]

    for v, a in zip(jaxpr.constvars, consts, strict=True):
        env[v] = a
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
        if sub is not None and eqn.primitive.name in ("pjit", "jit", "custom_jvp_call"):
            outs = _walk_finite(sub.jaxpr, list(sub.consts), inputs)
        else:
            outs = eqn.primitive.bind(*inputs, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for v, o in zip(eqn.outvars, outs, strict=True):
            arr = np.asarray(o)
            if arr.dtype.kind == "f":
                assert not np.isinf(arr).any(), f"{eqn.primitive.name} made an inf"
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


class TestNoInfinities:
    """issue 13.16: finite input never makes an inf, masked or not."""

    @pytest.mark.parametrize("name", ROWS)
    def test_debug_infs_eager_and_jit(self, name: str) -> None:
        f = getattr(sgj, name)
        x = jnp.ones(4, jnp.float32)
        with jax.debug_infs(True):
            f(x)
            jax.jit(f)(x)
            jax.grad(lambda v: f(v).sum())(x)

    def test_debug_infs_with_a_mask(self) -> None:
        m = jnp.array([True, False, True, True])
        x = jnp.array([1.0, 3e38, 2.0, 0.5], jnp.float32)
        with jax.debug_infs(True):
            sgj.softmax(x, where=m)
            sgj.logsumexp(x, where=m)
            jax.grad(lambda v: sgj.softmax(v, where=m)[0])(x)

    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("softmax", False),
            ("softmax", True),
            ("log_softmax", False),
            ("logsumexp", False),
            ("logsumexp", True),
        ],
    )
    def test_every_intermediate_is_finite(self, name: str, masked: bool) -> None:
        # stronger than debug_infs, which under jit checks outputs only
        x = jnp.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, -1.0, 80.0]], jnp.float32)
        m = jnp.array([True, False, True, True]) if masked else None
        f = getattr(sgj, name)
        for fn in (lambda v: f(v, where=m), jax.grad(lambda v: f(v, where=m).sum())):
            closed = jax.make_jaxpr(fn)(x)
            _walk_finite(closed.jaxpr, list(closed.consts), [x])


class TestCrossEntropy:
    OPTIONS: ClassVar[list[dict[str, Any]]] = [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"label_smoothing": 0.2},
        {"weight": [0.5, 2.0, 1.0, 0.1]},
        {"weight": [0.5, 2.0, 1.0, 0.1], "label_smoothing": 0.1, "ignore_index": 1},
        {"ignore_index": None},
    ]

    @pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
    def test_loss_and_gradient_match_the_reference(self, options: dict[str, Any]) -> None:
        z = np.random.default_rng(6).normal(size=(5, 4)) * 2
        y = np.array([0, 3, -100, 1, 2])
        if "ignore_index" in options:  # the third label: ignored, or a class when None
            y[2] = 2 if options["ignore_index"] is None else options["ignore_index"]
        np_opts = {k: np.asarray(v) if k == "weight" else v for k, v in options.items()}
        jx_opts = {k: jnp.asarray(v) if k == "weight" else v for k, v in options.items()}
        want_loss, want_grad = _losses.cross_entropy_and_grad(z, y, **np_opts)
        got = sgj.cross_entropy(jnp.asarray(z), jnp.asarray(y), **jx_opts)
        _close(got, want_loss)
        loss, grad = sgj.cross_entropy_and_grad(jnp.asarray(z), jnp.asarray(y), **jx_opts)
        _close(loss, want_loss)
        _close(grad, want_grad)
        _close(
            jax.grad(lambda v: sgj.cross_entropy(v, jnp.asarray(y), **jx_opts).sum())(
                jnp.asarray(z)
            ),
            want_grad,
        )

    def test_probability_targets_class_axis_and_target_gradient(self) -> None:
        rng = np.random.default_rng(7)
        z = rng.normal(size=(3, 4, 2))
        t = rng.random((3, 4, 2))
        t /= t.sum(axis=1, keepdims=True)
        want = _losses.cross_entropy(z, t, axis=1, label_smoothing=0.1)
        _close(sgj.cross_entropy(jnp.asarray(z), jnp.asarray(t), axis=1, label_smoothing=0.1), want)
        # the target is differentiable too: d loss / d t = -(1 - eps) log S / n
        dt = jax.grad(lambda tt: sgj.cross_entropy(jnp.asarray(z), tt, axis=1))(jnp.asarray(t))
        _close(dt, -_softmax.log_softmax(z, axis=1) / 6)

    def test_matches_optax_style_reference(self) -> None:
        z = _x((6, 5))
        y = jnp.array([0, 1, 2, 3, 4, 0])
        ref = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=-1))
        _close(sgj.cross_entropy(z, y), ref)
        _close(
            jax.grad(sgj.cross_entropy)(z, y),
            jax.grad(
                lambda v: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(v), y[:, None], -1))
            )(z),
        )

    def test_all_ignored_mean_is_nan_with_zero_gradient(self) -> None:
        z = _x((2, 3))
        y = jnp.array([-100, -100])
        assert bool(jnp.isnan(sgj.cross_entropy(z, y)))
        assert bool(jnp.all(jax.grad(sgj.cross_entropy)(z, y) == 0))

    def test_errors_name_the_argument(self) -> None:
        with pytest.raises(ValueError, match="class index 7, outside"):
            sgj.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 7]))
        with pytest.raises(ValueError, match="reduction must be one of"):
            sgj.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), reduction="avg")  # type: ignore[typeddict-item]
        with pytest.raises(ValueError, match="weight must be finite"):
            sgj.cross_entropy(
                jnp.zeros((2, 3)), jnp.array([0, 1]), weight=jnp.array([1, np.inf, 1])
            )
        with pytest.raises(TypeError, match="target is a numpy array but logits is a jax array"):
            sgj.cross_entropy(jnp.zeros((2, 3)), np.array([0, 1]))

    def test_under_jit_with_traced_labels(self) -> None:
        z, y = _x((4, 3)), jnp.array([0, 2, 1, 1])
        _close(jax.jit(sgj.cross_entropy)(z, y), sgj.cross_entropy(z, y))


def _count_outside_branches(jaxpr: Any, name: str) -> int:
    """How many ``name`` equations a jaxpr runs whatever its data (cond branches skipped)."""
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == name
        if eqn.primitive.name == "cond":
            continue
        for v in eqn.params.values():
            for sub in v if isinstance(v, (list, tuple)) else [v]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    count += _count_outside_branches(inner, name)
    return count


class TestFastPathAndResiduals:
    """The jax.nn-shaped common path, the switch to the +inf rule, and log_softmax's residuals."""

    def test_one_exponential_forward_and_backward(self) -> None:
        # log_softmax keeps exp(x − max) from the forward pass: forward + VJP
        # computes one exponential per entry, as jax.nn does (the +inf rule and
        # the log1p split live in cond branches that common calls skip)
        x = _x((3, 6))
        for name in ("softmax", "log_softmax"):
            f = getattr(sgj, name)
            step = jax.make_jaxpr(lambda v, g, f=f: jax.vjp(f, v)[1](g))(x, x)
            assert _count_outside_branches(step.jaxpr, "exp") == 1, name
            assert _count_outside_branches(step.jaxpr, "log") <= 1, name

    def test_parts_derivatives_match_jax_nn(self) -> None:
        # forward mode, reverse mode and second derivatives of the (log S, e, total) rule
        x, dx = _x((3, 5)), _x((3, 5), seed=8)
        w = jnp.asarray(np.random.default_rng(9).normal(size=(5,)))
        y, dy = jax.jvp(sgj.log_softmax, (x,), (dx,))
        y_n, dy_n = jax.jvp(jax.nn.log_softmax, (x,), (dx,))
        _close(y, y_n)
        _close(dy, dy_n)
        _close(jax.jacrev(sgj.log_softmax)(x[0]), jax.jacrev(jax.nn.log_softmax)(x[0]))
        h = jax.hessian(lambda v: sgj.log_softmax(v) @ w)(x[0])
        _close(h, jax.hessian(lambda v: jax.nn.log_softmax(v) @ w)(x[0]))
        hvp = jax.jvp(jax.grad(lambda v: sgj.log_softmax(v) @ w), (x[0],), (dx[0],))[1]
        _close(hvp, h @ dx[0])

    def test_one_special_row_leaves_the_others_unchanged(self) -> None:
        # a +inf row (or a row of −inf only) sends the call to the +inf rule;
        # the finite rows must come out as they do alone, values and gradients
        finite = _x((3, 5))
        for special in ([0.0, np.inf, 1.0, np.inf, 2.0], [-np.inf] * 5):
            x = jnp.concatenate([finite, jnp.asarray([special])])
            for name in ROWS:
                f = getattr(sgj, name)
                _close(f(x)[:3], f(finite))
                g = jax.grad(lambda v, f=f: jnp.sum(f(v)[:3] * jnp.arange(1.0, 4.0)[:, None]))
                if name == "logsumexp":
                    g = jax.grad(lambda v, f=f: jnp.sum(f(v)[:3] * jnp.arange(1.0, 4.0)))
                gx = g(x)
                _close(gx[:3], g(finite))
                assert bool(jnp.all(gx[3] == 0)), name  # nothing flows back from an unused row

    def test_neg_inf_entries_without_a_mask_take_no_cotangent(self) -> None:
        # log S = −inf at a −inf logit whatever the others do: its row of the
        # Jacobian is 0, so a nonzero cotangent there must not reach the others
        x = jnp.array([[1.0, -np.inf, 2.0, 0.5]])
        g = jnp.array([[0.3, 5.0, -1.0, 2.0]])
        _, pull = jax.vjp(sgj.log_softmax, x)
        (got,) = pull(g)
        s = jax.nn.softmax(x)
        kept = jnp.array([[True, False, True, True]])
        want = jnp.where(kept, g - s * jnp.sum(jnp.where(kept, g, 0)), 0)
        _close(got, want)

    @pytest.mark.parametrize("name", ROWS)
    def test_vmap_over_rows_with_special_values(self, name: str) -> None:
        # under vmap the cond's predicate is batched: both paths run, per row
        inf, nan = np.inf, np.nan
        x = jnp.array([[0.0, inf, inf], [-inf, 1.0, 1.0], [-inf, -inf, -inf], [1.0, nan, 2.0]])
        x = jnp.concatenate([x, _x((2, 3))])
        f = getattr(sgj, name)
        got, want = jax.vmap(f)(x), f(x)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        _close(jnp.nan_to_num(got), jnp.nan_to_num(want))

    @given(
        gap=st.floats(17.0, 80.0),
        n=st.integers(2, 6),
        seed=st.integers(0, 2**16),
    )
    @settings(max_examples=25, deadline=None)
    def test_dominated_rows_in_float32_keep_the_small_mass(
        self, gap: float, n: int, seed: int
    ) -> None:
        # the max holds all but e^{−gap}-sized mass: log S_max = −log1p(r), which
        # rounding 1 + r in float32 would lose (jax.nn returns 0 there)
        rng = np.random.default_rng(seed)
        x = np.concatenate([[0.0], -gap - rng.random(n - 1) * 5]).astype(np.float32)
        x = np.stack([x, rng.normal(size=n).astype(np.float32)])  # with an ordinary row
        want = _softmax.log_softmax(x.astype(np.float64))
        got = np.asarray(sgj.log_softmax(jnp.asarray(x)))
        np.testing.assert_allclose(got[0], want[0], rtol=2e-6, atol=0)  # relative, even at −1e-35
        np.testing.assert_allclose(got[1], want[1], rtol=2e-6, atol=1e-6)
        lse = np.asarray(sgj.logsumexp(jnp.asarray(x)))
        want_lse = _softmax.logsumexp(x.astype(np.float64), axis=-1)
        np.testing.assert_allclose(lse[0], want_lse[0], rtol=2e-6, atol=0)
        np.testing.assert_allclose(lse[1], want_lse[1], rtol=2e-6, atol=1e-6)
