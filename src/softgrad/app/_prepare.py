"""The held-out split and the standardisation of ``softgrad train``, in place.

A run's features are one array read from the file; the split and the
standardisation work in it rather than beside it, so a run's memory is the
data once (plus the held-out rows once while they are moved):

* :func:`split` draws the same held-out rows as scikit-learn's
  ``train_test_split`` with the same seed (``ShuffleSplit`` /
  ``StratifiedShuffleSplit``, which it calls), then moves the training rows,
  in file order, to the front of the array and the held-out rows behind
  them: both parts are views of the one array.
* :func:`standardise` scales the training rows where they are.

:func:`import_sklearn` imports scikit-learn without the pandas it loads at
start-up only to have at hand (``sklearn.utils.fixes``): a run never uses it,
and it costs about 70 MB and 2 s of every ``train`` and ``predict``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad.app._data import DataError, Dataset

__all__ = [
    "Split",
    "SplitError",
    "class_codes",
    "import_sklearn",
    "split",
    "standardise",
    "take_rows",
]

SMALL_TEST_SET = 20
"""Fewer held-out samples than this get a warning: their accuracy is a rough estimate."""

MOVE_ROWS = 1 << 14  # rows moved at a time by take_rows (2.5 MB of 20 float64 features)


class SplitError(ValueError):
    """A split that cannot be made with these options (``TrainingError`` for the CLI)."""


def import_sklearn() -> None:
    """Import ``sklearn.base`` without pandas, unless either is imported already.

    ``sklearn.utils.fixes`` runs ``import pandas`` when pandas is installed
    and keeps the module unused; blocking the name for that one import makes
    it see no pandas. The block is lifted at once, so a later ``import pandas``
    (Dask DataFrames) works as usual.

    Examples
    --------
    >>> import_sklearn()
    >>> import sys
    >>> "sklearn.base" in sys.modules
    True
    """
    if "sklearn.base" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sklearn.base  # noqa: F401
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


@dataclass
class Split:
    """Training and held-out rows: views of the data set's one feature array."""

    X_train: NDArray[np.float64]
    X_test: NDArray[np.float64]
    y_train: NDArray[Any]
    y_test: NDArray[Any]
    notes: list[str]


def take_rows(X: NDArray[Any], rows: NDArray[np.intp], *, block: int = MOVE_ROWS) -> NDArray[Any]:
    """Move ``X[rows]`` to the front of ``X``, in place; returns the view ``X[:len(rows)]``.

    ``rows`` must be increasing. Row ``rows[i] >= i`` is read before any
    write reaches it (the writes of a block end before the next block's first
    source row), so a block of ``block`` rows is the only copy.

    Examples
    --------
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> take_rows(X, np.array([1, 3, 4])).tolist()
    [[2.0, 3.0], [6.0, 7.0], [8.0, 9.0]]
    """
    for start in range(0, len(rows), block):
        stop = min(start + block, len(rows))
        X[start:stop] = X[rows[start:stop]]
    return X[: len(rows)]


def _held_out(y: NDArray[Any], test_size: float, seed: int, stratify: bool) -> NDArray[np.intp]:
    """The held-out rows ``train_test_split(..., random_state=seed)`` chooses, in its order."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    cv = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
        test_size=test_size, random_state=seed
    )
    _, test = next(cv.split(np.empty((len(y), 0)), y if stratify else None))
    return np.asarray(test, dtype=np.intp)


def class_codes(y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.intp]]:
    """``np.unique(y, return_inverse=True, return_counts=True)``, the codes in the smallest int type.

    Integer labels of a modest range are counted with ``np.bincount`` instead
    of sorted: on a million labels that is one temporary of the labels' size
    instead of about five, and the codes take a byte each for up to 127 classes.

    Examples
    --------
    >>> labels, codes, counts = class_codes(np.array([7, 3, 7, 9]))
    >>> labels.tolist(), codes.tolist(), codes.dtype.name, counts.tolist()
    ([3, 7, 9], [1, 0, 1, 2], 'int8', [1, 2, 1])
    """
    lo = y.min() if y.dtype.kind in "iu" and len(y) else None
    if lo is None or int(y.max()) - int(lo) > 4 * len(y):
        labels, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    else:
        offsets = y - lo
        counts = np.bincount(offsets)
        present = np.flatnonzero(counts)
        labels, counts = (present + lo).astype(y.dtype), counts[present]
        ranks = np.zeros(int(present[-1]) + 1, dtype=np.intp)
        ranks[present] = np.arange(len(present))
        inverse = np.take(ranks.astype(np.min_scalar_type(-len(present))), offsets)
    codes = inverse.astype(np.min_scalar_type(-len(labels)), copy=False)
    return labels, codes, counts


def split(ds: Dataset, test_size: float, seed: int, labels: NDArray[Any] | None = None) -> Split:
    """Training and held-out parts of ``ds``, moved within ``ds.X``, and warnings.

    Every class is trained on: a class with a single sample goes to the
    training split (with a warning), the rest is split stratified, and a
    split that would leave a class out of training is refused. The held-out
    rows are ``train_test_split``'s with ``random_state=seed`` in its order;
    the training rows keep the file's order. ``ds.X`` is reordered: the
    returned parts are its views. With ``labels`` (the sorted classes),
    ``ds.y`` holds class codes, indices into ``labels``, as
    :func:`class_codes` gives them, and the parts hold the labels: the
    caller need not keep the labels of every row through the split.

    Examples
    --------
    >>> X = np.arange(16.0).reshape(8, 2)
    >>> ds = Dataset(X, np.array([0, 1] * 4), ("a", "b"), "t", "toy")
    >>> s = split(ds, 0.25, seed=0)
    >>> len(s.X_train), len(s.X_test), sorted(s.y_test.tolist())
    (6, 2, [0, 1])
    >>> bool(np.shares_memory(s.X_train, X) and np.shares_memory(s.X_test, X))
    True
    """
    if not 0.0 < test_size < 1.0:
        msg = f"--test-size must be a fraction in (0, 1), got {test_size}"
        raise SplitError(msg)
    # class codes split as the labels do (sorted alike) and much faster than strings
    if labels is None:
        labels, codes, counts = class_codes(ds.y)
    else:
        codes, counts = ds.y, np.bincount(ds.y, minlength=len(labels))
    if len(counts) < 2:
        msg = f"{ds.source}: the target {ds.target_name!r} holds one class only; need at least 2"
        raise DataError(msg)
    notes: list[str] = []
    single = np.flatnonzero(counts < 2)
    if len(single):
        notes.append(
            f"{len(single)} class(es) of {ds.target_name!r} have a single sample "
            f"({', '.join(map(str, labels[single].tolist()[:5]))}); it is used for training only"
        )
    # rows that may be held out: all but the single-sample classes
    candidates = np.flatnonzero(~np.isin(codes, single)) if len(single) else None
    y = codes if candidates is None else codes[candidates]
    n_test = int(np.ceil(test_size * len(y)))
    n_classes = len(labels) - len(single)
    stratify = n_test >= n_classes and len(y) - n_test >= n_classes
    if not stratify:
        notes.append(
            f"{n_test} held-out samples cannot hold each of the {n_classes} classes: "
            "the split is not stratified"
        )
    try:
        test = _held_out(y, test_size, seed, stratify)
    except ValueError as exc:
        msg = f"cannot split {len(codes)} samples with --test-size {test_size}: {exc}"
        raise SplitError(msg) from None
    del y
    if candidates is not None:
        test = candidates[test]
    del candidates
    held = np.bincount(codes[test], minlength=len(labels))
    untrained = labels[counts == held].tolist()  # sorted, as labels are
    if untrained:
        msg = (
            f"the training split holds no sample of class(es) {untrained}; "
            "lower --test-size or add data"
        )
        raise SplitError(msg)
    if len(test) < SMALL_TEST_SET:
        notes.append(
            f"only {len(test)} held-out sample(s): their accuracy is a rough estimate; "
            "raise --test-size or add data"
        )
    is_test = np.zeros(len(codes), dtype=bool)
    is_test[test] = True
    y_train, y_test = labels[codes[~is_test]], labels[codes[test]]
    del codes  # the peak of a split is the rows' move below
    X_test = ds.X[test]  # the one copy, of the held-out rows; back into ds.X below
    del test
    X_train = take_rows(ds.X, np.flatnonzero(~is_test))
    del is_test
    n_train = len(X_train)
    ds.X[n_train:] = X_test
    return Split(X_train, ds.X[n_train:], y_train, y_test, notes)


def standardise(X: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Standardise the columns of ``X`` in place, ``X ← (X − μ)/σ``; returns ``X``, ``μ``, ``σ``.

    Each column is divided by its largest magnitude first, so the variance of
    a column of values near 1e300 stays in range (squaring them would not);
    a constant column keeps the scale 1.

    Examples
    --------
    >>> X = np.array([[0.0, 5.0], [4.0, 5.0]])
    >>> Z, mean, std = standardise(X)
    >>> Z.tolist(), mean.tolist(), std.tolist(), Z is X
    ([[-1.0, 0.0], [1.0, 0.0]], [2.0, 5.0], [2.0, 1.0], True)
    """
    scale = np.maximum(X.max(axis=0), -X.min(axis=0)) if len(X) else np.ones(X.shape[1])
    scale[scale == 0] = 1.0
    X /= scale
    mean_u = X.mean(axis=0)
    X -= mean_u
    std_u = np.sqrt(np.einsum("ij,ij->j", X, X) / len(X)) if len(X) else np.zeros_like(mean_u)
    std_u[std_u == 0] = 1.0 / scale[std_u == 0]
    X /= std_u
    return X, mean_u * scale, std_u * scale
