"""``load_dataset``: a bundled dataset by name, or a CSV/Parquet file read in blocks.

The entry point of :mod:`softgrad.app._data` (bundled data, the line reader)
and :mod:`softgrad.app._blocks` (the block reader), above both so that neither
imports the other's caller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from softgrad.app._blocks import read_table
from softgrad.app._data import BUILTIN, ByteProgress, DataError, Dataset

__all__ = ["load_dataset"]


def load_dataset(
    data: str,
    target: str | None = None,
    *,
    encoding: str = "utf-8",
    progress: ByteProgress | None = None,
) -> Dataset:
    """A bundled dataset by name (``iris``, ``wine``, ``digits``) or a CSV/Parquet file by path.

    Parameters
    ----------
    data : str
        One of :data:`BUILTIN`, or the path of a CSV file with a header row.
    target : str, optional
        The CSV column holding the class labels (required for a CSV file,
        refused for a bundled dataset).
    encoding : str, default "utf-8"
        The CSV file's text encoding.
    progress : callable ``(bytes_read, total_bytes)``, optional
        Called as a file is read, block by block.

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
    if path.suffix.lower() not in (".csv", ".parquet") and not path.exists():
        msg = (
            f"unknown dataset {data!r}: use one of {', '.join(BUILTIN)} or the path of a "
            ".csv or .parquet file"
        )
        raise DataError(msg)
    if target is None:
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
        msg = f"a {kind} file needs --target COLUMN, the column of class labels in {data!r}"
        raise DataError(msg)
    return read_table(path, target, encoding=encoding, progress=progress)


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
