"""``softgrad train`` carries the labels as one-byte class codes through the split.

:func:`class_codes` must be ``np.unique`` exactly, and a split of codes with
the labels beside them must be the split of the labels: same rows, same
labels in the parts, same notes and errors (naming labels, never codes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softgrad.app._data import Dataset
from softgrad.app._prepare import SplitError, class_codes, split


@settings(max_examples=60, deadline=None)
@given(
    values=st.one_of(  # a small range (counted by bincount) or a wide one (sorted)
        st.lists(st.integers(-50, 50), min_size=1, max_size=6),
        st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=6),
    ),
    n=st.integers(1, 200),
    dtype=st.sampled_from(["int64", "int32", "uint8", "str"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_class_codes_is_np_unique(values, n, dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        values = [v % 256 for v in values]
    elif dtype == "int32":
        values = [v % 2**31 for v in values]
    y = np.array(values)[rng.integers(0, len(values), n)]
    y = y.astype(str) if dtype == "str" else y.astype(dtype)
    labels, codes, counts = class_codes(y)
    expected = np.unique(y, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(labels, expected[0])
    assert labels.dtype == expected[0].dtype
    np.testing.assert_array_equal(codes, expected[1])
    np.testing.assert_array_equal(counts, expected[2])
    assert codes.dtype == np.int8  # up to 127 classes: a byte each
    np.testing.assert_array_equal(labels[codes], y)


def test_class_codes_widen_past_127_classes():
    y = np.arange(300) * 7
    labels, codes, _ = class_codes(y)
    assert codes.dtype == np.int16
    np.testing.assert_array_equal(labels[codes], y)


def coded(ds: Dataset) -> tuple[Dataset, np.ndarray]:
    labels, codes, _ = class_codes(ds.y)
    return Dataset(ds.X.copy(), codes, ds.feature_names, ds.target_name, ds.source), labels


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(30, 300),
    k=st.integers(2, 5),
    singles=st.integers(0, 2),
    test_size=st.floats(0.1, 0.5),
    seed=st.integers(0, 2**31 - 1),
    strings=st.booleans(),
)
def test_split_of_codes_is_split_of_labels(n, k, singles, test_size, seed, strings):
    names = np.array(["ant", "bee", "cow", "dog", "eel", "fox", "gnu"])
    raw = np.concatenate([np.arange(n) % k, k + np.arange(singles)])  # single-sample classes
    y = names[raw] if strings else 10 * raw + 3
    X = np.random.default_rng(seed).standard_normal((len(y), 3))
    ds = Dataset(X, y, ("a", "b", "c"), "t", "toy")
    by_codes, labels = coded(ds)
    expected = split(Dataset(X.copy(), y, ds.feature_names, "t", "toy"), test_size, seed % 97)
    got = split(by_codes, test_size, seed % 97, labels)
    np.testing.assert_array_equal(got.X_train, expected.X_train)
    np.testing.assert_array_equal(got.X_test, expected.X_test)
    np.testing.assert_array_equal(got.y_train, expected.y_train)
    np.testing.assert_array_equal(got.y_test, expected.y_test)
    assert got.y_train.dtype == y.dtype
    assert got.notes == expected.notes


def test_notes_and_errors_name_labels_not_codes():
    y = np.array([40, 50] * 20 + [70])
    X = np.zeros((len(y), 2))
    by_codes, labels = coded(Dataset(X, y, ("a", "b"), "t", "toy"))
    notes = split(by_codes, 0.25, 0, labels).notes
    assert "(70)" in notes[0]
    y = np.array([40, 40, 50, 50])
    by_codes, labels = coded(Dataset(np.zeros((4, 2)), y, ("a", "b"), "t", "toy"))
    with pytest.raises(SplitError, match=r"class\(es\) \[(40|50)\]"):
        split(by_codes, 0.75, 0, labels)


def test_train_keeps_integer_labels(tmp_path: Path):
    from softgrad.app._training import TrainConfig, train

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = np.array([-5, 10, 2000])[np.argmax(X @ rng.standard_normal((3, 3)), axis=1)]
    data = tmp_path / "d.csv"
    rows = [f"{a:.6f},{b:.6f},{c:.6f},{t}" for (a, b, c), t in zip(X, y, strict=True)]
    data.write_text("a,b,c,label\n" + "\n".join(rows) + "\n")
    with tempfile.TemporaryDirectory(dir=tmp_path) as out:
        result = train(TrainConfig(data=str(data), target="label", out=out + "/run"))
    assert result.model.classes_.tolist() == [-5, 10, 2000]
    assert result.metrics["classes"] == [-5, 10, 2000]
    assert result.metrics["n_train"] + result.metrics["n_test"] == 400
    assert result.metrics["test_accuracy"] > 0.8
