"""CSV and Parquet files read in blocks by pyarrow, for ``softgrad train`` and ``predict``.

CSV parsing runs in C++, a few megabytes at a time, and each block is checked
as it arrives (:func:`iter_feature_blocks`), so ``predict`` writes its first
lines before the file is read to the end and memory stays bounded by a block.
A block pyarrow refuses, or one holding a missing, non-finite or unparsable
value, raises :class:`FallBack`: the caller reads the file with the line
reader of :mod:`softgrad.app._data`, which names the line and column of the
first bad value. The fast path therefore never changes what a file means or
what its errors say. Parquet files have no lines: their errors name the row.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import importlib.util
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad.app._data import ByteProgress, DataError, Dataset, _delimiter, read_csv

__all__ = [
    "FallBack",
    "FeatureBlocks",
    "column_names",
    "iter_feature_blocks",
    "read_table",
    "release_memory",
    "unmap_freed_blocks",
]

BLOCK_BYTES = 1 << 20  # CSV bytes parsed per block (4 MB blocks held ~180 MB in Arrow buffers)
BLOCK_ROWS = 65_536  # Parquet rows per block


class FallBack(Exception):
    """The block reader cannot vouch for this CSV file: read it line by line instead."""


class _Counted(io.RawIOBase):
    """A binary file that reports how many bytes have been read."""

    def __init__(self, path: Path, progress: ByteProgress | None) -> None:
        self._fh = path.open("rb")
        self._total = path.stat().st_size
        self._done = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        self._done += n or 0
        if self._progress is not None:
            self._progress(self._done, self._total)
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def _csv_header(path: Path, encoding: str) -> tuple[list[str], str]:
    """The first line's column names (stripped) and the delimiter; odd headers fall back."""
    with path.open("rb") as fh:
        first = fh.readline()
    try:
        line = first.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
    except (UnicodeDecodeError, LookupError):
        raise FallBack from None
    if not line.strip():
        raise FallBack
    delimiter = _delimiter(line)
    header = [h.strip() for h in next(csv.reader([line], delimiter=delimiter))]
    if len(set(header)) != len(header):
        raise FallBack
    return header, delimiter


def _batches(
    path: Path, encoding: str, types: dict[str, str], progress: ByteProgress | None
) -> tuple[list[str], Iterator[Any]]:
    """The column names and an iterator of pyarrow record batches of ``path``."""
    pa = _arrow()
    if path.suffix.lower() == ".parquet":
        pq = _arrow("pyarrow.parquet")
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            msg = f"cannot read Parquet file {str(path)!r}: {exc}"
            raise DataError(msg) from None
        total, size = int(pf.metadata.num_rows), path.stat().st_size

        def parquet() -> Iterator[Any]:
            done = 0
            for batch in pf.iter_batches(batch_size=BLOCK_ROWS):
                done += batch.num_rows
                if progress is not None:  # in bytes, as for CSV: the rows' share of the file
                    progress(size * done // max(total, 1), size)
                yield batch

        return list(pf.schema_arrow.names), parquet()
    pcsv = _arrow("pyarrow.csv")
    header, delimiter = _csv_header(path, encoding)
    kinds = {"float": pa.float64(), "str": pa.string()}
    source = _Counted(path, progress)
    try:
        reader = pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(
                encoding=encoding,
                block_size=BLOCK_BYTES,
                column_names=header,
                skip_rows=1,
                use_threads=False,
            ),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(
                column_types={c: kinds[k] for c, k in types.items() if c in header},
                include_columns=[c for c in header if c in types],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):
        source.close()
        raise FallBack from None

    def csv_batches() -> Iterator[Any]:
        try:
            yield from reader
        except pa.ArrowException:
            raise FallBack from None
        finally:
            source.close()

    return header, csv_batches()


def _arrow(module: str = "pyarrow") -> Any:
    """A pyarrow module, or the ``pip install`` line that brings it."""
    from softgrad._lib._extras import require

    return require(module, "dask", feature="reading CSV and Parquet files in blocks")


@dataclass(frozen=True)
class FeatureBlocks:
    """One block of a file: its features, labels (or ``None``) and first data row (0-based)."""

    X: NDArray[np.float64]
    y: NDArray[Any] | None
    start: int


def _floats(column: Any) -> NDArray[np.float64]:
    """A numeric Arrow array as float64 NumPy, read from its data buffer.

    Arrow's own ``to_numpy`` imports pandas (~70 MB, ~2 s); the buffer does
    not need it. Raises ``ValueError`` (``ArrowInvalid``) for text that is
    not a number.
    """
    pa = _arrow()
    if column.type != pa.float64():
        column = column.cast(pa.float64())
    data = column.buffers()[1]
    if data is None:  # an all-null or empty array
        return np.full(len(column), np.nan)
    return np.frombuffer(data, dtype=np.float64, count=len(column), offset=8 * column.offset)


def _first_null(column: Any) -> int:
    """The index of the first missing entry of an Arrow array that has one."""
    validity = column.buffers()[0]
    if validity is None:  # pragma: no cover - a null type has no bitmap: every entry is null
        return 0
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return int(np.argmin(bits[column.offset : column.offset + len(column)]))


def _label_values(column: Any) -> NDArray[Any]:
    """Labels of a block: stripped strings (text columns) or the column's numbers."""
    pa = _arrow()
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return np.array(column.to_pylist())
    if column.null_count:
        raise FallBack
    encoded = column.dictionary_encode()  # few distinct labels: strip each once
    names = np.char.strip(np.array(encoded.dictionary.to_pylist(), dtype=str))
    index = np.frombuffer(
        encoded.indices.buffers()[1],
        dtype=np.int32,
        count=len(encoded),
        offset=4 * encoded.indices.offset,
    )
    if (names == "").any():
        raise FallBack
    labels: NDArray[Any] = names[index]
    return labels


def _block(
    path: Path, batch: Any, features: Sequence[str], target: str | None, start: int
) -> FeatureBlocks:
    """A record batch as arrays; a missing or non-finite value raises (Parquet) or falls back."""
    X = np.empty((batch.num_rows, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = batch.column(name)
        if column.null_count:
            _bad_value(path, start + _first_null(column), name, "NaN")
        try:
            X[:, j] = _floats(column)
        except (TypeError, ValueError):
            msg = f"{path}: column {name!r} holds {column.type}, not numbers (features must be numeric)"
            raise DataError(msg) from None
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        _bad_value(path, start + int(i), features[j], repr(float(X[i, j])))
    y = None if target is None else _label_values(batch.column(target))
    return FeatureBlocks(X, y, start)


def _bad_value(path: Path, row: int, column: str, shown: str) -> None:
    if path.suffix.lower() != ".parquet":
        raise FallBack  # the line reader names the line
    msg = f"{path}, row {row + 1}, column {column!r}: {shown} is not a finite number"
    raise DataError(msg)


def iter_feature_blocks(
    path: str | Path,
    features: Sequence[str],
    target: str | None,
    *,
    encoding: str = "utf-8",
    progress: ByteProgress | None = None,
) -> Iterator[FeatureBlocks]:
    """The named feature columns (and the target) of a CSV or Parquet file, block by block.

    Memory stays bounded by a block. A CSV file the block reader cannot
    vouch for raises the private ``FallBack`` before or between blocks;
    callers go to the line reader then (:func:`read_table`, :func:`read_features_csv`).
    """
    path = Path(path)
    types = dict.fromkeys(features, "float")
    if target is not None:
        types[target] = "str"
    names, batches = _batches(path, encoding, types, progress)
    missing = [c for c in types if c not in names]
    if missing:
        raise (
            FallBack
            if path.suffix.lower() != ".parquet"
            else DataError(
                f"{path}: no column(s) {', '.join(map(repr, missing))}; the columns are "
                f"{', '.join(names)}"
            )
        )
    start = 0
    for batch in batches:
        yield _block(path, batch, features, target, start)
        start += batch.num_rows


def _labels(parts: list[NDArray[Any]]) -> NDArray[Any]:
    """Labels of all blocks: ints when every label is an integer, else strings (as read_csv)."""
    y = np.concatenate(parts)
    if y.dtype.kind not in "US":
        return y
    uniq, inverse = np.unique(y, return_inverse=True)
    try:
        ints = np.array([int(v) for v in uniq])
    except ValueError:
        return y
    out: NDArray[Any] = ints[inverse]
    return out


def read_table(
    path: str | Path,
    target: str,
    *,
    encoding: str = "utf-8",
    progress: ByteProgress | None = None,
) -> Dataset:
    """Read a CSV or Parquet file with numeric features and a label column ``target``, in blocks.

    The same result and the same errors as :func:`read_csv` for a CSV file;
    pyarrow parses it block by block when installed (a file it cannot vouch
    for goes to :func:`read_csv`).

    Raises
    ------
    DataError
        With the line (CSV) or row (Parquet) and column of the first bad value.
    """
    path = Path(path)
    parquet = path.suffix.lower() == ".parquet"
    if not parquet and "pyarrow" not in sys.modules and importlib.util.find_spec("pyarrow") is None:
        return read_csv(path, target, encoding=encoding)
    try:
        if not path.is_file():
            msg = f"{'Parquet' if parquet else 'CSV'} file {str(path)!r} does not exist"
            raise DataError(msg)
        names = column_names(path, encoding)
        if target not in names:
            if not parquet:
                raise FallBack
            msg = f"{path}: no column {target!r} for --target; the columns are {', '.join(names)}"
            raise DataError(msg)
        features = [c for c in names if c != target]
        if not features:
            raise FallBack
        X, n, ys = np.empty((_rows_estimate(path), len(features))), 0, []
        for block in iter_feature_blocks(
            path, features, target, encoding=encoding, progress=progress
        ):
            m = len(block.X)
            if n + m > len(X):  # the estimate was short: grow by half
                grown = np.empty((max(n + m, len(X) * 3 // 2), len(features)))
                grown[:n] = X[:n]
                X = grown
            X[n : n + m] = block.X
            n += m
            ys.append(block.y)
        if not n:
            raise FallBack
    except FallBack:
        if parquet:  # pragma: no cover - Parquet never falls back
            raise
        return read_csv(path, target, encoding=encoding)
    X = X[:n]  # a view: the estimate is a few per cent over at most
    release_memory()  # the blocks' buffers, before the labels' temporaries
    y = _labels([v for v in ys if v is not None])
    del ys
    release_memory()
    return Dataset(X, y, tuple(features), target, str(path))


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 128 << 10  # glibc's initial threshold, here kept for good


def unmap_freed_blocks() -> None:
    """Have glibc give a freed block of 128 KiB or more back at once, for the rest of the process.

    glibc serves such a block from a mapping of its own, which ``free``
    unmaps, but each free of one raises that threshold to the block's size
    (up to 32 MiB): from then on blocks below it come from the heap and stay
    resident when freed. In a ``train`` run that kept the temporaries of
    the label sort at the start of the fit (12 MB) and of the split (10 MB)
    resident through the next phase. Setting the threshold turns the rise
    off (``mallopt``; glibc only, elsewhere nothing happens); it costs a
    page fault per 4 KiB of a large temporary, a few milliseconds per
    pass over the data.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_memory() -> None:
    """Give the memory freed to the heap back to the system.

    glibc keeps freed blocks of up to tens of megabytes in its heap rather
    than unmapping them (its threshold for mapping a block of its own rises
    to the largest block freed so far): after the 195 MB file of the
    benchmark, 38 MB of the read's peak stayed resident into the fit, and
    every phase of a run after it (split, fit, predictions) left its own
    temporaries resident into the next. ``malloc_trim`` (glibc only;
    elsewhere nothing happens) returns them, and Arrow's pool its own.
    """
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rows_estimate(path: Path, sample: int = 1 << 16) -> int:
    """Rows of ``path``, to allocate the features once: exact for Parquet, +2 % for CSV.

    A CSV file's count is its size over the mean line length of its first
    ``sample`` bytes; the caller grows the array if the guess falls short.
    """
    if path.suffix.lower() == ".parquet":
        return int(_arrow("pyarrow.parquet").ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        head = fh.read(sample)
    lines = max(head.count(b"\n"), 1)
    return int(path.stat().st_size * lines / max(len(head), 1) * 1.02) + 16


def column_names(path: Path, encoding: str) -> list[str]:
    if path.suffix.lower() == ".parquet":
        pq = _arrow("pyarrow.parquet")
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
            msg = f"cannot read Parquet file {str(path)!r}: {exc}"
            raise DataError(msg) from None
    return _csv_header(path, encoding)[0]
