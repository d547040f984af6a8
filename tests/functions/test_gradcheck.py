"""gradcheck: passes right derivatives, flags a 1% error, reports readably."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

from helpers import Backend

Y = np.array([0, 2, 1, 2])


def ce(z: np.ndarray) -> np.ndarray:
    return sg.cross_entropy(z, Y, reduction="sum", label_smoothing=0.1)


def ce_grad(z: np.ndarray) -> np.ndarray:
    return sg.cross_entropy_and_grad(z, Y, reduction="sum", label_smoothing=0.1)[1]


def ce_hvp(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    return sg.cross_entropy_hvp(z, Y, v, reduction="sum", label_smoothing=0.1)


def jvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    return sg.softmax_jvp(sg.softmax(x), v)


def vjp(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    return sg.softmax_vjp(sg.softmax(x), u)


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def z(request: pytest.FixtureRequest) -> np.ndarray:
    return (np.random.default_rng(0).normal(size=(4, 3)) * 2).astype(request.param)


class TestVerdicts:
    def test_right_derivatives_pass(self, z: np.ndarray) -> None:
        r = sg.gradcheck(ce, z, grad=ce_grad, hvp=ce_hvp, seed=0)
        assert r.ok
        assert len(r.checks) == 6
        r = sg.gradcheck(sg.softmax, z, jvp=jvp, vjp=vjp, seed=0)
        assert r.ok
        assert {c.name for c in r.checks} == {"jvp", "vjp", "jvp~vjp"}

    @pytest.mark.parametrize("which", ["grad", "hvp", "jvp", "vjp"])
    def test_one_percent_off_is_flagged(self, z: np.ndarray, which: str) -> None:
        off = {
            "grad": {"grad": lambda z: 1.01 * ce_grad(z), "hvp": ce_hvp},
            "hvp": {"grad": ce_grad, "hvp": lambda z, v: 1.01 * ce_hvp(z, v)},
            "jvp": {"jvp": lambda x, v: 1.01 * jvp(x, v)},
            "vjp": {"vjp": lambda x, u: 1.01 * vjp(x, u)},
        }[which]
        f = ce if which in ("grad", "hvp") else sg.softmax
        r = sg.gradcheck(f, z, seed=0, raise_exception=False, **off)  # type: ignore[arg-type]
        assert not r.ok
        assert not all(c.ok for c in r.checks if c.name == which)
        assert 0.005 < r.max_rel_err < 0.02

    def test_raises_with_report(self, z: np.ndarray) -> None:
        with pytest.raises(sg.GradcheckError, match="gradcheck FAILED") as info:
            sg.gradcheck(ce, z, grad=lambda z: ce_grad(z) * 1.01, seed=0)
        assert isinstance(info.value, AssertionError)
        assert "<-- FAILED" in str(info.value)
        assert not info.value.result.ok

    def test_inconsistent_jvp_and_vjp(self) -> None:
        x = np.array([0.1, 0.4, -0.3])
        r = sg.gradcheck(
            sg.softmax,
            x,
            jvp=jvp,
            vjp=lambda x, u: vjp(x, u) + 1e-4 * u,
            seed=1,
            raise_exception=False,
        )
        assert not [c for c in r.checks if c.name == "jvp~vjp" and c.ok]

    def test_report_lists_every_check(self, z: np.ndarray) -> None:
        r = sg.gradcheck(ce, z, grad=ce_grad, n_directions=4, seed=3)
        text = r.report()
        assert text.startswith("gradcheck passed")
        assert text.count("grad ") >= 4
        assert str(r) == text

    def test_seed_makes_it_reproducible(self, z: np.ndarray) -> None:
        a = sg.gradcheck(ce, z, grad=ce_grad, seed=5)
        b = sg.gradcheck(ce, z, grad=ce_grad, seed=5)
        assert a.max_abs_err == b.max_abs_err


class TestBackends:
    def test_any_backend(self, xp: Backend) -> None:
        z = xp.asarray(np.random.default_rng(1).normal(size=(3, 4)))
        r = sg.gradcheck(
            lambda z: sg.logsumexp(z, axis=-1),
            z,
            jvp=lambda z, v: xp.xp.sum(sg.softmax(z) * v, axis=-1),
            seed=0,
        )
        assert r.ok


class TestArguments:
    def test_needs_something_to_check(self) -> None:
        with pytest.raises(ValueError, match="pass grad=, vjp=, jvp= or hvp="):
            sg.gradcheck(ce, np.zeros((4, 3)))

    def test_hvp_needs_grad(self) -> None:
        with pytest.raises(ValueError, match="pass grad= too"):
            sg.gradcheck(ce, np.zeros((4, 3)), hvp=ce_hvp)

    def test_integer_point(self) -> None:
        with pytest.raises(TypeError, match="float32 or float64"):
            sg.gradcheck(sg.logsumexp, np.array([1, 2]), grad=sg.softmax)

    @pytest.mark.parametrize("n", [0, -1, 2.5, True])
    def test_n_directions(self, n: object) -> None:
        with pytest.raises(ValueError, match="n_directions must be a positive int"):
            sg.gradcheck(ce, np.zeros((4, 3)), grad=ce_grad, n_directions=n)  # type: ignore[arg-type]

    @pytest.mark.parametrize("eps", [0.0, -1e-3, float("nan")])
    def test_eps(self, eps: float) -> None:
        with pytest.raises(ValueError, match="eps must be a positive finite step"):
            sg.gradcheck(ce, np.zeros((4, 3)), grad=ce_grad, eps=eps)

    def test_jvp_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match="jvp returned shape"):
            sg.gradcheck(sg.softmax, np.zeros(3), jvp=lambda x, v: v[:2])

    def test_grad_of_wrong_shape_is_named(self) -> None:
        # issue 13.12: was a raw NumPy broadcast error
        x = np.array([0.1, 0.2, 0.3])
        with pytest.raises(ValueError, match=r"grad returned shape \(2,\), expected \(3,\)"):
            sg.gradcheck(lambda z: sg.logsumexp(z), x, grad=lambda z: z[:2])

    def test_vjp_of_wrong_shape_is_named(self) -> None:
        x = np.array([0.1, 0.2, 0.3])
        with pytest.raises(ValueError, match=r"vjp returned shape \(2,\), expected \(3,\)"):
            sg.gradcheck(sg.softmax, x, vjp=lambda z, u: u[:2])

    def test_vector_valued_f_with_grad_is_refused(self) -> None:
        # issue 13.12: was "FAILED, rel err 1.0"
        x = np.array([0.1, 0.2, 0.3])
        with pytest.raises(ValueError, match=r"f must return a scalar.*shape \(3,\)"):
            sg.gradcheck(sg.softmax, x, grad=lambda z: sg.softmax(z))
