"""Model files: plain ``.npz`` arrays, written atomically, read without executing code.

A model file holds only arrays of numbers and strings: the weights, the class
labels, the parameters as JSON, a format tag and version, and a sha256
*integrity checksum* over all of them. The checksum detects accidental
damage (a truncated copy, a flipped bit, an edited array); it is not a
signature: anyone who can write the file can recompute it, so it says nothing
about who wrote the file. Reading never unpickles (``allow_pickle=False``) and
never evaluates anything from the file; the parameters are checked like a
user's before a model is built from them.

Writing goes to a new temporary file in the target folder (created with
``O_EXCL`` and the default mode, so the umask applies as for any new file),
which is flushed, fsynced and renamed over the target: a reader sees the old
file or the whole new one, never half a file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from softgrad.models._validation import validate_params

__all__ = [
    "FORMAT_VERSION",
    "ModelFileError",
    "atomic_writer",
    "integrity_checksum",
    "load_model",
    "read_model_arrays",
    "save_model",
    "storable_classes",
    "write_model_arrays",
]

FORMAT_VERSION = 1
FORMAT_NAME = "softgrad.SoftmaxClassifier"
REQUIRED = ("format", "format_version", "coef", "intercept", "classes", "params", "sha256")


class ModelFileError(ValueError):
    """A model file that cannot be read: missing, truncated, corrupt or of another format."""


def integrity_checksum(arrays: Mapping[str, NDArray[Any]]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order.

    An integrity checksum: it detects corruption, it does not authenticate
    (it is not keyed, so it is not a signature).

    Examples
    --------
    >>> import numpy as np
    >>> a = integrity_checksum({"w": np.zeros(2)})
    >>> a == integrity_checksum({"w": np.zeros(2)}), a == integrity_checksum({"w": np.ones(2)})
    (True, False)
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file handle whose content replaces ``path`` only when the block succeeds.

    The temporary file lives beside ``path`` (same file system, so the rename
    is atomic) and is created with ``O_EXCL`` and mode ``0o666`` less the
    umask, as ``open()`` would create ``path``; on any error it is removed and
    ``path`` is left as it was. Errors name ``path``, never the temporary file.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder.
    OSError
        If the folder of ``path`` is missing or not writable (the error names
        ``path``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     target = pathlib.Path(tmp) / "out.bin"
    ...     with atomic_writer(target) as fh:
    ...         _ = fh.write(b"whole")
    ...     target.read_bytes(), sorted(p.name for p in pathlib.Path(tmp).iterdir())
    (b'whole', ['out.bin'])
    """
    target = Path(path)
    if target.is_dir():
        msg = f"cannot write to {str(path)!r}: it is a folder; give a file name such as "
        msg += f"{str(target / 'model.npz')!r}"
        raise IsADirectoryError(errno.EISDIR, msg, str(path))
    folder = target.parent
    fd, tmp = _create_temporary(folder, target.name, path)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _create_temporary(folder: Path, name: str, path: str | os.PathLike[str]) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(folder / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            msg = f"cannot write {str(path)!r}: {reason} (in the folder {str(folder)!r})"
            raise type(exc)(exc.errno, msg, str(path)) from None
    msg = f"cannot write {str(path)!r}: no free temporary name in {str(folder)!r}"
    raise FileExistsError(errno.EEXIST, msg, str(path))


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_model_arrays(path: str | os.PathLike[str], arrays: Mapping[str, NDArray[Any]]) -> None:
    """Write ``arrays`` plus the format tag, version and integrity checksum to ``path``."""
    tagged: dict[str, NDArray[Any]] = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        **arrays,
    }
    tagged["sha256"] = np.array(integrity_checksum(tagged))
    with atomic_writer(path) as fh:
        np.savez(fh, **tagged)  # type: ignore[arg-type]


def read_model_arrays(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """The arrays of a model file, checked for format, version and integrity.

    Raises
    ------
    ModelFileError
        If the file is missing, truncated, corrupt (integrity checksum
        mismatch), of another format, or of a newer format version.
    """
    path = Path(path)
    try:
        # our own handle: np.load leaks its own when the zip turns out broken
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        msg = f"model file {str(path)!r} does not exist"
        raise ModelFileError(msg) from None
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
        zlib.error,
    ) as exc:
        msg = (
            f"cannot read model file {str(path)!r}: it is truncated, corrupt or not a "
            f".npz model file ({type(exc).__name__})"
        )
        raise ModelFileError(msg) from None
    missing = [name for name in REQUIRED if name not in arrays]
    if missing or str(arrays.get("format", "")) != FORMAT_NAME:
        msg = (
            f"{str(path)!r} is not a softgrad SoftmaxClassifier file "
            f"(missing {', '.join(missing) or 'format tag'})"
        )
        raise ModelFileError(msg)
    try:
        version = int(arrays["format_version"])
    except (TypeError, ValueError):
        version = FORMAT_VERSION + 1
    if version > FORMAT_VERSION:
        msg = (
            f"{str(path)!r} has format version {arrays['format_version']}, newer than this "
            f"softgrad's {FORMAT_VERSION}; upgrade softgrad to read it"
        )
        raise ModelFileError(msg)
    stored = str(arrays.pop("sha256"))
    if integrity_checksum(arrays) != stored:
        msg = (
            f"{str(path)!r} failed its sha256 integrity check: the file is corrupt or was "
            "changed after it was written (the checksum detects damage; it is not a signature, "
            "so a matching one does not prove who wrote the file); write it again with save()"
        )
        raise ModelFileError(msg)
    return arrays


def storable_classes(classes: NDArray[Any]) -> NDArray[Any]:
    """Class labels as a str, int, bool or float array, or a clear error."""
    arr = np.asarray(classes)
    if arr.dtype.kind in "USiufb":
        return arr.astype(str) if arr.dtype.kind == "S" else arr
    values = arr.tolist()
    for kind in (str, (int, np.integer), (float, np.floating)):
        if all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            return np.array(values)
    kinds = sorted({type(v).__name__ for v in values})
    msg = (
        f"cannot save class labels of type {', '.join(kinds)}: a model file stores labels as "
        "one array of str, int or float (refit with labels of one of those types)"
    )
    raise ValueError(msg)


def save_model(
    model: Any, path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Write a fitted ``SoftmaxClassifier`` to ``path`` (see :meth:`SoftmaxClassifier.save`)."""
    classes = storable_classes(model.classes_)
    params = {k: v for k, v in model.get_params().items() if k not in ("callback", "random_state")}
    if isinstance(model.random_state, (int, np.integer)):
        params["random_state"] = int(model.random_state)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    arrays: dict[str, NDArray[Any]] = {
        "coef": np.asarray(model.coef_),
        "intercept": np.asarray(model.intercept_),
        "classes": classes,
        "n_iter": np.array(int(model.n_iter_), dtype=np.int64),
        "loss_curve": np.asarray(model.loss_curve_, dtype=np.float64),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "metadata": np.array(json.dumps(meta, sort_keys=True)),
    }
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(model.feature_names_in_).astype(str)
    write_model_arrays(path, arrays)


def load_model(cls: type[Any], path: str | os.PathLike[str]) -> Any:
    """A fitted ``cls`` read from ``path`` (see :meth:`SoftmaxClassifier.load`)."""
    arrays = read_model_arrays(path)
    try:
        params = json.loads(str(arrays["params"]))
        if not isinstance(params, dict):
            msg = f"params is {type(params).__name__}, not a JSON object"
            raise TypeError(msg)
        validate_params(params)
        model = cls(**params)
        coef, intercept = arrays["coef"], arrays["intercept"]
        classes = arrays["classes"]
        if (
            coef.ndim != 2
            or intercept.shape != (coef.shape[0],)
            or classes.shape != (coef.shape[0],)
        ):
            msg = "inconsistent shapes of coef, intercept and classes"
            raise ValueError(msg)
        metadata = json.loads(str(arrays.get("metadata", np.array("{}"))))
    except (TypeError, ValueError) as exc:
        msg = f"{str(path)!r} holds invalid model data: {exc}"
        raise ModelFileError(msg) from None
    model.coef_ = coef
    model.intercept_ = intercept
    model.classes_ = classes
    model.n_features_in_ = int(coef.shape[1])
    model.n_iter_ = int(arrays.get("n_iter", np.array(0)))
    model.loss_curve_ = [float(v) for v in arrays.get("loss_curve", np.zeros(0))]
    if "feature_names_in" in arrays:
        model.feature_names_in_ = arrays["feature_names_in"].astype(object)
    model.metadata_ = metadata
    return model
