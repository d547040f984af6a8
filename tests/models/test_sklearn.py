"""SoftmaxClassifier against scikit-learn: its estimator checks, its LogisticRegression optimum."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from softgrad import SoftmaxClassifier


@parametrize_with_checks(
    [
        SoftmaxClassifier(),
        SoftmaxClassifier(solver="adam", learning_rate=0.05, tol=1e-3, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name != "iris":  # lbfgs needs comparable feature scales to converge tightly
        X = StandardScaler().fit_transform(X)
    return X, y


EXACT_SOLVERS = ["auto", "lbfgs", "newton-cg", "newton-cholesky"]


def _relative_difference(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


@functools.cache
def _newton_reference(data: str, weighted: bool = False) -> LogisticRegression:
    """scikit-learn's second-order solver at tol 1e-10 (fitted once per data set)."""
    X, y = _dataset(data)
    sw = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y)) if weighted else None
    ref = LogisticRegression(C=2.0, solver="newton-cholesky", tol=1e-10, max_iter=1000)
    with threadpool_limits(1):  # its Hessian products on a busy machine: one thread is faster
        return ref.fit(X, y, sample_weight=sw)


class TestSameOptimumAsLogisticRegression:
    """Converged fits are interchangeable with scikit-learn's multinomial LogisticRegression."""

    @pytest.mark.parametrize("solver", EXACT_SOLVERS)
    @pytest.mark.parametrize(
        ("data", "C"),
        [("iris", 1.0), ("iris", 0.05), ("wine", 1.0), ("wine", 10.0), ("digits", 1.0)],
    )
    def test_coefficients_and_probabilities(self, data, solver, C):
        X, y = _dataset(data)
        ours = SoftmaxClassifier(C=C, solver=solver, tol=1e-9, max_iter=5000).fit(X, y)
        ref = LogisticRegression(C=C, tol=1e-8, max_iter=10000).fit(X, y)
        assert _relative_difference(ours.coef_, ref.coef_) < 1e-4
        ref_b = ref.intercept_ - ref.intercept_.mean()
        np.testing.assert_allclose(ours.intercept_, ref_b, atol=1e-4 * np.abs(ref_b).max())
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))

    @pytest.mark.parametrize("solver", EXACT_SOLVERS)
    @pytest.mark.parametrize("data", ["iris", "wine", "digits"])
    def test_tight_tolerance_matches_newton_cholesky_reference(self, data, solver):
        # at tol 1e-10 every solver lands within 1e-4 (relative) of scikit-learn's own
        # second-order solver run to the same tolerance
        X, y = _dataset(data)
        ours = SoftmaxClassifier(C=2.0, solver=solver, tol=1e-10, max_iter=10000).fit(X, y)
        assert _relative_difference(ours.coef_, _newton_reference(data).coef_) < 1e-4

    @pytest.mark.parametrize("solver", EXACT_SOLVERS)
    def test_sample_weights_and_no_intercept(self, solver):
        X, y = _dataset("wine")
        sw = np.random.default_rng(0).uniform(0.1, 3.0, size=len(y))
        kw = {"C": 0.5, "fit_intercept": False}
        ours = SoftmaxClassifier(**kw, solver=solver, tol=1e-10, max_iter=5000)
        ours.fit(X, y, sample_weight=sw)
        ref = LogisticRegression(**kw, tol=1e-10, max_iter=10000).fit(X, y, sample_weight=sw)
        assert _relative_difference(ours.coef_, ref.coef_) < 1e-4
        np.testing.assert_array_equal(ours.intercept_, 0.0)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)

    @pytest.mark.parametrize("solver", EXACT_SOLVERS)
    def test_sample_weights_with_intercept(self, solver):
        X, y = _dataset("iris")
        sw = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
        ours = SoftmaxClassifier(C=2.0, solver=solver, tol=1e-10, max_iter=5000)
        ours.fit(X, y, sample_weight=sw)
        ref = _newton_reference("iris", weighted=True)
        assert _relative_difference(ours.coef_, ref.coef_) < 1e-4
        # unscaled iris: lbfgs stops on its relative-decrease rule (as scikit-learn's does)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)

    def test_binary_matches_logistic_regression_with_twice_c(self):
        X, y = _dataset("wine")
        X, y = X[y < 2], y[y < 2]
        ours = SoftmaxClassifier(C=0.3, tol=1e-9, max_iter=5000).fit(X, y)
        ref = LogisticRegression(C=0.6, tol=1e-8, max_iter=10000).fit(X, y)
        np.testing.assert_allclose(
            ours.coef_[1] - ours.coef_[0], ref.coef_[0], rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_pipeline_and_grid_search():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), SoftmaxClassifier())
    search = GridSearchCV(pipe, {"softmaxclassifier__C": [0.01, 1.0, 100.0]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["softmaxclassifier__C"] in (1.0, 100.0)
    assert search.score(X, y) > 0.95
    # a strong penalty shrinks the weights toward 0
    small = search.cv_results_["mean_test_score"][0]
    assert small < search.best_score_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_stochastic_solvers_reach_lbfgs_accuracy(solver):
    X, y = _dataset("digits")
    exact = SoftmaxClassifier(max_iter=2000).fit(X, y)
    clf = SoftmaxClassifier(
        solver=solver, learning_rate=0.01, tol=1e-3, random_state=0, max_iter=200
    )
    clf.fit(X, y)
    assert clf.score(X, y) > exact.score(X, y) - 0.02
    # the objective went down over the epochs
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
