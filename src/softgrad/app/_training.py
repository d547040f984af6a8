"""What ``softgrad train`` and ``softgrad predict`` do, as library functions.

:func:`train` loads the data, holds out a test split, standardises the
features on the training split, fits :class:`~softgrad.SoftmaxClassifier`,
checks its analytic gradient and Hessian-vector product against finite
differences (:func:`softgrad.gradcheck`), folds the standardisation back into
the weights — so the saved model takes raw features — and writes a run folder:

``model.npz``
    the model (:meth:`SoftmaxClassifier.save`; no pickles),
``metrics.json``
    accuracy, confusion matrix, loss curve, gradient check, configuration,
``loss_curve.svg``, ``softmax_jacobian.svg``
    the objective per iteration and the Jacobian :math:`S_i(\\delta_{ij} - S_j)`
    of one test sample's softmax outputs, drawn as SVG text (no plotting library).

The command-line modules only parse options and print what these return.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad._lib._extras import require
from softgrad.app._blocks import release_memory, unmap_freed_blocks
from softgrad.app._data import DataError, Dataset, read_features_csv
from softgrad.app._load import load_dataset
from softgrad.app._prepare import SplitError, class_codes, import_sklearn, split, standardise

__all__ = [
    "PredictionTable",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "predict_csv",
    "require_app_extras",
    "stream_predictions",
    "train",
]

Progress = Callable[[int, float], Any]


class TrainingError(ValueError):
    """A training run that cannot start: bad options for this data."""


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (the ``softgrad train`` options)."""

    data: str = "iris"
    target: str | None = None
    solver: str = "auto"
    C: float = 1.0
    max_iter: int = 1000
    test_size: float = 0.25
    seed: int = 0
    out: str | None = None
    runs_dir: str = "runs"
    force: bool = False
    encoding: str = "utf-8"
    scheduler: str | None = None  # a Dask scheduler's address: fit on that cluster

    @property
    def unit(self) -> str:
        """What one step of the loss curve is: an epoch for sgd/adam, else an iteration."""
        return "epoch" if self.solver in ("sgd", "adam") else "iteration"


@dataclass
class TrainResult:
    """What a run produced: the model, its metrics and where they were written."""

    model: Any  # SoftmaxClassifier, on raw features
    metrics: dict[str, Any]
    run_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


GRADCHECK_ROWS = 20_000
"""The gradient check's sample of training rows (all of them for smaller data)."""


def require_app_extras(feature: str) -> None:
    """Check that what training runs need is installed, or name the ``pip install`` line.

    Only scikit-learn is imported here (without pandas: :func:`~softgrad.app._prepare.import_sklearn`);
    the pictures are SVG text written by :mod:`softgrad.app._plots`, which needs no plotting library.
    """
    for module in ("sklearn", "scipy"):
        if importlib.util.find_spec(module) is None:
            require(module, "cli", feature=feature)  # raises, naming the extra
    import_sklearn()


def _run_folder(config: TrainConfig) -> tuple[Path, bool]:
    """Where the run folder will go, and whether it is the default ``runs/<timestamp>``.

    Checked before training starts, so a refused ``--out`` costs nothing.
    """
    if config.out is not None:
        if not config.out.strip():
            msg = "--out is empty; name a folder for the run, e.g. --out runs/iris"
            raise TrainingError(msg)
        path = Path(config.out)
        if path.exists() and not path.is_dir():
            msg = f"--out {config.out!r} is a file, not a folder; choose another name"
            raise TrainingError(msg)
        if path.is_dir() and any(path.iterdir()) and not config.force:
            msg = (
                f"--out {config.out!r} exists and is not empty; choose a new folder, "
                "or pass --force to replace the run files in it"
            )
            raise TrainingError(msg)
        return path, False
    base = Path(config.runs_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path, True


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A hidden folder beside ``final`` to write the run into; renamed to ``final`` when whole.

    If anything fails or the run is interrupted (Ctrl-C), the hidden folder is
    removed and ``final`` is left as it was: a run folder appears whole or not
    at all. Into an existing folder (``--force``) the run's files are moved one
    by one, ``metrics.json`` last, and other files stay.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:  # os.mkdir, unlike mkdtemp, gives the folder the mode of any new folder
        staging = final.parent / f".{final.name}.partial-{secrets.token_hex(4)}"
        try:
            os.mkdir(staging)
            break
        except FileExistsError:  # pragma: no cover - 2**32 names
            continue
    try:
        yield staging
        if final.is_dir() and any(final.iterdir()):
            names = sorted(os.listdir(staging), key=lambda name: name == "metrics.json")
            for name in names:
                os.replace(staging / name, final / name)
            staging.rmdir()
        else:
            os.replace(staging, final)  # also replaces an empty folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link_latest(run_dir: Path) -> None:
    """Point ``runs/latest`` at the newest run (atomically; skipped where links are not allowed)."""
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, latest)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _gradient_check(model: Any, X: NDArray[Any], y_idx: NDArray[np.intp], seed: int) -> Any:
    """gradcheck of the training objective's gradient and HVP near the fitted weights.

    On at most :data:`GRADCHECK_ROWS` rows (a seeded sample): the check is of
    the derivative formulas, which a sample exercises as well as a million
    rows, at a fraction of the time and memory.
    """
    from softgrad._gradcheck import gradcheck
    from softgrad.models import MultinomialObjective

    if len(X) > GRADCHECK_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), GRADCHECK_ROWS, replace=False))
        X, y_idx = X[rows], y_idx[rows]
    obj = MultinomialObjective(
        np.ascontiguousarray(X, dtype=np.float64),
        y_idx,
        n_classes=len(model.classes_),
        C=float(model.C),
        fit_intercept=bool(model.fit_intercept),
    )
    w_fit = obj.pack(model.coef_, model.intercept_)
    # a point near the fit, not at it: there the gradient is ~0 and its relative error noise
    rng = np.random.default_rng(seed)
    w = w_fit + 0.1 * rng.standard_normal(w_fit.shape)
    return gradcheck(
        lambda w: np.asarray(obj.loss(w)),
        w,
        grad=lambda w: obj.loss_and_grad(w)[1],
        hvp=lambda w, v: obj.hessp(w)(v),
        seed=seed,
        raise_exception=False,
    )


@contextlib.contextmanager
def _cluster(address: str | None) -> Iterator[int]:
    """A ``distributed.Client`` to ``address`` while fitting, and the rows per block (0: none)."""
    if address is None:
        yield 0
        return
    distributed = require("distributed", "dask", feature="softgrad train --scheduler")
    try:
        client = distributed.Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:
        msg = (
            f"cannot reach the Dask scheduler at --scheduler {address!r}: {exc}; "
            "start one with `dask scheduler` (and workers with `dask worker ADDRESS`)"
        )
        raise TrainingError(msg) from None
    with client:
        n_workers = max(len(client.scheduler_info(n_workers=-1)["workers"]), 1)
        yield max(4 * n_workers, 1)


def _dask_rows(X: NDArray[Any], n_blocks: int) -> Any:
    """``X`` as a Dask array of about ``n_blocks`` row blocks."""
    da = require("dask.array", "dask", feature="softgrad train --scheduler")
    return da.from_array(X, chunks=(max(-(-len(X) // n_blocks), 1), X.shape[1]))


def train(
    config: TrainConfig,
    progress: Progress | None = None,
    reading: Callable[[int, int], Any] | None = None,
) -> TrainResult:
    """Train the post's network on ``config.data`` and write a run folder.

    Parameters
    ----------
    config : TrainConfig
    progress : callable ``(iteration, objective)``, optional
        Called after each iteration (the CLI's progress bar).
    reading : callable ``(bytes_read, total_bytes)``, optional
        Called as a data file is read, block by block.

    Returns
    -------
    TrainResult

    Raises
    ------
    DataError, TrainingError
        Bad data or options (both are ``ValueError``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = train(TrainConfig(data="iris", out=tmp))
    ...     sorted(p.name for p in result.files.values())
    ['loss_curve.svg', 'metrics.json', 'model.npz', 'softmax_jacobian.svg']
    >>> result.metrics["test_accuracy"] > 0.9
    True
    """
    require_app_extras("softgrad train")
    from softgrad.models._dask_objective import one_blas_thread

    with one_blas_thread:  # the run's products have few classes on one side: see OneBlasThread
        return _train(config, progress, reading)


def _train(
    config: TrainConfig,
    progress: Progress | None,
    reading: Callable[[int, int], Any] | None,
) -> TrainResult:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import confusion_matrix

    from softgrad._agnostic._derivatives import softmax_jacobian
    from softgrad._agnostic._softmax import softmax
    from softgrad.app._plots import plot_loss_curve, plot_softmax_jacobian
    from softgrad.models import SoftmaxClassifier, validate_params

    ds = load_dataset(config.data, config.target, encoding=config.encoding, progress=reading)
    # from here on a phase's temporaries are not kept resident into the next (the read's
    # blocks are many and small: unmapping each costs more than it saves)
    unmap_freed_blocks()
    final_dir, is_default = _run_folder(config)
    # a byte per row for the labels through the split (int64 labels: 8 MB per million rows)
    labels, codes, _ = class_codes(ds.y)
    ds = Dataset(ds.X, codes, ds.feature_names, ds.target_name, ds.source)
    try:
        parts = split(ds, config.test_size, config.seed, labels)  # views of ds.X, reordered
    except SplitError as exc:
        raise TrainingError(str(exc)) from None
    X_test, y_train, y_test, notes = parts.X_test, parts.y_train, parts.y_test, parts.notes
    # standardise the training rows where they are; constant columns are left unscaled
    Z_train, mean, std = standardise(parts.X_train)
    n_features = ds.X.shape[1]
    # the names only: the labels are in the parts (a view of ds.y would keep all of it)
    ds = Dataset(ds.X[:0], ds.y[:0].copy(), ds.feature_names, ds.target_name, ds.source)
    release_memory()  # each phase's temporaries, before the next phase's

    try:
        model = SoftmaxClassifier(
            C=config.C,
            solver=config.solver,  # type: ignore[arg-type]
            max_iter=config.max_iter,
            random_state=config.seed,
            callback=progress,
        )
        validate_params(model.get_params())
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    caught: list[str] = []
    start = time.perf_counter()
    with (
        warnings.catch_warnings(record=True) as records,
        _cluster(config.scheduler) as chunks,
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        if chunks:  # on the cluster: row blocks of the standardised split
            model.fit(_dask_rows(Z_train, chunks), y_train)
        else:
            model.fit(Z_train, y_train)
    fit_seconds = time.perf_counter() - start
    caught = [str(r.message) for r in records if issubclass(r.category, ConvergenceWarning)]
    model.callback = None
    release_memory()

    y_idx = np.searchsorted(model.classes_, y_train).astype(np.intp)
    check = _gradient_check(model, Z_train, y_idx, config.seed)
    pred_train = model.predict(Z_train)  # before the fold below, on the standardised rows

    # fold the standardisation into the layer: W (x − μ)/σ + b = (W/σ) x + (b − (W/σ) μ)
    W = model.coef_ / std
    model.coef_ = W
    b = model.intercept_ - W @ mean
    model.intercept_ = b - b.mean()

    classes = model.classes_
    pred_test = model.predict(X_test)
    cm = confusion_matrix(y_test, pred_test, labels=classes)
    release_memory()

    file_names = {
        "model": "model.npz",
        "metrics": "metrics.json",
        "loss_curve": "loss_curve.svg",
        "jacobian": "softmax_jacobian.svg",
    }
    class_names = [str(c) for c in classes.tolist()]
    logits = X_test[0] @ model.coef_.T + model.intercept_  # one test sample's z
    metrics: dict[str, Any] = {
        "data": ds.source,
        "target": ds.target_name,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": int(n_features),
        "classes": classes.tolist(),
        "solver": config.solver,
        "solver_used": model.solver_,
        "C": config.C,
        "max_iter": config.max_iter,
        "seed": config.seed,
        "n_iter": int(model.n_iter_),
        "iteration_unit": config.unit,
        "converged": not caught,
        "fit_seconds": round(fit_seconds, 4),
        "train_accuracy": float(np.mean(pred_train == y_train)),
        "test_accuracy": float(np.mean(pred_test == y_test)),
        "final_objective": float(model.loss_curve_[-1]),
        "loss_curve": [float(v) for v in model.loss_curve_],
        "confusion_matrix": cm.tolist(),
        "gradcheck": {
            "ok": bool(check.ok),
            "max_abs_err": float(check.max_abs_err),
            "max_rel_err": float(check.max_rel_err),
            "checks": len(check.checks),
        },
        "files": file_names,
        "run_dir": str(final_dir),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with _staged(final_dir) as run_dir:
        staged = {key: run_dir / name for key, name in file_names.items()}
        model.save(
            staged["model"],
            metadata={
                "target": ds.target_name,
                "features": json.dumps(list(ds.feature_names)),
                "data": ds.source,
            },
        )
        plot_loss_curve(
            model.loss_curve_,
            staged["loss_curve"],
            unit=config.unit,
            title=f"{ds.source}: {model.solver_}, C={config.C} ({model.n_iter_} {config.unit}s)",
        )
        plot_softmax_jacobian(
            np.asarray(softmax_jacobian(logits)),
            np.asarray(softmax(logits)),
            class_names,
            staged["jacobian"],
            subtitle=f"test sample 0 (true: {y_test[0]}, predicted: {pred_test[0]})",
        )
        staged["metrics"].write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if is_default:
        _link_latest(final_dir)
    files = {key: final_dir / name for key, name in file_names.items()}
    return TrainResult(model, metrics, final_dir, files, [*notes, *caught])


@dataclass(frozen=True)
class PredictionTable:
    """Predictions for the rows of a CSV file, and optionally their class probabilities."""

    header: list[str]
    rows: list[list[str]]


def _load_model(model_path: str | Path) -> tuple[Any, list[str] | None, str | None]:
    """A saved model, its training feature names (if stored) and its target column's name."""
    if importlib.util.find_spec("sklearn") is not None:
        import_sklearn()
    require("sklearn", "cli", feature="softgrad predict")
    from softgrad.models import SoftmaxClassifier

    model = SoftmaxClassifier.load(model_path)
    meta = getattr(model, "metadata_", {})
    try:
        features = json.loads(meta.get("features", "null"))
    except json.JSONDecodeError:
        features = None
    return model, features, meta.get("target")


def predict_csv(
    model_path: str | Path, data_path: str | Path, *, proba: bool = False, encoding: str = "utf-8"
) -> PredictionTable:
    """Predict the rows of a CSV file with a saved model.

    A column named like the model's target is ignored; feature columns are
    matched by name when the model knows them.

    Parameters
    ----------
    model_path : str or Path
        A ``model.npz`` written by :func:`train` or :meth:`SoftmaxClassifier.save`.
    data_path : str or Path
        A CSV file with a header row.
    proba : bool, default False
        Add one ``p(<class>)`` column per class.
    encoding : str, default "utf-8"
        The CSV file's text encoding.

    Returns
    -------
    PredictionTable
    """
    model, features, target = _load_model(model_path)
    X = read_features_csv(data_path, features, int(model.n_features_in_), target, encoding=encoding)
    predictions = model.predict(X)
    header = ["prediction"]
    columns = [[str(v) for v in predictions.tolist()]]
    if proba:
        p = model.predict_proba(X)
        header += [f"p({c})" for c in model.classes_.tolist()]
        columns += [[f"{v:.6g}" for v in p[:, j]] for j in range(p.shape[1])]
    return PredictionTable(header, [list(r) for r in zip(*columns, strict=True)])


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    """``rows`` as CSV lines, as :mod:`csv`'s writer quotes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _prediction_text(model: Any, X: NDArray[Any], proba: bool) -> str:
    """The CSV lines ``prediction[,p(class)...]`` of the rows of ``X``, as :func:`predict_csv` has them.

    Each class's cell is quoted once (its one-cell CSV line) and the lines
    are joined by NumPy and ``str.join``: no per-cell writer call.
    """
    cells = np.array([_csv_text([[str(c)]])[:-1] for c in model.classes_.tolist()], dtype=object)
    labels = cells[np.searchsorted(model.classes_, model.predict(X))]
    if not proba:
        return "".join(f"{v}\n" for v in labels.tolist())
    p = np.char.mod("%.6g", model.predict_proba(X)).tolist()
    return "".join(f"{v},{','.join(row)}\n" for v, row in zip(labels.tolist(), p, strict=True))


def stream_predictions(
    model_path: str | Path, data_path: str | Path, *, proba: bool = False, encoding: str = "utf-8"
) -> tuple[list[str], Iterator[str]]:
    """The header and the prediction lines of a CSV or Parquet file, block by block.

    The same cells as :func:`predict_csv`, as CSV text, but the file is read a
    block at a time (pyarrow) and each block's lines are yielded before the next is read:
    memory stays bounded and the first rows come out at once. A CSV file the
    block reader cannot vouch for is handed to the line reader (its errors name
    the line and column), the rows already yielded being skipped.

    Raises
    ------
    ModelFileError, DataError
        A bad model file, or bad data: before the header is returned for
        wrong columns, while iterating for a bad value.
    """
    from softgrad.app._blocks import FallBack, column_names, iter_feature_blocks
    from softgrad.app._data import feature_columns

    model, names, target = _load_model(model_path)
    header = ["prediction", *([f"p({c})" for c in model.classes_.tolist()] if proba else [])]
    path = Path(data_path)

    def legacy(skip: int) -> Iterator[str]:
        table = predict_csv(model_path, path, proba=proba, encoding=encoding)
        yield _csv_text(table.rows[skip:])

    if path.suffix.lower() != ".parquet" and importlib.util.find_spec("pyarrow") is None:
        return header, legacy(0)
    try:
        columns = column_names(path, encoding)
    except FallBack:
        return header, legacy(0)
    except FileNotFoundError:
        msg = f"data file {str(path)!r} does not exist"
        raise DataError(msg) from None
    features = feature_columns(path, columns, names, int(model.n_features_in_), target)

    def rows() -> Iterator[str]:
        done = 0
        try:
            for block in iter_feature_blocks(path, features, None, encoding=encoding):
                yield _prediction_text(model, block.X, proba)
                done += len(block.X)
        except FallBack:
            yield from legacy(done)

    return header, rows()
