"""SoftmaxClassifier: its derivatives, inputs, warnings, dtypes, persistence."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from softgrad import SoftmaxClassifier, gradcheck
from softgrad.models._classifier import (
    FORMAT_VERSION,
    ModelFileError,
    _minibatch_loss_and_grad,
    _Objective,
)


def _problem(n=40, d=5, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, k, size=n).astype(np.intp)
    sw = rng.uniform(0.2, 2.0, size=n).astype(dtype)
    return X, y, sw


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


class TestDerivatives:
    """Every solver's gradient and newton-cg's HVP against finite differences."""

    @pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
    @pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
    def test_full_batch_gradient_and_hvp(self, weighted, fit_intercept):
        # the objective that lbfgs and newton-cg minimise
        X, y, sw = _problem()
        obj = _Objective(X, y, sw if weighted else None, 4, 0.7, fit_intercept)
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

    def test_subsampled_hvp_is_exact_on_all_rows(self):
        # newton-cg's subsampled Hessian with every row is the full Hessian
        X, y, sw = _problem()
        obj = _Objective(X, y, sw, 4, 1.0, True)
        w = np.random.default_rng(2).standard_normal(obj.n_params)
        v = np.random.default_rng(3).standard_normal(obj.n_params)
        np.testing.assert_allclose(obj.hessp(w, np.arange(len(y)))(v), obj.hessp(w)(v))

    def test_minibatch_gradient(self):
        # the gradient that sgd and adam step along
        X, y, sw = _problem(n=16)
        W0 = np.random.default_rng(4).standard_normal((4, 5))
        b0 = np.random.default_rng(5).standard_normal(4)
        scale = sw / 16

        def split(w):
            return w[:20].reshape(4, 5), w[20:]

        def f(w):
            W, b = split(w)
            loss, _ = _minibatch_loss_and_grad(X, y, scale, W, b, l2=0.3, fit_intercept=True)
            return np.asarray(loss + 0.15 * np.vdot(W, W))

        def grad(w):
            W, b = split(w)
            return _minibatch_loss_and_grad(X, y, scale, W, b, l2=0.3, fit_intercept=True)[1]

        result = gradcheck(f, np.concatenate([W0.ravel(), b0]), grad=grad, seed=0)
        assert result.ok

    def test_a_wrong_gradient_is_caught(self):
        X, y, _ = _problem()
        obj = _Objective(X, y, None, 4, 1.0, True)
        w = np.zeros(obj.n_params)
        result = gradcheck(
            lambda w: np.asarray(obj.loss(w)),
            w,
            grad=lambda w: 1.01 * obj.loss_and_grad(w)[1],
            seed=0,
            raise_exception=False,
        )
        assert not result.ok

    def test_objective_value_is_sklearn_scaling(self):
        # mean weighted CE + ||W||² / (2 C Σs)
        X, y, sw = _problem()
        obj = _Objective(X, y, sw, 4, 0.5, True)
        w = np.random.default_rng(6).standard_normal(obj.n_params)
        W, b = obj.unpack(w)
        z = X @ W.T + b
        ce = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1)))
        expected = np.dot(sw, ce) / sw.sum() + np.vdot(W, W) / (2 * 0.5 * sw.sum())
        assert obj.loss(w) == pytest.approx(expected, rel=1e-12)


class TestFit:
    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "sgd", "adam"])
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

    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "sgd", "adam"])
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
            ("max_iter", 0, "max_iter must be an integer"),
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
    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
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


class TestSaveLoad:
    @pytest.mark.parametrize(
        "labels",
        [
            np.array(["setosa", "versicolor", "virginica"]),
            np.array([10, 20, 30]),
            np.array([1.0, 2.0, 4.0]),
            np.array(["a", "b", "c"], dtype=object),
        ],
        ids=["str", "int", "float", "object-str"],
    )
    def test_round_trip(self, iris, tmp_path, labels):
        X, y = iris
        clf = SoftmaxClassifier(C=0.5, solver="newton-cg").fit(X, labels[y])
        path = tmp_path / "model.npz"
        clf.save(path, metadata={"target": "species"})
        loaded = SoftmaxClassifier.load(path)
        np.testing.assert_array_equal(loaded.coef_, clf.coef_)
        np.testing.assert_array_equal(loaded.intercept_, clf.intercept_)
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert loaded.get_params()["C"] == 0.5
        assert loaded.get_params()["solver"] == "newton-cg"
        assert loaded.metadata_ == {"target": "species"}
        assert loaded.n_features_in_ == 4
        assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away

    def test_file_has_no_pickles(self, iris, tmp_path):
        X, y = iris
        path = tmp_path / "m.npz"
        SoftmaxClassifier().fit(X, y).save(path)
        with np.load(path, allow_pickle=False) as data:
            assert all(data[name].dtype != object for name in data.files)
            assert int(data["format_version"]) == FORMAT_VERSION

    def test_unstorable_labels_are_refused(self, iris, tmp_path):
        X, y = iris
        labels = np.array([(0,), "b", 2.5], dtype=object)[y]
        clf = SoftmaxClassifier().fit(X, np.array([str(v) for v in labels], dtype=object))
        clf.classes_ = np.array([(0,), "b", 2.5], dtype=object)
        with pytest.raises(ValueError, match="cannot save class labels of type"):
            clf.save(tmp_path / "m.npz")
        assert not list(tmp_path.iterdir())

    def test_truncated_file(self, iris, tmp_path):
        X, y = iris
        path = tmp_path / "m.npz"
        SoftmaxClassifier().fit(X, y).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFileError, match="truncated"):
            SoftmaxClassifier.load(path)

    def test_tampered_weights(self, iris, tmp_path):
        X, y = iris
        path = tmp_path / "m.npz"
        clf = SoftmaxClassifier().fit(X, y)
        clf.save(path)
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        arrays["coef"] = arrays["coef"] * 2
        np.savez(path, **arrays)
        with pytest.raises(ModelFileError, match="sha256"):
            SoftmaxClassifier.load(path)

    def test_not_a_model(self, tmp_path):
        path = tmp_path / "other.npz"
        np.savez(path, a=np.zeros(3))
        with pytest.raises(ModelFileError, match="not a softgrad SoftmaxClassifier"):
            SoftmaxClassifier.load(path)
        with pytest.raises(ModelFileError, match="does not exist"):
            SoftmaxClassifier.load(tmp_path / "missing.npz")
        (tmp_path / "text.npz").write_text("hello")
        with pytest.raises(ModelFileError, match="cannot read model file"):
            SoftmaxClassifier.load(tmp_path / "text.npz")

    def test_pickled_member_is_refused(self, tmp_path):
        # an object array inside the zip would need pickle: np.load refuses it
        path = tmp_path / "evil.npz"
        np.savez(path, format=np.array([{"x": 1}], dtype=object))
        with zipfile.ZipFile(path) as z:
            assert "format.npy" in z.namelist()
        with pytest.raises(ModelFileError):
            SoftmaxClassifier.load(path)

    def test_newer_format_version(self, iris, tmp_path):
        from softgrad.models._classifier import _checksum

        X, y = iris
        path = tmp_path / "m.npz"
        SoftmaxClassifier().fit(X, y).save(path)
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files if name != "sha256"}
        arrays["format_version"] = np.array(FORMAT_VERSION + 1)
        arrays["sha256"] = np.array(_checksum(arrays))
        np.savez(path, **arrays)
        with pytest.raises(ModelFileError, match="upgrade softgrad"):
            SoftmaxClassifier.load(path)


def test_import_softgrad_does_not_import_sklearn():
    code = "import sys, softgrad; print('sklearn' in sys.modules, 'scipy.optimize' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
    assert "SoftmaxClassifier" in __import__("softgrad").__all__
