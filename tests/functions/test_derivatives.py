"""Closed-form Jacobians, VJP/JVP and the Hessian: properties and references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg

from helpers import Backend, to_numpy


def logits(max_side: int = 5) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=max_side),
        elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False),
    )


def fd_jacobian(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Central differences of a vector function of a vector: J[i, j] = ∂f_i/∂x_j."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


class TestJacobian:
    def test_post_formula(self, xp: Backend) -> None:
        x = np.array([0.3, -1.2, 2.0])
        s = sg.softmax(x)
        expected = np.diag(s) - np.outer(s, s)
        np.testing.assert_allclose(
            to_numpy(sg.softmax_jacobian(xp.asarray(x))), expected, rtol=1e-14
        )
        np.testing.assert_allclose(
            to_numpy(sg.log_softmax_jacobian(xp.asarray(x))), np.eye(3) - s[None, :], rtol=1e-14
        )

    def test_matches_finite_differences(self) -> None:
        x = np.array([0.5, 1.5, -0.5, 2.0])
        np.testing.assert_allclose(sg.softmax_jacobian(x), fd_jacobian(sg.softmax, x), atol=1e-9)
        np.testing.assert_allclose(
            sg.log_softmax_jacobian(x), fd_jacobian(sg.log_softmax, x), atol=1e-9
        )

    def test_axis_moved_last(self) -> None:
        x = np.random.default_rng(0).normal(size=(3, 4, 2))
        j = sg.softmax_jacobian(x, axis=1)
        assert j.shape == (3, 2, 4, 4)
        np.testing.assert_allclose(j[1, 0], sg.softmax_jacobian(x[1, :, 0]))

    @given(logits())
    def test_symmetric_zero_row_sums_psd(self, x: np.ndarray) -> None:
        j = sg.softmax_jacobian(x)
        np.testing.assert_allclose(j, np.swapaxes(j, -1, -2), atol=1e-15)
        np.testing.assert_allclose(j.sum(-1), 0.0, atol=1e-14)
        eig = np.linalg.eigvalsh(j)
        assert np.all(eig > -1e-14)
        assert np.all(np.abs(eig).min(-1) < 1e-13)  # singular: the all-ones vector is in the kernel

    @given(logits())
    def test_log_softmax_jacobian_rows(self, x: np.ndarray) -> None:
        j = sg.log_softmax_jacobian(x)
        # each row of I - 1 Sᵀ sums to 1 - Σ S = 0
        np.testing.assert_allclose(j.sum(-1), 0.0, atol=1e-13)

    def test_masked_rows_and_columns_are_zero(self, xp: Backend) -> None:
        x = np.array([1.0, 1e6, 2.0, -np.inf])
        mask = np.array([True, False, True, True])
        for f in (sg.softmax_jacobian, sg.log_softmax_jacobian):
            j = to_numpy(f(xp.asarray(x), where=xp.asarray(mask)))
            assert np.isfinite(j).all()
            for k in (1, 3):  # masked, and −inf which behaves like masked
                np.testing.assert_array_equal(j[k], 0.0)
                np.testing.assert_array_equal(j[:, k], 0.0)


class TestProducts:
    @given(logits(), st.data())
    def test_vjp_and_jvp_equal_jacobian_products(self, x: np.ndarray, data: st.DataObject) -> None:
        v = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-5, 5)))
        s = sg.softmax(x)
        j = sg.softmax_jacobian(x)
        lj = sg.log_softmax_jacobian(x)
        jv = np.einsum("...ij,...j->...i", j, v)
        vj = np.einsum("...i,...ij->...j", v, j)
        np.testing.assert_allclose(sg.softmax_jvp(s, v), jv, atol=1e-12)
        np.testing.assert_allclose(sg.softmax_vjp(s, v), vj, atol=1e-12)
        np.testing.assert_allclose(
            sg.log_softmax_jvp(s, v), np.einsum("...ij,...j->...i", lj, v), atol=1e-12
        )
        np.testing.assert_allclose(
            sg.log_softmax_vjp(s, v), np.einsum("...i,...ij->...j", v, lj), atol=1e-12
        )

    def test_backends_agree(self, xp: Backend) -> None:
        rng = np.random.default_rng(3)
        x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
        s = sg.softmax(x)
        for f in (sg.softmax_vjp, sg.softmax_jvp, sg.log_softmax_vjp, sg.log_softmax_jvp):
            got = to_numpy(f(xp.asarray(s), xp.asarray(g), 0))
            np.testing.assert_allclose(got, f(s, g, 0), rtol=1e-13, err_msg=f.__name__)

    def test_chain_rule_adds_the_per_output_derivatives(self) -> None:
        """The post's readers' question: dL/dz_j = Σ_i dL/dS_i · ∂S_i/∂z_j."""
        x = np.array([1.0, 2.0, 3.0])
        g = np.array([0.5, -1.0, 2.0])
        s = sg.softmax(x)
        j = sg.softmax_jacobian(x)
        summed = sum(g[i] * j[i, :] for i in range(3))
        np.testing.assert_allclose(sg.softmax_vjp(s, g), summed, atol=1e-15)

    def test_where_zeroes_masked_entries(self, xp: Backend) -> None:
        x = np.array([0.5, 3.0, -1.0])
        mask = np.array([True, False, True])
        s = sg.softmax(x, where=mask)
        g = np.array([1.0, 1e300, -2.0])
        for f in (sg.softmax_vjp, sg.log_softmax_vjp, sg.softmax_jvp, sg.log_softmax_jvp):
            out = to_numpy(f(xp.asarray(s), xp.asarray(g), where=xp.asarray(mask)))
            assert out[1] == 0.0, f.__name__
            ref = f(s[[0, 2]], g[[0, 2]])
            np.testing.assert_allclose(out[[0, 2]], ref, rtol=1e-14, err_msg=f.__name__)

    def test_shape_mismatch(self) -> None:
        with pytest.raises(
            ValueError, match=r"s and g must have the same shape, got \(3,\) and \(2,\)"
        ):
            sg.softmax_vjp(np.ones(3) / 3, np.ones(2))

    def test_dtype_follows_s(self) -> None:
        s = np.full(4, 0.25, dtype=np.float32)
        assert sg.softmax_vjp(s, np.ones(4)).dtype == np.float32
        assert sg.log_softmax_jvp(s.astype(np.float16), np.ones(4)).dtype == np.float16


class TestHessian:
    def test_matches_finite_differences_of_jacobian(self) -> None:
        x = np.array([0.2, -0.7, 1.1, 0.0])
        h = sg.softmax_hessian(x)
        fd = fd_jacobian(sg.softmax_jacobian, x)  # fd[i, j, k] = ∂J_ij/∂x_k
        np.testing.assert_allclose(h, fd, atol=1e-9)

    @given(logits(max_side=4))
    def test_symmetric_in_last_two(self, x: np.ndarray) -> None:
        h = sg.softmax_hessian(x)
        np.testing.assert_allclose(h, np.swapaxes(h, -1, -2), atol=1e-15)
        # ∂/∂x_k of a zero row sum is zero
        np.testing.assert_allclose(h.sum(-2), 0.0, atol=1e-14)

    def test_backends(self, xp: Backend) -> None:
        x = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
        np.testing.assert_allclose(
            to_numpy(sg.softmax_hessian(xp.asarray(x))), sg.softmax_hessian(x)
        )

    def test_masked_entries_zero(self) -> None:
        h = sg.softmax_hessian(np.array([1.0, 1e8, 0.5]), where=np.array([True, False, True]))
        np.testing.assert_array_equal(h[1], 0.0)
        np.testing.assert_array_equal(h[:, 1], 0.0)
        np.testing.assert_array_equal(h[:, :, 1], 0.0)


class TestGradcheckOnEveryDerivative:
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_softmax_and_log_softmax(self, dtype: type) -> None:
        x = np.random.default_rng(5).normal(size=(3, 6)).astype(dtype)
        for f, jvp, vjp in [
            (sg.softmax, sg.softmax_jvp, sg.softmax_vjp),
            (sg.log_softmax, sg.log_softmax_jvp, sg.log_softmax_vjp),
        ]:
            sg.gradcheck(
                f,
                x,
                jvp=lambda x, v, jvp=jvp: jvp(sg.softmax(x), v),
                vjp=lambda x, u, vjp=vjp: vjp(sg.softmax(x), u),
                seed=0,
            )

    def test_logsumexp_gradient_is_softmax(self) -> None:
        x = np.random.default_rng(6).normal(size=5) * 3
        sg.gradcheck(sg.logsumexp, x, grad=sg.softmax, seed=1)

    def test_hessian_as_jvp_of_jacobian(self) -> None:
        x = np.random.default_rng(7).normal(size=4)
        sg.gradcheck(
            sg.softmax_jacobian,
            x,
            jvp=lambda x, v: np.einsum("ijk,k->ij", sg.softmax_hessian(x), v),
            seed=2,
        )

    def test_jacobians_as_jvps(self) -> None:
        x = np.random.default_rng(8).normal(size=(2, 5))
        for f, jac in [
            (sg.softmax, sg.softmax_jacobian),
            (sg.log_softmax, sg.log_softmax_jacobian),
        ]:
            sg.gradcheck(
                f, x, jvp=lambda x, v, jac=jac: np.einsum("...ij,...j->...i", jac(x), v), seed=3
            )
