"""SoftmaxClassifier on Dask: the same optimum as in memory, lazy predictions, lost workers.

The cluster tests share one ``LocalCluster`` of two worker processes, started
and stopped by a module fixture; the rest run on Dask's synchronous
scheduler.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from softgrad import SoftmaxClassifier
from softgrad.models import MultinomialObjective
from softgrad.models._dask_objective import DaskObjective

RTOL = 1e-6  # the issue's bound on the coefficients' relative difference


def make_data(n, d=4, k=3, seed=0, dtype=np.float64):
    """A separable-enough multinomial problem with a well-defined optimum."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((k, d))
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def rel_diff(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def sync():
    with dask.config.set(scheduler="synchronous"):
        yield


class TestObjective:
    """The per-block sums equal the in-memory objective (synchronous scheduler)."""

    @pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
    def test_loss_gradient_and_subset_hvp_equal_in_memory(self, sync, weighted):
        X, y = make_data(500)
        sw = np.random.default_rng(1).uniform(0.2, 2.0, 500) if weighted else None
        mem = MultinomialObjective(X, y, n_classes=3, C=0.5, sample_weight=sw)
        dobj = DaskObjective(
            da.from_array(X, chunks=(120, 4)),
            da.from_array(y, chunks=120),
            n_classes=3,
            C=0.5,
            sample_weight=None if sw is None else da.from_array(sw, chunks=120),
            sw_sum=None if sw is None else float(sw.sum()),
        )
        rng = np.random.default_rng(2)
        w, v = rng.standard_normal(mem.n_params), rng.standard_normal(mem.n_params)
        f_mem, g_mem = mem.loss_and_grad(w)
        f_dask, g_dask = dobj.loss_and_grad(w)
        assert f_dask == pytest.approx(f_mem, rel=1e-12)
        np.testing.assert_allclose(g_dask, g_mem, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(dobj.hessp(w)(v), mem.hessp(w)(v), rtol=1e-10, atol=1e-14)
        # a Newton-CG row subset spanning several blocks, some of them empty
        rows = np.sort(rng.choice(np.r_[0:100, 300:500], size=70, replace=False))
        np.testing.assert_allclose(
            dobj.hessp(w, rows)(v), mem.hessp(w, rows)(v), rtol=1e-10, atol=1e-14
        )

    def test_one_pass_per_evaluation(self, sync):
        X, y = make_data(200)
        dobj = DaskObjective(
            da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50), n_classes=3
        )
        w = np.zeros(dobj.n_params)
        dobj.loss(w)
        dobj.loss_and_grad(w)  # the line search's accepted point: no second pass
        assert dobj.n_evals == 1


class TestLocalScheduler:
    @pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
    def test_without_a_client_same_optimum(self, sync, solver):
        X, y = make_data(600, seed=3)
        mem = SoftmaxClassifier(solver=solver, tol=1e-8).fit(X, y)
        lazy = SoftmaxClassifier(solver=solver, tol=1e-8).fit(da.from_array(X, chunks=150), y)
        assert rel_diff(lazy.coef_, mem.coef_) < RTOL
        assert rel_diff(lazy.intercept_, mem.intercept_) < RTOL

    @pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
    @pytest.mark.parametrize("solver", ["sgd", "adam"])
    def test_stochastic_solvers_stream_blocks_towards_the_optimum(self, sync, solver):
        X, y = make_data(800, seed=4)
        best = SoftmaxClassifier(tol=1e-8).fit(X, y)
        obj = MultinomialObjective(X, y, n_classes=3)
        clf = SoftmaxClassifier(
            solver=solver, max_iter=60, learning_rate=0.05, tol=0.0, random_state=0
        )
        clf.fit(da.from_array(X, chunks=50), y)
        assert len(clf.loss_curve_) == clf.n_iter_ > 10
        assert clf.fit_stats_["blocks"] == 16
        f_best = obj.loss(obj.pack(best.coef_, best.intercept_))
        f_fit = obj.loss(obj.pack(clf.coef_, clf.intercept_))
        f_zero = obj.loss(np.zeros(obj.n_params))
        # most of the way from the start to the optimum, after 60 epochs of 16 block updates
        assert f_fit - f_best < 0.02 * (f_zero - f_best)


class TestPersist:
    """``persist`` through Dask's configuration: the estimator's ``fit`` has no such option."""

    @pytest.fixture
    def persisted(self, monkeypatch):
        calls = []
        original = dask.persist

        def record(*args, **kwargs):
            calls.append(len(args))
            return original(*args, **kwargs)

        monkeypatch.setattr(dask, "persist", record)
        return calls

    @pytest.mark.parametrize(("setting", "expected"), [(None, [3]), (False, []), (True, [3])])
    def test_config_overrides_auto(self, sync, persisted, setting, expected):
        X, y = make_data(300)
        settings = {} if setting is None else {"softgrad.persist": setting}
        with dask.config.set(settings):
            clf = SoftmaxClassifier(solver="lbfgs", tol=1e-8).fit(da.from_array(X, chunks=100), y)
        assert persisted == expected  # tiny data: "auto" persists it
        ref = SoftmaxClassifier(solver="lbfgs", tol=1e-8).fit(X, y)
        assert rel_diff(clf.coef_, ref.coef_) < RTOL

    def test_bad_setting_names_the_key_and_the_fix(self, sync):
        X, y = make_data(60)
        with (
            dask.config.set({"softgrad.persist": "yes"}),
            pytest.raises(
                ValueError, match=r"'softgrad.persist' must be True, False or 'auto', got 'yes'"
            ),
        ):
            SoftmaxClassifier().fit(da.from_array(X, chunks=30), y)


class TestCluster:
    @pytest.mark.parametrize(
        ("solver", "n", "chunk"),
        [("lbfgs", 3000, 700), ("newton-cg", 3000, 700), ("newton-cg", 33_000, 9000)],
        ids=["lbfgs", "newton-cg", "newton-cg-subsampled-hessian"],
    )
    def test_same_optimum_as_in_memory(self, client, solver, n, chunk):
        X, y = make_data(n, seed=5)
        kwargs = {"solver": solver, "tol": 1e-4, "C": 2.0, "random_state": 0}
        mem = SoftmaxClassifier(**kwargs).fit(X, y)
        dist = SoftmaxClassifier(**kwargs).fit(da.from_array(X, chunks=(chunk, 4)), y)
        assert rel_diff(dist.coef_, mem.coef_) < RTOL
        assert rel_diff(dist.intercept_, mem.intercept_) < RTOL
        assert dist.n_iter_ == mem.n_iter_
        np.testing.assert_array_equal(dist.classes_, mem.classes_)

    def test_float32_sample_weight_and_labels(self, client):
        X, y = make_data(2000, seed=6, dtype=np.float32)
        labels = np.array(["cat", "dog", "emu"])[y]
        sw = np.random.default_rng(7).uniform(0.1, 3.0, 2000).astype(np.float32)
        mem = SoftmaxClassifier(tol=1e-5).fit(X, labels, sample_weight=sw)
        dist = SoftmaxClassifier(tol=1e-5).fit(
            da.from_array(X, chunks=500),
            da.from_array(labels, chunks=500),
            sample_weight=da.from_array(sw, chunks=500),
        )
        assert dist.coef_.dtype == np.float32
        np.testing.assert_array_equal(dist.classes_, ["cat", "dog", "emu"])
        # float32 products summed in another order: float32's precision, not 1e-6
        assert rel_diff(dist.coef_, mem.coef_) < 1e-3

    def test_predictions_are_lazy_and_equal_in_memory(self, client):
        X, y = make_data(1000, seed=8)
        clf = SoftmaxClassifier().fit(X, y)
        dX = da.from_array(X, chunks=(300, 4))
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            lazy = getattr(clf, method)(dX)
            assert isinstance(lazy, da.Array), method
            assert lazy.chunks[0] == dX.chunks[0], method
            np.testing.assert_allclose(lazy.compute(), getattr(clf, method)(X), rtol=1e-12)
        assert clf.score(dX, da.from_array(y, chunks=300)) == pytest.approx(clf.score(X, y))

    def test_two_class_decision_function_is_one_column(self, client):
        X, y = make_data(400, k=2, seed=9)
        clf = SoftmaxClassifier().fit(da.from_array(X, chunks=100), y)
        d = clf.decision_function(da.from_array(X, chunks=100))
        assert d.ndim == 1
        np.testing.assert_allclose(d.compute(), clf.decision_function(X), rtol=1e-12)

    def test_dataframe_with_a_target_column(self, client):
        pd = pytest.importorskip("pandas")
        dd = pytest.importorskip("dask.dataframe")
        X, y = make_data(1200, seed=10)
        df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(label=y)
        ddf = dd.from_pandas(df, npartitions=3)
        # one solver on both sides (auto picks newton-cholesky in memory only)
        mem = SoftmaxClassifier(solver="lbfgs", tol=1e-6).fit(df[["a", "b", "c", "d"]], y)
        dist = SoftmaxClassifier(solver="lbfgs", tol=1e-6).fit(ddf, "label")
        assert rel_diff(dist.coef_, mem.coef_) < RTOL
        assert list(dist.feature_names_in_) == ["a", "b", "c", "d"]
        # columns are taken by name for prediction, the target column ignored
        shuffled = ddf[["d", "label", "b", "a", "c"]]
        expected = mem.predict(df[["a", "b", "c", "d"]])
        np.testing.assert_array_equal(dist.predict(shuffled).compute(), expected)
        assert dist.score(ddf, "label") == pytest.approx(mem.score(df[["a", "b", "c", "d"]], y))

    def test_a_worker_killed_during_the_fit_changes_nothing(self, client):
        X, y = make_data(4000, seed=11)
        mem = SoftmaxClassifier(solver="lbfgs", tol=1e-6).fit(X, y)
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one(iteration, objective):
            if iteration == 3 and not killed:
                os.kill(pids[0], signal.SIGKILL)  # its persisted blocks are lost with it
                killed.append(iteration)

        clf = SoftmaxClassifier(solver="lbfgs", tol=1e-6, callback=kill_one)
        clf.fit(da.from_array(X, chunks=500), y)
        assert killed == [3]
        assert rel_diff(clf.coef_, mem.coef_) < RTOL
        client.wait_for_workers(2, timeout=60)  # the nanny restarted it for the next tests


class TestErrors:
    def test_nan_in_x_names_x(self, sync):
        X, y = make_data(100)
        X[77, 2] = np.nan
        with pytest.raises(ValueError, match="X holds NaN"):
            SoftmaxClassifier().fit(da.from_array(X, chunks=30), y)

    def test_y_of_another_length_names_y(self, sync):
        X, y = make_data(100)
        with pytest.raises(ValueError, match="y has 99 rows but X has 100"):
            SoftmaxClassifier().fit(da.from_array(X, chunks=30), y[:99])

    def test_negative_sample_weight_is_refused(self, sync):
        X, y = make_data(100)
        sw = np.ones(100)
        sw[50] = -1.0
        with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
            SoftmaxClassifier().fit(da.from_array(X, chunks=30), y, sample_weight=sw)

    def test_one_class_is_refused(self, sync):
        X, _ = make_data(100)
        with pytest.raises(ValueError, match="at least 2 classes"):
            SoftmaxClassifier().fit(da.from_array(X, chunks=30), np.zeros(100, int))

    def test_bad_parameter_is_named(self, sync):
        X, y = make_data(100)
        with pytest.raises(ValueError, match="C must be"):
            SoftmaxClassifier(C=-1.0).fit(da.from_array(X, chunks=30), y)

    def test_missing_target_column_lists_the_columns(self, sync):
        pd = pytest.importorskip("pandas")
        dd = pytest.importorskip("dask.dataframe")
        X, y = make_data(100)
        ddf = dd.from_pandas(pd.DataFrame(X, columns=list("abcd")).assign(t=y), npartitions=2)
        with pytest.raises(ValueError, match=r"y='label' is not a column of X.*'t'"):
            SoftmaxClassifier().fit(ddf, "label")

    def test_predict_with_other_features_names_x(self, sync):
        X, y = make_data(100)
        clf = SoftmaxClassifier().fit(X, y)
        with pytest.raises(ValueError, match=r"X has shape \(100, 3\).*fitted on 4 features"):
            clf.predict(da.from_array(X[:, :3], chunks=30))


def test_auto_runs_a_cluster_solver_and_newton_cholesky_is_refused():
    X, y = make_data(600, seed=3)
    dX = da.from_array(X, chunks=200)
    clf = SoftmaxClassifier(tol=1e-8).fit(dX, y)
    assert clf.solver_ == "lbfgs"  # newton-cg from 32,768 rows; never newton-cholesky
    mem = SoftmaxClassifier(tol=1e-8).fit(X, y)
    assert mem.solver_ == "newton-cholesky"
    assert rel_diff(clf.coef_, mem.coef_) < 1e-5  # the same optimum by two solvers
    with pytest.raises(ValueError, match=r"newton-cholesky.*not available for Dask input"):
        SoftmaxClassifier(solver="newton-cholesky").fit(dX, y)
