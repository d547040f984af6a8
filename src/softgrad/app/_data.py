"""Data for ``softgrad train`` and ``softgrad predict``: bundled datasets and CSV files.

The bundled datasets come with scikit-learn (no download). A CSV file has a
header row and numeric features; every bad value is reported with its line
and column, because the person reading the message has the file open.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["BUILTIN", "DataError", "Dataset", "load_dataset", "read_csv", "read_features_csv"]

BUILTIN = ("iris", "wine", "digits")


class DataError(ValueError):
    """Data that cannot be used: a missing file or column, a bad value (with its place)."""


@dataclass(frozen=True)
class Dataset:
    """Features, labels and names of a classification data set."""

    X: NDArray[np.float64]
    y: NDArray[Any]
    feature_names: tuple[str, ...]
    target_name: str
    source: str


def load_dataset(data: str, target: str | None = None) -> Dataset:
    """A bundled dataset by name (``iris``, ``wine``, ``digits``) or a CSV file by path.

    Parameters
    ----------
    data : str
        One of :data:`BUILTIN`, or the path of a CSV file with a header row.
    target : str, optional
        The CSV column holding the class labels (required for a CSV file,
        refused for a bundled dataset).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name, missing file, bad CSV (the message names line and column).

    Examples
    --------
    >>> ds = load_dataset("iris")
    >>> ds.X.shape, ds.target_name, sorted(set(ds.y.tolist()))
    ((150, 4), 'species', ['setosa', 'versicolor', 'virginica'])
    """
    if data in BUILTIN:
        if target is not None:
            msg = f"--target applies to CSV files only; {data!r} is a bundled dataset"
            raise DataError(msg)
        return _builtin(data)
    path = Path(data)
    if path.suffix.lower() != ".csv" and not path.exists():
        msg = (
            f"unknown dataset {data!r}: use one of {', '.join(BUILTIN)} or the path of a .csv file"
        )
        raise DataError(msg)
    if target is None:
        msg = f"a CSV file needs --target COLUMN, the column of class labels in {data!r}"
        raise DataError(msg)
    return read_csv(path, target)


def _builtin(name: str) -> Dataset:
    from sklearn import datasets

    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
    }[name]
    bunch = loader()
    target_names = np.asarray(bunch.target_names)
    # named classes read better in a confusion matrix; digits' names are the digits
    y = target_names[bunch.target] if target_names.dtype.kind in "US" else bunch.target
    feature_names = tuple(str(f) for f in bunch.feature_names)
    target_name = {"iris": "species", "wine": "cultivar", "digits": "digit"}[name]
    return Dataset(np.asarray(bunch.data, dtype=np.float64), y, feature_names, target_name, name)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, cells)`` of every non-blank row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        msg = f"CSV file {str(path)!r} does not exist"
        raise DataError(msg) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        msg = f"cannot read CSV file {str(path)!r}: {exc}"
        raise DataError(msg) from None
    if not rows:
        msg = f"CSV file {str(path)!r} is empty: it needs a header row and data rows"
        raise DataError(msg)
    header = [h.strip() for h in rows[0][1]]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        msg = f"{path}: the header repeats column names {dupes}"
        raise DataError(msg)
    data = rows[1:]
    if not data:
        msg = f"CSV file {str(path)!r} has a header but no data rows"
        raise DataError(msg)
    for line, row in data:
        if len(row) != len(header):
            msg = (
                f"{path}, line {line}: {len(row)} values, but the header has {len(header)} columns"
            )
            raise DataError(msg)
    return header, data


def _parse_features(
    path: Path, header: Sequence[str], data: Sequence[tuple[int, list[str]]], columns: Sequence[int]
) -> NDArray[np.float64]:
    X = np.empty((len(data), len(columns)), dtype=np.float64)
    for i, (line, row) in enumerate(data):
        for j, col in enumerate(columns):
            cell = row[col].strip()
            try:
                value = float(cell)
            except ValueError:
                shown = repr(cell) if cell else "an empty value"
                msg = (
                    f"{path}, line {line}, column {header[col]!r}: {shown} is not a number "
                    "(features must be numeric)"
                )
                raise DataError(msg) from None
            if not math.isfinite(value):
                msg = (
                    f"{path}, line {line}, column {header[col]!r}: {cell!r} is not a finite number"
                )
                raise DataError(msg)
            X[i, j] = value
    return X


def read_csv(path: str | Path, target: str) -> Dataset:
    """Read a CSV file with a header row: numeric features and a label column ``target``.

    Labels that are all integers become ints, others stay strings.

    Parameters
    ----------
    path : str or Path
    target : str
        Name of the label column.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        With the line and column of the first bad value.
    """
    path = Path(path)
    header, data = _read_rows(path)
    if target not in header:
        msg = f"{path}: no column {target!r} for --target; the columns are {', '.join(header)}"
        raise DataError(msg)
    t = header.index(target)
    columns = [j for j in range(len(header)) if j != t]
    if not columns:
        msg = f"{path}: no feature columns besides the target {target!r}"
        raise DataError(msg)
    X = _parse_features(path, header, data, columns)
    labels = [row[t].strip() for _, row in data]
    for line, row in data:
        if not row[t].strip():
            msg = f"{path}, line {line}, column {target!r}: the label is empty"
            raise DataError(msg)
    y: NDArray[Any]
    try:
        y = np.array([int(v) for v in labels])
    except ValueError:
        y = np.array(labels)
    return Dataset(X, y, tuple(header[j] for j in columns), target, str(path))


def read_features_csv(
    path: str | Path, feature_names: Sequence[str] | None, n_features: int, target: str | None
) -> NDArray[np.float64]:
    """Features for prediction from a CSV file with a header row.

    A column named ``target`` is ignored. When the model knows its feature
    names and the header has them all, columns are taken by name (any order);
    otherwise the remaining columns are taken in order and must number
    ``n_features``.

    Raises
    ------
    DataError
        Wrong columns, or a bad value (with its line and column).
    """
    path = Path(path)
    header, data = _read_rows(path)
    if feature_names and all(f in header for f in feature_names):
        columns = [header.index(f) for f in feature_names]
    else:
        columns = [j for j, h in enumerate(header) if h != target]
        if len(columns) != n_features:
            expected = f" ({', '.join(feature_names)})" if feature_names else ""
            msg = (
                f"{path}: {len(columns)} feature columns, but the model was trained on "
                f"{n_features}{expected}"
            )
            raise DataError(msg)
    return _parse_features(path, header, data, columns)
