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
``loss_curve.png``, ``softmax_jacobian.png``
    the objective per iteration and the Jacobian :math:`S_i(\\delta_{ij} - S_j)`
    of one test sample's softmax outputs.

The command-line modules only parse options and print what these return.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad.app._data import DataError, Dataset, load_dataset, read_features_csv

__all__ = [
    "PredictionTable",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "predict_csv",
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
    solver: str = "lbfgs"
    C: float = 1.0
    max_iter: int = 1000
    test_size: float = 0.25
    seed: int = 0
    out: str | None = None
    runs_dir: str = "runs"


@dataclass
class TrainResult:
    """What a run produced: the model, its metrics and where they were written."""

    model: Any  # SoftmaxClassifier, on raw features
    metrics: dict[str, Any]
    run_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _split(ds: Dataset, test_size: float, seed: int) -> tuple[NDArray[Any], ...]:
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        msg = f"--test-size must be a fraction in (0, 1), got {test_size}"
        raise TrainingError(msg)
    _, counts = np.unique(ds.y, return_counts=True)
    if len(counts) < 2:
        msg = f"{ds.source}: the target {ds.target_name!r} holds one class only; need at least 2"
        raise DataError(msg)
    n_test = int(np.ceil(test_size * len(ds.y)))
    stratify = ds.y if counts.min() >= 2 and n_test >= len(counts) else None
    try:
        parts: list[NDArray[Any]] = train_test_split(
            ds.X, ds.y, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        msg = f"cannot split {len(ds.y)} samples with --test-size {test_size}: {exc}"
        raise TrainingError(msg) from None
    if len(np.unique(parts[2])) < 2:
        msg = "the training split holds one class only; lower --test-size or add data"
        raise TrainingError(msg)
    return tuple(parts)


def _run_dir(config: TrainConfig) -> tuple[Path, bool]:
    if config.out is not None:
        path = Path(config.out)
        path.mkdir(parents=True, exist_ok=True)
        return path, False
    base = Path(config.runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    path.mkdir()
    return path, True


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


def _write_json(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _gradient_check(model: Any, X: NDArray[Any], y_idx: NDArray[np.intp], seed: int) -> Any:
    """gradcheck of the training objective's gradient and HVP near the fitted weights."""
    from softgrad._gradcheck import gradcheck
    from softgrad.models import MultinomialObjective

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


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train the post's network on ``config.data`` and write a run folder.

    Parameters
    ----------
    config : TrainConfig
    progress : callable ``(iteration, objective)``, optional
        Called after each iteration (the CLI's progress bar).

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
    ['loss_curve.png', 'metrics.json', 'model.npz', 'softmax_jacobian.png']
    >>> result.metrics["test_accuracy"] > 0.9
    True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import confusion_matrix

    from softgrad._agnostic._derivatives import softmax_jacobian
    from softgrad._agnostic._softmax import softmax
    from softgrad.app._plots import plot_loss_curve, plot_softmax_jacobian
    from softgrad.models import SoftmaxClassifier, validate_params

    ds = load_dataset(config.data, config.target)
    X_train, X_test, y_train, y_test = _split(ds, config.test_size, config.seed)
    # standardise on the training split; constant columns are left unscaled
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    Z_train = (X_train - mean) / std

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
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(Z_train, y_train)
    fit_seconds = time.perf_counter() - start
    caught = [str(r.message) for r in records if issubclass(r.category, ConvergenceWarning)]
    model.callback = None

    y_idx = np.searchsorted(model.classes_, y_train).astype(np.intp)
    check = _gradient_check(model, Z_train, y_idx, config.seed)

    # fold the standardisation into the layer: W (x − μ)/σ + b = (W/σ) x + (b − (W/σ) μ)
    W = model.coef_ / std
    model.coef_ = W
    b = model.intercept_ - W @ mean
    model.intercept_ = b - b.mean()

    classes = model.classes_
    pred_test = model.predict(X_test)
    pred_train = model.predict(X_train)
    cm = confusion_matrix(y_test, pred_test, labels=classes)

    run_dir, is_default = _run_dir(config)
    files = {
        "model": run_dir / "model.npz",
        "metrics": run_dir / "metrics.json",
        "loss_curve": run_dir / "loss_curve.png",
        "jacobian": run_dir / "softmax_jacobian.png",
    }
    model.save(
        files["model"],
        metadata={
            "target": ds.target_name,
            "features": json.dumps(list(ds.feature_names)),
            "data": ds.source,
        },
    )
    names = [str(c) for c in classes.tolist()]
    plot_loss_curve(
        model.loss_curve_,
        files["loss_curve"],
        title=f"{ds.source}: {config.solver}, C={config.C} ({model.n_iter_} iterations)",
    )
    logits = X_test[0] @ model.coef_.T + model.intercept_  # one test sample's z
    s = np.asarray(softmax(logits))
    plot_softmax_jacobian(
        np.asarray(softmax_jacobian(logits)),
        s,
        names,
        files["jacobian"],
        title=f"softmax Jacobian, test sample 0 (true: {y_test[0]}, predicted: {pred_test[0]})",
    )
    metrics: dict[str, Any] = {
        "data": ds.source,
        "target": ds.target_name,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": int(X_train.shape[1]),
        "classes": classes.tolist(),
        "solver": config.solver,
        "C": config.C,
        "max_iter": config.max_iter,
        "seed": config.seed,
        "n_iter": int(model.n_iter_),
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
        "files": {k: p.name for k, p in files.items()},
        "run_dir": str(run_dir),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json(files["metrics"], metrics)
    if is_default:
        _link_latest(run_dir)
    return TrainResult(model, metrics, run_dir, files, caught)


@dataclass(frozen=True)
class PredictionTable:
    """Predictions for the rows of a CSV file, and optionally their class probabilities."""

    header: list[str]
    rows: list[list[str]]


def predict_csv(
    model_path: str | Path, data_path: str | Path, *, proba: bool = False
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

    Returns
    -------
    PredictionTable
    """
    from softgrad.models import SoftmaxClassifier

    model = SoftmaxClassifier.load(model_path)
    meta = getattr(model, "metadata_", {})
    try:
        features = json.loads(meta.get("features", "null"))
    except json.JSONDecodeError:
        features = None
    X = read_features_csv(data_path, features, int(model.n_features_in_), meta.get("target"))
    predictions = model.predict(X)
    header = ["prediction"]
    columns = [[str(v) for v in predictions.tolist()]]
    if proba:
        p = model.predict_proba(X)
        header += [f"p({c})" for c in model.classes_.tolist()]
        columns += [[f"{v:.6g}" for v in p[:, j]] for j in range(p.shape[1])]
    return PredictionTable(header, [list(r) for r in zip(*columns, strict=True)])


def _default_mode() -> int:
    """``0o666`` less the process umask: what ``open()`` would have given the file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
