"""SoftmaxClassifier: fitting, inputs, parameters, warnings, dtypes, the models extra."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression

from softgrad import SoftmaxClassifier

SOLVERS = ["auto", "lbfgs", "newton-cg", "newton-cholesky", "sgd", "adam"]


class TestFit:
    @pytest.mark.parametrize("solver", SOLVERS)
    def test_every_solver_learns_iris(self, iris, solver):
        X, y = iris
        clf = SoftmaxClassifier(solver=solver, batch_size=32, random_state=0, tol=1e-3)
        clf.fit(X, y)
        assert clf.score(X, y) > 0.9
        assert clf.coef_.shape == (3, 4)
        assert clf.intercept_.shape == (3,)
        assert clf.n_iter_ >= 1
        assert len(clf.loss_curve_) >= 1
        assert clf.intercept_.sum() == pytest.approx(0.0, abs=1e-9)
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(1), 1.0)
        np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)
        np.testing.assert_array_equal(
            clf.predict(X), clf.classes_[np.argmax(clf.decision_function(X), 1)]
        )

    def test_string_labels(self, iris):
        X, y = iris
        names = np.array(["setosa", "versicolor", "virginica"])[y]
        clf = SoftmaxClassifier().fit(X, names)
        assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
        assert clf.predict(X[:1])[0] == "setosa"

    @pytest.mark.parametrize("block", [1, 3, 7, 10**6])
    def test_predict_in_blocks_of_rows_is_the_argmax(self, iris, monkeypatch, block):
        # predict takes the rows PREDICT_BLOCK logits at a time (3 classes: 1 row per
        # block for 1 and 3, 2 rows for 7, all at once for 10**6): same labels each way
        from softgrad.models import _estimator

        X, y = iris
        names = np.array(["setosa", "versicolor", "virginica"])[y]
        clf = SoftmaxClassifier().fit(X, names)
        want = clf.classes_[np.argmax(clf.decision_function(X), 1)]
        monkeypatch.setattr(_estimator, "PREDICT_BLOCK", block)
        got = clf.predict(X[:-1])  # 149 rows: the last block is short for 2 rows per block
        np.testing.assert_array_equal(got, want[:-1])
        assert got.dtype == want.dtype

    @pytest.mark.parametrize("solver", SOLVERS)
    def test_float32_stays_float32(self, iris, solver):
        X, y = iris
        clf = SoftmaxClassifier(solver=solver, random_state=0, max_iter=300, tol=1e-3)
        clf.fit(X.astype(np.float32), y)
        assert clf.coef_.dtype == np.float32
        assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
        ref = SoftmaxClassifier(solver=solver, random_state=0, max_iter=300, tol=1e-3).fit(X, y)
        assert clf.score(X, y) == pytest.approx(ref.score(X, y), abs=0.03)

    def test_callback_sees_every_iteration(self, iris):
        X, y = iris
        seen = []
        clf = SoftmaxClassifier(callback=lambda i, f: seen.append((i, f))).fit(X, y)
        assert [i for i, _ in seen] == list(range(1, len(seen) + 1))
        assert seen[-1][1] == pytest.approx(clf.loss_curve_[-1])

    def test_warm_start_continues(self, iris):
        X, y = iris
        cold = SoftmaxClassifier(tol=1e-8).fit(X, y)
        warm = SoftmaxClassifier(warm_start=True, tol=1e-8).fit(X, y)
        warm.fit(X, y)  # starts at the optimum: stops at once
        assert warm.n_iter_ <= 2
        np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=1e-4, atol=1e-5)

    def test_partial_fit_learns(self, iris):
        X, y = iris
        clf = SoftmaxClassifier(solver="sgd", learning_rate=0.05, batch_size=16, random_state=0)
        for _ in range(30):
            clf.partial_fit(X, y, classes=[0, 1, 2])
        assert clf.n_iter_ == 30
        assert clf.score(X, y) > 0.9
        assert clf.loss_curve_[-1] < clf.loss_curve_[0]

    def test_partial_fit_needs_classes_first(self, iris):
        X, y = iris
        with pytest.raises(ValueError, match="classes must be given"):
            SoftmaxClassifier().partial_fit(X, y)
        clf = SoftmaxClassifier().partial_fit(X[:10], y[:10], classes=[0, 1, 2])
        with pytest.raises(ValueError, match=r"not in classes"):
            clf.partial_fit(X[:2], np.array([0, 7]))


class TestBadInput:
    def test_nan_in_x(self, iris):
        X, y = iris
        X = X.copy()
        X[3, 1] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            SoftmaxClassifier().fit(X, y)

    def test_inf_in_x(self, iris):
        X, y = iris
        X = X.copy()
        X[0, 0] = np.inf
        with pytest.raises(ValueError, match="infinity"):
            SoftmaxClassifier().fit(X, y)

    def test_wrong_number_of_features_at_predict(self, iris):
        X, y = iris
        clf = SoftmaxClassifier().fit(X, y)
        with pytest.raises(ValueError, match="4 features"):
            clf.predict(X[:, :3])

    def test_single_class(self, iris):
        X, _ = iris
        with pytest.raises(ValueError, match="at least 2 classes"):
            SoftmaxClassifier().fit(X, np.zeros(len(X), dtype=int))

    def test_empty_data(self):
        with pytest.raises(ValueError, match="0 sample"):
            SoftmaxClassifier().fit(np.zeros((0, 3)), np.zeros(0))

    def test_unfitted(self, iris):
        with pytest.raises(NotFittedError):
            SoftmaxClassifier().predict(iris[0])

    @pytest.mark.parametrize(
        ("param", "value", "match"),
        [
            ("solver", "bfgs", "solver must be one of"),
            ("C", 0.0, "C must be a float > 0"),
            ("max_iter", -1, "max_iter must be an integer"),
            ("learning_rate", -1.0, "learning_rate must be"),
            ("tol", float("nan"), "tol must be"),
        ],
    )
    def test_bad_parameters(self, iris, param, value, match):
        X, y = iris
        with pytest.raises(ValueError, match=match):
            SoftmaxClassifier(**{param: value}).fit(X, y)

    @pytest.mark.parametrize("weights", [[-1.0], [np.nan], [0.0]], ids=["negative", "nan", "zero"])
    def test_bad_sample_weight(self, iris, weights):
        X, y = iris
        sw = np.full(len(y), weights[0])
        with pytest.raises(ValueError, match=r"(?i)sample.weight"):
            SoftmaxClassifier().fit(X, y, sample_weight=sw)


class TestConvergenceWarning:
    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "newton-cholesky"])
    def test_exact_solvers_name_max_iter_and_tol(self, iris, solver):
        X, y = iris
        with pytest.warns(ConvergenceWarning, match=r"max_iter=1\b.*increase max_iter, raise tol"):
            SoftmaxClassifier(solver=solver, max_iter=1, tol=1e-10).fit(X, y)

    @pytest.mark.parametrize("solver", ["sgd", "adam"])
    def test_stochastic_solvers_name_learning_rate(self, iris, solver):
        X, y = iris
        with pytest.warns(ConvergenceWarning, match="learning_rate"):
            SoftmaxClassifier(solver=solver, max_iter=2, random_state=0).fit(X, y)

    def test_divergence_is_an_error(self, iris):
        X, y = iris
        clf = SoftmaxClassifier(solver="sgd", learning_rate=1e30, random_state=0)
        with (
            pytest.raises(FloatingPointError, match="lower learning_rate"),
            np.errstate(all="ignore"),
        ):
            clf.fit(X * 1e20, y)


def _overlapping(n=600, seed=0):
    """Three overlapping Gaussian classes: not separable, so the unpenalised optimum is finite."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[0.0, 0.0], [1.0, 0.5], [0.3, 1.2]])
    X = centres[y] + rng.standard_normal((n, 2))
    return X, y


class TestNoPenalty:
    """C=np.inf fits without a penalty (scikit-learn's spelling), for every solver."""

    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "newton-cholesky"])
    def test_exact_solvers_match_unpenalised_logistic_regression(self, solver):
        X, y = _overlapping()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ours = SoftmaxClassifier(C=np.inf, solver=solver, tol=1e-9, max_iter=5000).fit(X, y)
        ref = LogisticRegression(C=np.inf, tol=1e-8, max_iter=10000).fit(X, y)
        rel = np.linalg.norm(ours.coef_ - ref.coef_) / np.linalg.norm(ref.coef_)
        assert rel < 1e-4
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
        # and it is not the default penalised fit
        penalised = SoftmaxClassifier(C=0.01, solver=solver).fit(X, y)
        assert np.linalg.norm(penalised.coef_ - ref.coef_) > 10 * np.linalg.norm(
            ours.coef_ - ref.coef_
        )

    @pytest.mark.parametrize("solver", ["sgd", "adam"])
    def test_stochastic_solvers_approach_it(self, solver):
        X, y = _overlapping()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ours = SoftmaxClassifier(
                C=np.inf, solver=solver, random_state=0, batch_size=64, tol=1e-4
            ).fit(X, y)
        ref = LogisticRegression(C=np.inf, tol=1e-8, max_iter=10000).fit(X, y)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=0.05)
        assert np.all(np.isfinite(ours.loss_curve_))

    def test_round_trips_through_a_model_file(self, tmp_path):
        X, y = _overlapping(n=120)
        clf = SoftmaxClassifier(C=np.inf).fit(X, y)
        clf.save(tmp_path / "m.npz")
        loaded = SoftmaxClassifier.load(tmp_path / "m.npz")
        assert np.inf == loaded.C
        np.testing.assert_array_equal(loaded.coef_, clf.coef_)


class TestAutoSolver:
    """solver="auto" (the default) picks by the model's size: pinned by shape."""

    @pytest.mark.parametrize(
        ("n_features", "n_classes", "fit_intercept", "expected"),
        [
            (4, 3, True, "newton-cholesky"),  # iris: 15 parameters
            (13, 3, True, "newton-cholesky"),  # wine: 42
            (63, 4, True, "newton-cholesky"),  # 256, the largest
            (64, 4, False, "newton-cholesky"),  # 256 without intercepts
            (64, 4, True, "lbfgs"),  # 260
            (64, 10, True, "lbfgs"),  # digits: 650
        ],
    )
    def test_choice_by_shape(self, n_features, n_classes, fit_intercept, expected):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((60, n_features))
        y = np.arange(60) % n_classes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = SoftmaxClassifier(fit_intercept=fit_intercept, max_iter=2).fit(X, y)
        assert clf.solver == "auto"
        assert clf.solver_ == expected

    def test_explicit_solver_is_kept(self, iris):
        X, y = iris
        assert SoftmaxClassifier(solver="newton-cg").fit(X, y).solver_ == "newton-cg"

    def test_large_data_fits_are_reproducible_without_random_state(self):
        # from 32,768 rows auto runs newton-cg on Hessian row subsamples: without a
        # random_state they are drawn from a seed of the data's shape, so two fits of
        # the same data take the same steps and agree to the last bit; another seed
        # draws other subsets (other bits) but reaches the same optimum
        rng = np.random.default_rng(0)
        X = rng.standard_normal((4 * 8192 + 100, 30))
        y = np.argmax(X[:, :10] + rng.standard_normal((X.shape[0], 10)), axis=1)
        first, second = (SoftmaxClassifier().fit(X, y) for _ in range(2))
        assert first.solver_ == "newton-cg"
        np.testing.assert_array_equal(first.coef_, second.coef_)
        np.testing.assert_array_equal(first.intercept_, second.intercept_)
        assert first.n_iter_ == second.n_iter_
        seeded = SoftmaxClassifier(random_state=1).fit(X, y)
        assert not np.array_equal(seeded.coef_, first.coef_)
        np.testing.assert_allclose(seeded.coef_, first.coef_, atol=1e-3)


class TestFirstCall:
    """A fit and a prediction in a fresh process never import numba (no JIT to wait for)."""

    @pytest.mark.parametrize("solver", ["auto", "lbfgs", "newton-cg", "adam"])
    def test_digits_fit_and_predict_proba_do_not_import_numba(self, solver):
        # digits' 1797 x 10 logits are above the kernels' min_size: before, this loaded numba
        code = (
            "import sys\n"
            "from sklearn.datasets import load_digits\n"
            "from softgrad import SoftmaxClassifier\n"
            "X, y = load_digits(return_X_y=True)\n"
            f"clf = SoftmaxClassifier(solver={solver!r}, max_iter=5).fit(X / 16, y)\n"
            "clf.predict_proba(X / 16), clf.predict_log_proba(X / 16), clf.score(X / 16, y)\n"
            "print('numba' in sys.modules, 'softgrad.kernels._softmax' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["False", "False"]

    def test_loaded_kernels_serve_predict_proba(self, iris):
        # once this process has the kernels, a large predict_proba uses them (same values)
        from softgrad import kernels

        pytest.importorskip("numba")
        X, y = iris
        clf = SoftmaxClassifier().fit(X, y)
        Xbig = np.repeat(X, 20, axis=0)
        before = clf.predict_proba(Xbig)
        assert kernels.load() is not None
        assert kernels.loaded()
        np.testing.assert_allclose(clf.predict_proba(Xbig), before, rtol=1e-12, atol=1e-15)


class TestMaxIterZero:
    """max_iter=0 is accepted, as in scikit-learn, and returns the initial state."""

    @pytest.mark.parametrize("solver", SOLVERS)
    def test_returns_the_initial_state(self, iris, solver):
        X, y = iris
        with pytest.warns(ConvergenceWarning, match="max_iter=0"):
            clf = SoftmaxClassifier(solver=solver, max_iter=0, random_state=0).fit(X, y)
        np.testing.assert_array_equal(clf.coef_, 0.0)
        np.testing.assert_array_equal(clf.intercept_, 0.0)
        assert clf.n_iter_ == 0
        # at W = 0, b = 0 every class has probability 1/K: the objective is log K
        assert clf.loss_curve_ == [pytest.approx(np.log(3), rel=1e-12)]
        np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)

    @pytest.mark.parametrize("solver", SOLVERS)
    def test_warm_start_keeps_the_coefficients(self, iris, solver):
        X, y = iris
        clf = SoftmaxClassifier(solver=solver, warm_start=True, random_state=0, tol=1e-3)
        clf.fit(X, y)
        coef, intercept = clf.coef_.copy(), clf.intercept_.copy()
        clf.set_params(max_iter=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        np.testing.assert_array_equal(clf.coef_, coef)
        np.testing.assert_allclose(clf.intercept_, intercept, atol=1e-15)
        assert clf.n_iter_ == 0


class TestModelsExtra:
    """Without scikit-learn, the classifier says which pip line installs it."""

    @pytest.mark.parametrize(
        "statement",
        [
            "from softgrad import SoftmaxClassifier",
            "import softgrad.models",
            "from softgrad.models._estimator import SoftmaxClassifier",
        ],
        ids=["softgrad", "models", "private-module"],
    )
    def test_missing_sklearn_names_the_extra(self, statement):
        code = (
            "import sys\n"
            "sys.modules['sklearn'] = None  # import sklearn now raises ImportError\n"
            "import numpy, softgrad\n"
            "assert softgrad.softmax(numpy.zeros(2)).tolist() == [0.5, 0.5]  # the core works\n"
            "try:\n"
            f"    {statement}\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.startswith("MissingExtraError")
        assert "SoftmaxClassifier needs the package 'sklearn'" in out
        assert "pip install 'softgrad[models]'" in out


def test_import_softgrad_does_not_import_sklearn():
    code = "import sys, softgrad; print('sklearn' in sys.modules, 'scipy.optimize' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
    assert "SoftmaxClassifier" in __import__("softgrad").__all__
