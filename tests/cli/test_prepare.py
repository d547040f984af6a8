"""``softgrad train``'s split and standardisation in place, and the lean imports of train/predict."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

import softgrad
from softgrad.app._data import Dataset
from softgrad.app._prepare import split, standardise, take_rows
from softgrad.models import _dask_objective


def dataset(y: np.ndarray, seed: int = 0) -> Dataset:
    X = np.random.default_rng(seed).standard_normal((len(y), 3))
    return Dataset(X, y, ("a", "b", "c"), "t", "toy")


class TestSplit:
    @settings(max_examples=30, deadline=None)
    @given(
        n=st.integers(40, 400),
        k=st.integers(2, 5),
        test_size=st.floats(0.1, 0.5),
        seed=st.integers(0, 2**31 - 1),
        strings=st.booleans(),
    )
    def test_held_out_rows_are_train_test_splits(self, n, k, test_size, seed, strings):
        codes = np.arange(n) % k  # every class at least 8 times: stratified
        y = np.array(["ant", "bee", "cow", "dog", "eel"])[codes] if strings else codes
        ds = dataset(y, seed % 7)
        X_tr, X_te, y_tr, y_te = train_test_split(
            ds.X.copy(), y, test_size=test_size, random_state=seed, stratify=y
        )
        s = split(ds, test_size, seed)
        # the same held-out rows in the same order; the training rows in file order
        np.testing.assert_array_equal(s.X_test, X_te)
        np.testing.assert_array_equal(s.y_test, y_te)
        order = np.lexsort(X_tr.T)
        np.testing.assert_array_equal(s.X_train[np.lexsort(s.X_train.T)], X_tr[order])
        assert sorted(s.y_train.tolist()) == sorted(y_tr.tolist())

    def test_parts_are_views_of_the_one_array(self):
        ds = dataset(np.arange(100) % 3)
        s = split(ds, 0.25, 0)
        assert s.X_train.base is ds.X
        assert s.X_test.base is ds.X
        assert len(s.X_train) + len(s.X_test) == len(ds.X)

    def test_rows_and_labels_stay_together(self):
        y = np.arange(300) % 4
        X = np.column_stack([y, np.arange(300)]).astype(float)  # each row names its label
        s = split(Dataset(X, y, ("label", "i"), "t", "toy"), 0.3, 5)
        np.testing.assert_array_equal(s.X_train[:, 0], s.y_train)
        np.testing.assert_array_equal(s.X_test[:, 0], s.y_test)
        assert np.all(np.diff(s.X_train[:, 1]) > 0)  # file order
        assert sorted(np.concatenate([s.X_train[:, 1], s.X_test[:, 1]])) == list(range(300))

    def test_single_sample_class_is_trained_on_and_never_held_out(self):
        y = np.array([0, 1] * 20 + [7])
        s = split(dataset(y), 0.25, 0)
        assert 7 in s.y_train.tolist()
        assert 7 not in s.y_test.tolist()
        assert "single sample" in s.notes[0]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_take_rows_equals_fancy_indexing(n, data):
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))), dtype=np.intp)
    X = np.arange(n * 2, dtype=float).reshape(n, 2).copy()  # owns its memory
    expected = X[rows]
    got = take_rows(X, rows, block=data.draw(st.integers(1, 9)))  # many blocks, small arrays
    np.testing.assert_array_equal(got, expected)
    assert got.base is X


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-300, 1.0, 1e300]))
def test_standardise_in_place(seed, scale):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((50, 4)) * scale
    X[:, 3] = 2.5 * scale  # a constant column keeps scale 1
    raw = X.copy()
    Z, mean, std = standardise(X)
    assert Z is X
    np.testing.assert_allclose(Z[:, :3].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :3].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 3], 0.0)
    np.testing.assert_allclose(Z * std + mean, raw, rtol=1e-12, atol=1e-12 * scale)


def _run(code: str) -> str:
    src = str(Path(softgrad.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.strip()


def test_train_and_predict_never_import_pandas(tmp_path):
    pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")  # else nothing to show
    rng = np.random.default_rng(0)
    lines = ["a,b,label"] + [f"{a:.4f},{b:.4f},{'xy'[int(a > b)]}" for a, b in rng.random((200, 2))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    code = f"""
import sys
from softgrad.app._training import TrainConfig, stream_predictions, train
r = train(TrainConfig(data={str(tmp_path / "d.csv")!r}, target="label", out={str(tmp_path / "r")!r}))
header, lines = stream_predictions(r.files["model"], {str(tmp_path / "d.csv")!r})
text = "".join(lines)
import pandas  # still importable after
print("pandas" in sys.modules, text.count("\\n"), sys.modules["sklearn.utils.fixes"].pd is None)
"""
    # imported only by the last line: train, predict and the reader never did
    assert _run(code) == "True 200 True"


class TestOneBlasThread:
    def test_limit_holds_until_the_last_caller_leaves(self, monkeypatch):
        events = []

        class Limit:
            def restore_original_limits(self):
                events.append("restore")

        class Pools:
            def limit(self, limits, user_api):
                events.append(("limit", limits, user_api))
                return Limit()

        monkeypatch.setattr(_dask_objective, "blas_pools", lambda: Pools())
        monkeypatch.setattr(_dask_objective, "one_blas_thread_already", lambda: False)
        guard = _dask_objective.OneBlasThread()
        inside, leave = threading.Event(), threading.Event()

        def task():
            with guard:
                inside.set()
                leave.wait(5)

        worker = threading.Thread(target=task)
        worker.start()
        inside.wait(5)
        with guard:  # a second task while the first still runs: no second limit
            pass
        assert events == [("limit", 1, "blas")]  # not restored under the running task
        leave.set()
        worker.join(5)
        assert events == [("limit", 1, "blas"), "restore"]

    def test_nothing_is_changed_when_the_environment_says_one_thread(self, monkeypatch):
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
        monkeypatch.setattr(_dask_objective, "blas_pools", lambda: pytest.fail("limited"))
        with _dask_objective.OneBlasThread():
            pass

    def test_real_blas_runs_one_thread_inside(self):
        threadpoolctl = pytest.importorskip("threadpoolctl")
        code = """
import os
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.pop(var, None)
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
from softgrad.models._dask_objective import one_blas_thread
def blas():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
with threadpool_limits(2, user_api="blas"):
    before = blas()
    with one_blas_thread:
        inside = blas()
    print(before, inside, blas())
"""
        assert threadpoolctl is not None
        assert _run(code) == "2 1 2"


@pytest.mark.parametrize("proba", [False, True], ids=["labels", "proba"])
def test_prediction_text_quotes_as_the_csv_writer(proba):
    import csv
    import io

    from softgrad import SoftmaxClassifier
    from softgrad.app._training import _prediction_text

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 2))
    names = np.array(["a,b", 'say "hi"', "plain"])
    model = SoftmaxClassifier().fit(X, names[np.argmax(X @ rng.standard_normal((2, 3)), axis=1)])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for label, p in zip(model.predict(X), model.predict_proba(X), strict=True):
        writer.writerow([str(label), *([f"{v:.6g}" for v in p] if proba else [])])
    assert _prediction_text(model, X, proba) == buffer.getvalue()
    assert '"a,b"' in buffer.getvalue()  # the case is exercised
