"""Data for ``softgrad train`` and ``softgrad predict``: bundled datasets, CSV and Parquet files.

The bundled datasets come with scikit-learn (no download). A CSV file has a
header row and numeric features; every bad value is reported with its line
and column, because the person reading the message has the file open.

Files are read in blocks by pyarrow when it is installed
(:mod:`softgrad.app._blocks`); the line-by-line reader here names the line
and column of a bad value.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BUILTIN",
    "DataError",
    "Dataset",
    "feature_columns",
    "read_csv",
    "read_features_csv",
]

BUILTIN = ("iris", "wine", "digits")
ByteProgress = Callable[[int, int], Any]


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


_DELIMITERS = (",", ";", "\t", "|")


def _decode(path: Path, encoding: str) -> str:
    """The file's text; a byte the encoding cannot read is reported with its line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        msg = f"CSV file {str(path)!r} does not exist"
        raise DataError(msg) from None
    except OSError as exc:
        msg = f"cannot read CSV file {str(path)!r}: {exc.strerror or exc}"
        raise DataError(msg) from None
    # utf-8-sig reads plain UTF-8 too, and drops the byte-order mark spreadsheets write
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(codec)
    except LookupError:
        msg = f"unknown --encoding {encoding!r}; try utf-8, latin-1 or cp1252"
        raise DataError(msg) from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        msg = (
            f"{path}, line {line}: byte 0x{byte} is not {encoding}; save the file as UTF-8, "
            "or name its encoding with --encoding (e.g. --encoding latin-1)"
        )
        raise DataError(msg) from None


def _delimiter(header_line: str) -> str:
    """The delimiter of a CSV file: the candidate the header row uses most (``,`` on a tie).

    >>> _delimiter("a;b;species"), _delimiter("a,b,c"), _delimiter("x")
    (';', ',', ',')
    """
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _read_rows(
    path: Path, encoding: str = "utf-8"
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, cells)`` of every non-blank row.

    The delimiter (comma, semicolon, tab or ``|``) is detected from the header.
    """
    text = _decode(path, encoding)
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
        rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
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


def read_csv(path: str | Path, target: str, *, encoding: str = "utf-8") -> Dataset:
    """Read a CSV file with a header row: numeric features and a label column ``target``.

    Labels that are all integers become ints, others stay strings.

    ``path`` names a CSV file with a header row, ``target`` its label column,
    ``encoding`` its text encoding. Returns a :class:`Dataset`; raises
    :class:`DataError` with the line and column of the first bad value.
    """
    path = Path(path)
    header, data = _read_rows(path, encoding)
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
    path: str | Path,
    feature_names: Sequence[str] | None,
    n_features: int,
    target: str | None,
    *,
    encoding: str = "utf-8",
) -> NDArray[np.float64]:
    """Features for prediction from a CSV file with a header row.

    A column named ``target`` is ignored. When the model knows its feature
    names, the header must hold them all; they are taken by name, in any
    order, and a header naming other columns is refused with the names that
    differ (as scikit-learn does): columns are never matched by position when
    both sides have names. A model without names takes the remaining columns
    in order, which must number ``n_features``.

    Raises
    ------
    DataError
        Wrong columns, or a bad value (with its line and column).
    """
    path = Path(path)
    header, data = _read_rows(path, encoding)
    columns = [
        header.index(f) for f in feature_columns(path, header, feature_names, n_features, target)
    ]
    return _parse_features(path, header, data, columns)


def feature_columns(
    path: Path,
    header: Sequence[str],
    feature_names: Sequence[str] | None,
    n_features: int,
    target: str | None,
) -> list[str]:
    """The header's columns a model takes, in the model's order (see :func:`read_features_csv`).

    Raises
    ------
    DataError
        Missing or extra columns, named.
    """
    given = [h for h in header if h != target]
    if feature_names:
        missing = [f for f in feature_names if f not in header]
        if missing:
            msg = _columns_differ(path, list(feature_names), given, missing)
            raise DataError(msg)
        return list(feature_names)
    if len(given) != n_features:
        msg = f"{path}: {len(given)} feature columns, but the model was trained on {n_features}"
        raise DataError(msg)
    return given


def _columns_differ(path: Path, expected: list[str], given: list[str], missing: list[str]) -> str:
    unexpected = [g for g in given if g not in expected]
    counts = (
        f"{len(given)} feature columns, but the model was trained on {len(expected)}"
        if len(given) != len(expected)
        else "the columns are named differently from the training columns"
    )
    return (
        f"{path}: {counts}; missing {', '.join(map(repr, missing))}"
        + (f", not in training {', '.join(map(repr, unexpected))}" if unexpected else "")
        + "; rename the columns to the training names"
    )
