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
