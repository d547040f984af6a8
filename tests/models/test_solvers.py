"""Each solver alone, on quadratics whose minimiser is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from softgrad.models._objective import MultinomialObjective, lbfgs_memory
from softgrad.models._solvers import (
    HESSIAN_ROWS,
    LBFGS_MEMORY,
    LBFGS_MEMORY_LARGE,
    N_ITER_NO_CHANGE,
    NEWTON_CG_ROWS_PER_PARAM,
    NEWTON_CHOLESKY_MAX_PARAMS,
    StochasticState,
    choose_solver,
    conjugate_gradient,
    lbfgs,
    newton_cg,
    newton_cholesky,
    stochastic,
    stochastic_epoch,
)


class Quadratic:
    """f(w) = ½ wᵀHw − cᵀw: minimiser H⁻¹c; also a least-squares mini-batch objective.

    Rows: f(w) = (1/n) Σ_i ½ (a_iᵀ w − t_i)² + ½ λ ||w||², minimiser
    (AᵀA/n + λI)⁻¹ Aᵀt/n, the same quadratic with H = AᵀA/n + λI, c = Aᵀt/n.
    """

    def __init__(self, n=64, d=4, lam=0.1, seed=0):
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5, 3.0])[:d]
        self.t = rng.standard_normal(n)
        self.lam = lam
        self.n_samples = n
        self.dtype = np.dtype(np.float64)
        self.H = self.A.T @ self.A / n + lam * np.eye(d)
        self.c = self.A.T @ self.t / n
        self.hvps = 0

    @property
    def minimiser(self):
        return np.linalg.solve(self.H, self.c)

    def loss(self, w):
        r = self.A @ w - self.t
        return 0.5 * float(r @ r) / self.n_samples + self.penalty(w)

    def loss_and_grad(self, w):
        return self.loss(w), self.H @ w - self.c

    def hessp(self, w, rows=None):
        if rows is None:
            H = self.H
        else:
            A = self.A[rows]
            H = A.T @ A / len(rows) + self.lam * np.eye(len(w))

        def hvp(v):
            self.hvps += 1
            return H @ v

        return hvp

    def penalty(self, w):
        return 0.5 * self.lam * float(w @ w)

    def hessian(self, w):
        return self.H.copy()

    def flat_directions(self):
        return np.zeros((len(self.c), 0))

    def batch_loss_and_grad(self, rows, w):
        A, t = self.A[rows], self.t[rows]
        r = A @ w - t
        return 0.5 * float(r @ r) / len(rows), A.T @ r / len(rows) + self.lam * w


EXACT = [lbfgs, newton_cg, newton_cholesky]
EXACT_IDS = ["lbfgs", "newton-cg", "newton-cholesky"]


class Shifted(Quadratic):
    """The quadratic in (u, v) of u + v only, plus ½ v-free terms: flat along (1, -1).

    f(a, b, c) = ½ h (a + b)² − t (a + b) + ½ c² − c: H is singular along
    (1, −1, 0)/√2 and the gradient orthogonal to it; minimisers a + b = t/h, c = 1.
    """

    def __init__(self, h=2.0, t=3.0):
        self.h, self.t_ = h, t
        self.dtype = np.dtype(np.float64)
        self.H = np.array([[h, h, 0.0], [h, h, 0.0], [0.0, 0.0, 1.0]])
        self.c = np.array([t, t, 1.0])

    def loss(self, w):
        return 0.5 * float(w @ self.H @ w) - float(self.c @ w)

    def flat_directions(self):
        return np.array([[1.0], [-1.0], [0.0]]) / np.sqrt(2)


class TestNewtonCholesky:
    def test_one_step_on_a_quadratic(self):
        q = Quadratic()
        res = newton_cholesky(q, np.zeros(4), max_iter=10, tol=1e-10)
        assert res.converged
        assert res.n_iter == 1
        np.testing.assert_allclose(res.w, q.minimiser, rtol=1e-10)

    def test_flat_direction_gives_the_minimum_norm_step(self):
        # singular H: the step H p = -g orthogonal to the flat direction (no drift along it)
        q = Shifted()
        w0 = np.array([0.5, -0.5, 0.0])  # on the flat line through 0
        res = newton_cholesky(q, w0, max_iter=10, tol=1e-12)
        assert res.converged
        assert res.w[0] + res.w[1] == pytest.approx(1.5)
        assert res.w[2] == pytest.approx(1.0)
        assert res.w[0] - res.w[1] == pytest.approx(1.0)  # unchanged along (1, -1)

    def test_not_positive_definite_falls_back_to_least_squares(self):
        # the flat direction undeclared: Cholesky fails, the least-squares step still solves it
        q = Shifted()
        q.flat_directions = lambda: np.zeros((3, 0))
        res = newton_cholesky(q, np.zeros(3), max_iter=10, tol=1e-12)
        assert res.converged
        assert res.w[0] + res.w[1] == pytest.approx(1.5)
        assert res.w[2] == pytest.approx(1.0)


class TestChooseSolver:
    @pytest.mark.parametrize(
        ("n_samples", "n_params", "expected"),
        [
            (150, 15, "newton-cholesky"),  # iris
            (178, 42, "newton-cholesky"),  # wine
            (4 * HESSIAN_ROWS - 1, NEWTON_CHOLESKY_MAX_PARAMS, "newton-cholesky"),
            (4 * HESSIAN_ROWS, 84, "newton-cg"),  # many rows: newton-cg before the whole Hessian
            (10**6, NEWTON_CHOLESKY_MAX_PARAMS, "newton-cg"),
            (10**6, NEWTON_CHOLESKY_MAX_PARAMS + 1, "newton-cg"),
            (4 * HESSIAN_ROWS - 1, NEWTON_CHOLESKY_MAX_PARAMS + 1, "lbfgs"),
            (4 * HESSIAN_ROWS, NEWTON_CHOLESKY_MAX_PARAMS + 1, "newton-cg"),
            (1797, 650, "lbfgs"),  # digits
            (48000, 7850, "lbfgs"),  # 784 features, 10 classes: 6 rows per parameter
            (500000, 385, "newton-cg"),  # covertype's shape
            (NEWTON_CG_ROWS_PER_PARAM * 1000 - 1, 1000, "lbfgs"),
            (NEWTON_CG_ROWS_PER_PARAM * 1000, 1000, "newton-cg"),
        ],
    )
    def test_by_shape(self, n_samples, n_params, expected):
        assert choose_solver(n_samples, n_params) == expected

    @pytest.mark.parametrize(
        ("n_samples", "expected"), [(150, "lbfgs"), (4 * HESSIAN_ROWS, "newton-cg")]
    )
    def test_without_the_whole_hessian(self, n_samples, expected):
        # Dask input: never newton-cholesky, however few the parameters
        assert choose_solver(n_samples, 15, whole_hessian=False) == expected


class TestExactSolvers:
    @pytest.mark.parametrize("solver", EXACT, ids=EXACT_IDS)
    def test_reach_the_minimiser(self, solver):
        q = Quadratic()
        seen = []
        res = solver(
            q, np.zeros(4), max_iter=100, tol=1e-10, callback=lambda i, f: seen.append((i, f))
        )
        assert res.converged
        np.testing.assert_allclose(res.w, q.minimiser, rtol=1e-7, atol=1e-9)
        assert [i for i, _ in seen] == list(range(1, res.n_iter + 1))
        assert res.loss_curve[-1] == pytest.approx(q.loss(q.minimiser), rel=1e-9)
        # the objective never goes up
        assert np.all(np.diff(res.loss_curve) <= 1e-15)

    def test_lbfgs_reports_a_failed_line_search(self):
        # a gradient that points the wrong way: no step decreases f, nothing is claimed
        q = Quadratic()
        wrong = q.loss_and_grad
        q.loss_and_grad = lambda w: (wrong(w)[0], -wrong(w)[1])
        res = lbfgs(q, np.zeros(4), max_iter=10, tol=1e-10)
        assert not res.converged
        assert res.message == "line search failed"

    def test_newton_converges_in_a_few_steps(self):
        # inexact solves (forcing term min(0.5, sqrt(|g|_1))) still converge superlinearly
        q = Quadratic()
        res = newton_cg(q, np.ones(4), max_iter=10, tol=1e-8, max_cg=50)
        assert res.converged
        assert res.n_iter <= 6

    @pytest.mark.parametrize("solver", EXACT, ids=EXACT_IDS)
    def test_max_iter_zero_returns_the_start(self, solver):
        q = Quadratic()
        w0 = np.full(4, 0.5)
        res = solver(q, w0, max_iter=0, tol=1e-8)
        np.testing.assert_array_equal(res.w, w0)
        assert res.w is not w0
        assert res.n_iter == 0
        assert not res.converged
        assert res.loss_curve == [pytest.approx(q.loss(w0))]
        # started at the minimiser, zero iterations is already converged
        assert solver(q, q.minimiser, max_iter=0, tol=1e-8).converged

    # (newton-cholesky solves a quadratic exactly in its one step)
    @pytest.mark.parametrize("solver", EXACT[:2], ids=EXACT_IDS[:2])
    def test_stopping_early_is_reported(self, solver):
        res = solver(Quadratic(), np.zeros(4), max_iter=1, tol=1e-14)
        assert not res.converged
        assert res.n_iter == 1

    def test_newton_subsamples_the_hessian_on_large_data(self, monkeypatch):
        # n >= 4 * HESSIAN_ROWS: HVPs on a subset, yet the exact gradient test still stops it
        import softgrad.models._solvers as solvers

        monkeypatch.setattr(solvers, "HESSIAN_ROWS", 16)
        q = Quadratic(n=256)
        rows_seen = []
        full_hessp = q.hessp

        def hessp(w, rows=None):
            rows_seen.append(None if rows is None else len(rows))
            return full_hessp(w, rows)

        q.hessp = hessp
        res = newton_cg(q, np.zeros(4), max_iter=50, tol=1e-10, rng=np.random.default_rng(0))
        assert res.converged
        np.testing.assert_allclose(res.w, q.minimiser, rtol=1e-7, atol=1e-9)
        assert rows_seen
        assert set(rows_seen) == {32}  # max(16, 256 // 8)


class TestConjugateGradient:
    def test_solves_a_positive_definite_system(self):
        q = Quadratic()
        g = np.array([1.0, -2.0, 0.5, 3.0])
        p = conjugate_gradient(q.hessp(None), g, 50, 1e-12)
        np.testing.assert_allclose(q.H @ p, -g, atol=1e-10)

    def test_stops_at_negative_curvature_with_a_descent_direction(self):
        H = np.diag([1.0, -1.0])
        g = np.array([0.0, 1.0])  # the first CG direction -g has negative curvature
        p = conjugate_gradient(lambda v: H @ v, g, 10, 1e-12)
        np.testing.assert_array_equal(p, -g)
        assert float(g @ p) < 0


class TestStochastic:
    @pytest.mark.parametrize(
        ("rule", "learning_rate"), [("sgd", 0.02), ("adam", 0.01)], ids=["sgd", "adam"]
    )
    def test_approach_the_minimiser(self, rule, learning_rate):
        q = Quadratic()
        w = np.zeros(4)
        res = stochastic(
            q,
            w,
            StochasticState(4, np.float64),
            rule=rule,
            learning_rate=learning_rate,
            batch_size=16,
            max_iter=400,
            tol=1e-7,
            rng=np.random.default_rng(0),
        )
        assert res.w is w  # updated in place
        np.testing.assert_allclose(w, q.minimiser, atol=0.05)
        assert res.loss_curve[-1] == pytest.approx(q.loss(q.minimiser), rel=0.05)

    def test_full_batch_sgd_is_heavy_ball(self):
        # one epoch of one batch: m = -η g, w = w0 + m; a second: m = 0.9 m - η g
        q = Quadratic()
        w = np.zeros(4)
        state = StochasticState(4, np.float64)
        rng = np.random.default_rng(0)
        kw = {"rule": "sgd", "learning_rate": 0.1, "batch_size": q.n_samples, "rng": rng}
        g0 = q.loss_and_grad(np.zeros(4))[1]
        stochastic_epoch(q, w, state, **kw)
        np.testing.assert_allclose(w, -0.1 * g0)
        g1 = q.loss_and_grad(w)[1]
        expected = w + 0.9 * (-0.1 * g0) - 0.1 * g1
        stochastic_epoch(q, w, state, **kw)
        np.testing.assert_allclose(w, expected)
        assert state.t == 2

    def test_first_adam_step_is_the_learning_rate(self):
        # bias-corrected moments: the first step is -η g/|g| elementwise
        q = Quadratic()
        w = np.zeros(4)
        g0 = q.loss_and_grad(w)[1]
        stochastic_epoch(
            q,
            w,
            StochasticState(4, np.float64),
            rule="adam",
            learning_rate=0.01,
            batch_size=q.n_samples,
            rng=np.random.default_rng(0),
        )
        np.testing.assert_allclose(w, -0.01 * np.sign(g0), rtol=1e-5)  # ε = 1e-8 in |g| + ε

    def test_divergence_raises(self):
        with (
            pytest.raises(FloatingPointError, match=r"sgd diverged .*lower learning_rate"),
            np.errstate(all="ignore"),
        ):
            stochastic(
                Quadratic(),
                np.zeros(4),
                StochasticState(4, np.float64),
                rule="sgd",
                learning_rate=1e3,
                batch_size=8,
                max_iter=50,
                tol=0.0,
                rng=np.random.default_rng(0),
            )

    def test_stalling_stops_after_n_iter_no_change(self):
        # at the minimiser with a tiny step nothing improves by tol: stop after the patience
        q = Quadratic()
        res = stochastic(
            q,
            q.minimiser.copy(),
            StochasticState(4, np.float64),
            rule="adam",
            learning_rate=1e-12,
            batch_size=q.n_samples,
            max_iter=100,
            tol=1e-3,
            rng=np.random.default_rng(0),
        )
        assert res.converged
        assert res.n_iter == N_ITER_NO_CHANGE + 1

    def test_max_iter_zero_reports_the_starting_objective(self):
        q = Quadratic()
        w0 = np.full(4, 0.25)
        res = stochastic(
            q,
            w0.copy(),
            StochasticState(4, np.float64),
            rule="sgd",
            learning_rate=0.1,
            batch_size=8,
            max_iter=0,
            tol=1e-4,
            rng=np.random.default_rng(0),
        )
        np.testing.assert_array_equal(res.w, w0)
        assert res.n_iter == 0
        assert res.loss_curve == [pytest.approx(q.loss(w0), rel=1e-12)]


class TestLbfgsMemory:
    def test_more_pairs_fewer_iterations_same_minimiser(self):
        # an ill-conditioned quadratic in 40 dimensions: one (s, y) pair is plain
        # scaled gradient descent, 30 pairs nearly the whole inverse Hessian
        rng = np.random.default_rng(0)
        Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
        H = Q @ np.diag(np.logspace(0, 2, 40)) @ Q.T
        c = rng.standard_normal(40)

        class Bowl:
            def loss(self, w):
                return 0.5 * float(w @ H @ w) - float(c @ w)

            def loss_and_grad(self, w):
                return self.loss(w), H @ w - c

        runs = {m: lbfgs(Bowl(), np.zeros(40), max_iter=5000, tol=1e-9, memory=m) for m in (1, 30)}
        for res in runs.values():
            np.testing.assert_allclose(res.w, np.linalg.solve(H, c), rtol=1e-4, atol=1e-6)
        assert runs[30].n_iter < runs[1].n_iter

    @pytest.mark.parametrize(
        ("shape", "expected"),
        [((150, 4, 3), LBFGS_MEMORY), ((1797, 64, 10), LBFGS_MEMORY),
         ((48000, 784, 10), LBFGS_MEMORY_LARGE)],
        ids=["iris", "digits", "48000x784"],
    )  # fmt: skip
    def test_estimator_keeps_more_pairs_only_when_a_pass_is_costly(self, shape, expected):
        n, d, k = shape
        obj = MultinomialObjective(np.zeros((n, d), np.float32), np.arange(n) % k, n_classes=k)
        assert lbfgs_memory(obj) == expected
