"""MultinomialObjective: its value, gradient, HVP and mini-batch gradient against references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softgrad import gradcheck
from softgrad.models import MultinomialObjective


def _objective(X, y, sw=None, *, k=4, C=1.0, fit_intercept=True):
    return MultinomialObjective(
        X, y, n_classes=k, C=C, fit_intercept=fit_intercept, sample_weight=sw
    )


def _reference_loss(X, y, sw, W, b, C):
    """mean weighted CE + ||W||² / (2 C Σs), written out with NumPy."""
    z = X @ W.T + b
    ce = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1)))
    return np.dot(sw, ce) / sw.sum() + np.vdot(W, W) / (2 * C * sw.sum())


class TestDerivatives:
    """Every solver's gradient and newton-cg's HVP against finite differences."""

    @pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
    @pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
    def test_full_batch_gradient_and_hvp(self, problem, weighted, fit_intercept):
        # the objective that lbfgs and newton-cg minimise
        X, y, sw = problem()
        obj = _objective(X, y, sw if weighted else None, C=0.7, fit_intercept=fit_intercept)
        w = np.random.default_rng(1).standard_normal(obj.n_params)
        result = gradcheck(
            lambda w: np.asarray(obj.loss(w)),
            w,
            grad=lambda w: obj.loss_and_grad(w)[1],
            hvp=lambda w, v: obj.hessp(w)(v),
            seed=0,
        )
        assert result.ok
        assert result.max_rel_err < 1e-6

    def test_subsampled_hvp_is_exact_on_all_rows(self, problem):
        # newton-cg's subsampled Hessian with every row is the full Hessian
        X, y, sw = problem()
        obj = _objective(X, y, sw)
        w = np.random.default_rng(2).standard_normal(obj.n_params)
        v = np.random.default_rng(3).standard_normal(obj.n_params)
        np.testing.assert_allclose(obj.hessp(w, np.arange(len(y)))(v), obj.hessp(w)(v))

    @pytest.mark.parametrize("rows", [None, slice(3, 11)], ids=["all-rows", "a-batch"])
    def test_minibatch_gradient(self, problem, rows):
        # the gradient that sgd and adam step along: data loss on a batch plus the penalty
        X, y, sw = problem(n=16)
        obj = _objective(X, y, sw, C=1 / (0.3 * sw.sum()))  # λ = 1/(C Σs) = 0.3
        idx = np.arange(16)[rows] if rows is not None else np.arange(16)
        w0 = np.concatenate(
            [
                np.random.default_rng(4).standard_normal(20),
                np.random.default_rng(5).standard_normal(4),
            ]
        )

        def f(w):
            loss, _ = obj.batch_loss_and_grad(idx, w)
            return np.asarray(loss + obj.penalty(w))

        def grad(w):
            return obj.batch_loss_and_grad(idx, w)[1]

        result = gradcheck(f, w0, grad=grad, seed=0)
        assert result.ok
        assert obj.penalty(w0) == pytest.approx(0.15 * np.vdot(w0[:20], w0[:20]), rel=1e-12)

    def test_full_minibatch_is_the_objective(self, problem):
        # a batch of every row: the same value and gradient as the full objective
        X, y, sw = problem()
        obj = _objective(X, y, sw, C=0.5)
        w = np.random.default_rng(6).standard_normal(obj.n_params)
        loss, grad = obj.batch_loss_and_grad(np.arange(len(y)), w)
        full, full_grad = obj.loss_and_grad(w)
        assert loss + obj.penalty(w) == pytest.approx(full, rel=1e-12)
        np.testing.assert_allclose(grad, full_grad, rtol=1e-10, atol=1e-12)

    def test_a_wrong_gradient_is_caught(self, problem):
        X, y, _ = problem()
        obj = _objective(X, y)
        w = np.zeros(obj.n_params)
        result = gradcheck(
            lambda w: np.asarray(obj.loss(w)),
            w,
            grad=lambda w: 1.01 * obj.loss_and_grad(w)[1],
            seed=0,
            raise_exception=False,
        )
        assert not result.ok


class TestValue:
    def test_objective_value_is_sklearn_scaling(self, problem):
        # mean weighted CE + ||W||² / (2 C Σs)
        X, y, sw = problem()
        obj = _objective(X, y, sw, C=0.5)
        w = np.random.default_rng(6).standard_normal(obj.n_params)
        W, b = obj.unpack(w)
        expected = _reference_loss(X, y, sw, W, b, 0.5)
        assert obj.loss(w) == pytest.approx(expected, rel=1e-12)

    def test_infinite_c_is_no_penalty(self, problem):
        # C = inf: λ = 0 exactly, the objective is the mean cross-entropy alone
        X, y, sw = problem()
        obj = _objective(X, y, sw, C=np.inf)
        w = np.random.default_rng(7).standard_normal(obj.n_params)
        W, b = obj.unpack(w)
        assert obj.l2 == 0.0
        assert obj.penalty(w) == 0.0
        ce_only = _reference_loss(X, y, sw, W, b, np.inf)
        assert obj.loss(w) == pytest.approx(ce_only, rel=1e-12)
        hv = obj.hessp(w)(np.zeros(obj.n_params))
        np.testing.assert_array_equal(hv, 0.0)

    def test_pack_unpack_round_trip(self, problem):
        X, y, _ = problem()
        for fit_intercept in (True, False):
            obj = _objective(X, y, fit_intercept=fit_intercept)
            W = np.arange(20.0).reshape(4, 5)
            b = np.array([1.0, -2.0, 3.0, -4.0])
            W2, b2 = obj.unpack(obj.pack(W, b))
            np.testing.assert_array_equal(W2, W)
            np.testing.assert_array_equal(b2, b if fit_intercept else 0.0)
            assert obj.pack(W, b, dtype=np.float32).dtype == np.float32

    def test_float32_data_gives_float64_gradient(self, problem):
        X, y, _ = problem(dtype=np.float32)
        obj = _objective(X, y)
        w = np.random.default_rng(8).standard_normal(obj.n_params)
        f, g = obj.loss_and_grad(w)
        assert g.dtype == np.float64
        ref = _objective(X.astype(np.float64), y).loss_and_grad(w)
        assert f == pytest.approx(ref[0], rel=1e-5)
        np.testing.assert_allclose(g, ref[1], rtol=1e-4, atol=1e-5)
        # the stochastic solvers' gradient stays in the data's dtype
        _, gb = obj.batch_loss_and_grad(np.arange(5), w.astype(np.float32))
        assert gb.dtype == np.float32

    @given(shift=st.floats(-50, 50), seed=st.integers(0, 2**16))
    def test_common_intercept_shift_changes_nothing(self, shift, seed):
        # softmax is shift-invariant: adding c to every bias leaves loss and gradient
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((12, 3))
        y = rng.integers(0, 3, size=12).astype(np.intp)
        obj = MultinomialObjective(X, y, n_classes=3, C=2.0)
        w = rng.standard_normal(obj.n_params)
        w2 = w.copy()
        w2[-3:] += shift
        f, g = obj.loss_and_grad(w)
        f2, g2 = obj.loss_and_grad(w2)
        assert f2 == pytest.approx(f, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(g2, g, rtol=1e-7, atol=1e-9)

    def test_cached_logits_are_reused_and_invalidated(self, problem):
        X, y, _ = problem()
        obj = _objective(X, y)
        w = np.zeros(obj.n_params)
        obj.loss(w)
        obj.loss_and_grad(w)  # the same point: no second product for the logits
        assert obj.n_evals == 1
        w[0] = 1.0  # a changed vector (even in place) is a new point
        obj.loss(w)
        assert obj.n_evals == 2


def _fd_hessian(obj, w, h=1e-5):
    """Central differences of the gradient, column by column (the Hessian's oracle)."""
    cols = []
    for j in range(obj.n_params):
        e = np.zeros(obj.n_params)
        e[j] = h
        cols.append((obj.loss_and_grad(w + e)[1] - obj.loss_and_grad(w - e)[1]) / (2 * h))
    return np.stack(cols, axis=1)


class TestHessian:
    """newton-cholesky's whole Hessian against finite differences of the gradient."""

    @pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
    @pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
    @pytest.mark.parametrize("C", [0.7, np.inf], ids=["penalised", "no-penalty"])
    def test_matches_finite_differences_of_the_gradient(self, problem, weighted, fit_intercept, C):
        X, y, sw = problem(n=30, d=3, k=3)
        obj = _objective(X, y, sw if weighted else None, k=3, C=C, fit_intercept=fit_intercept)
        w = np.random.default_rng(11).standard_normal(obj.n_params)
        H = obj.hessian(w)
        assert H.shape == (obj.n_params, obj.n_params)
        np.testing.assert_allclose(H, H.T, atol=1e-14)
        np.testing.assert_allclose(H, _fd_hessian(obj, w), rtol=1e-6, atol=1e-8)

    def test_equals_the_hessian_vector_product(self, problem):
        X, y, sw = problem()
        obj = _objective(X, y, sw, C=0.3)
        rng = np.random.default_rng(12)
        w, v = rng.standard_normal(obj.n_params), rng.standard_normal(obj.n_params)
        np.testing.assert_allclose(obj.hessian(w) @ v, obj.hessp(w)(v), rtol=1e-10, atol=1e-12)

    def test_blocks_of_rows_add_up(self, problem, monkeypatch):
        # rows in several blocks (a large data set) give the same matrix as one block
        import softgrad.models._objective as objective

        X, y, sw = problem(n=50)
        obj = _objective(X, y, sw)
        w = np.random.default_rng(13).standard_normal(obj.n_params)
        whole = obj.hessian(w)
        monkeypatch.setattr(objective, "HESSIAN_BLOCK_BYTES", 8 * obj.n_params * 7)  # 7 rows
        np.testing.assert_allclose(obj.hessian(w), whole, rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("C", [1.0, np.inf], ids=["penalised", "no-penalty"])
    def test_flat_directions_change_nothing(self, problem, C):
        # H U = 0 and g ⟂ U: softmax's common shift of the intercepts (and, unpenalised,
        # of each weight column)
        X, y, sw = problem()
        obj = _objective(X, y, sw, C=C)
        w = np.random.default_rng(14).standard_normal(obj.n_params)
        U = obj.flat_directions()
        assert U.shape == (obj.n_params, 1 if C == 1.0 else 1 + obj.n_features)
        np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-14)
        np.testing.assert_allclose(obj.hessian(w) @ U, 0.0, atol=1e-12)
        np.testing.assert_allclose(U.T @ obj.loss_and_grad(w)[1], 0.0, atol=1e-12)
        penalised_no_intercept = _objective(X, y, fit_intercept=False)
        assert penalised_no_intercept.flat_directions().shape == (20, 0)


class TestAgainstThePublicFunctions:
    """The lean inner loop computes what softgrad's public closed forms compute."""

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_loss_gradient_and_hvp(self, problem, dtype):
        from softgrad import cross_entropy_and_grad, cross_entropy_hvp

        X, y, _ = problem(n=33, dtype=dtype)
        obj = _objective(X, y, C=np.inf)
        rng = np.random.default_rng(15)
        w, v = rng.standard_normal(obj.n_params), rng.standard_normal(obj.n_params)
        W, b = obj.unpack(w)
        z = (X @ W.T.astype(dtype) + b.astype(dtype)).astype(np.float64)
        loss, g = cross_entropy_and_grad(z, y, reduction="mean")
        f, grad = obj.loss_and_grad(w)
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        assert f == pytest.approx(float(loss), rel=rtol)
        Xd = X.astype(np.float64)
        expected = np.concatenate([(g.T @ Xd).ravel(), g.sum(0)])
        np.testing.assert_allclose(grad, expected, rtol=10 * rtol, atol=10 * rtol)
        V, vb = obj.unpack(v)
        r = cross_entropy_hvp(z, y, Xd @ V.T + vb, reduction="mean")
        hv = np.concatenate([(r.T @ Xd).ravel(), r.sum(0)])
        np.testing.assert_allclose(obj.hessp(w)(v), hv, rtol=100 * rtol, atol=100 * rtol)

    def test_extreme_logits_stay_finite(self, problem):
        # the rows are shifted by their max before exp: huge weights give a finite loss
        X, y, _ = problem()
        obj = _objective(X, y)
        w = np.full(obj.n_params, 300.0) * np.random.default_rng(16).standard_normal(obj.n_params)
        f, g = obj.loss_and_grad(w)
        assert np.isfinite(f)
        assert np.all(np.isfinite(g))
