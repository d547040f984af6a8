r"""SoftmaxClassifier on Dask arrays and DataFrames: fit on the cluster, predict lazily.

:class:`~softgrad.SoftmaxClassifier` hands a Dask input here (see
:func:`is_dask`). Fitting checks the data in one pass (finite features,
the classes, the sample weights' sum), keeps ``X`` in worker memory when it
fits (``persist="auto"``) and otherwise re-reads it from its source at every
pass, then runs the very solvers of the in-memory fit on
:class:`~softgrad.models._dask_objective.DaskObjective`: ``lbfgs`` and
``newton-cg`` reach the same optimum as on the same data in memory, and
``sgd``/``adam`` take one row block per update. Predictions map over the row
blocks and stay lazy: Dask in, Dask out.

Dask does the scheduling, the retries after a lost worker and the
serialisation; the driver holds only the parameter vector. The active
``distributed.Client`` is used when there is one, Dask's local scheduler
otherwise.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from softgrad._delegation import log_softmax, softmax
from softgrad._lib._extras import require
from softgrad.models._dask_objective import BlockBatches, DaskObjective, one_blas_thread
from softgrad.models._solvers import (
    Result,
    StochasticState,
    choose_solver,
    lbfgs,
    newton_cg,
    stochastic,
)

__all__ = ["fit", "is_dask", "predict_method"]

Persist = bool | Literal["auto"]
PERSIST_FRACTION = 0.5  # "auto" persists X when it takes at most this share of worker memory
FEATURE = "SoftmaxClassifier on Dask inputs"


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a Dask collection (without importing Dask when it is not loaded).

    >>> is_dask([[1.0, 2.0]])
    False
    """
    dask = sys.modules.get("dask")
    return dask is not None and bool(dask.is_dask_collection(x))


def _dask_array(x: Any, name: str) -> Any:
    """A Dask DataFrame/Series as a Dask array with known row chunks; arrays pass through."""
    da = require("dask.array", "dask", feature=FEATURE)
    if hasattr(x, "to_dask_array"):
        x = x.to_dask_array(lengths=True)
    if not isinstance(x, da.Array):
        msg = f"{name} must be a Dask array, DataFrame or Series, got {type(x).__name__}"
        raise TypeError(msg)
    if any(np.isnan(c) for c in x.chunks[0]):
        msg = f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first"
        raise ValueError(msg)
    return x


def _inputs(X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any, list[str] | None]:
    """``X``, ``y``, weights as row-aligned Dask arrays, and the feature names of a DataFrame.

    A DataFrame ``X`` with ``y`` naming one of its columns takes that column as the target.
    """
    da = require("dask.array", "dask", feature=FEATURE)
    names = None
    if hasattr(X, "columns"):
        if isinstance(y, str):
            if y not in X.columns:
                msg = f"y={y!r} is not a column of X; the columns are {list(X.columns)}"
                raise ValueError(msg)
            X, y = X.drop(columns=[y]), X[y]
        names = [str(c) for c in X.columns]
    X = _dask_array(X, "X")
    if X.ndim != 2:
        msg = f"X must be 2-dimensional (n_samples, n_features), got shape {X.shape}"
        raise ValueError(msg)
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            msg = f"X must hold numbers, got dtype {X.dtype}; convert the columns to float"
            raise ValueError(msg)
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    y = _dask_array(y if is_dask(y) else da.from_array(np.asarray(y)), "y").ravel()
    if y.shape[0] != X.shape[0]:
        msg = f"y has {y.shape[0]} rows but X has {X.shape[0]}; pass one label per row of X"
        raise ValueError(msg)
    y = y.rechunk((X.chunks[0],))
    if sample_weight is not None:
        sw = sample_weight if is_dask(sample_weight) else np.asarray(sample_weight, dtype=X.dtype)
        if np.ndim(sw) == 0:
            sw = da.full(X.shape[0], float(sw), chunks=(X.chunks[0],), dtype=X.dtype)
        sw = _dask_array(sw if is_dask(sw) else da.from_array(sw), "sample_weight").ravel()
        if sw.shape[0] != X.shape[0]:
            msg = f"sample_weight has {sw.shape[0]} entries but X has {X.shape[0]} rows"
            raise ValueError(msg)
        sample_weight = sw.astype(X.dtype).rechunk((X.chunks[0],))
    return X, y, sample_weight, names


def _client() -> Any:
    """The active ``distributed.Client``, or ``None`` (Dask's local scheduler)."""
    if "distributed" not in sys.modules:
        return None
    get_client = require("distributed", "dask", feature=FEATURE).get_client
    try:
        return get_client()
    except ValueError:
        return None


PERSIST_CONFIG = "softgrad.persist"
"""The Dask configuration key that sets ``persist`` for ``SoftmaxClassifier.fit``."""


def _should_persist(X: Any, persist: Persist) -> bool:
    if persist == "auto":
        persist = require("dask", "dask", feature=FEATURE).config.get(PERSIST_CONFIG, "auto")
    if persist not in (True, False, "auto"):
        msg = (
            f"dask.config {PERSIST_CONFIG!r} must be True, False or 'auto', got {persist!r}; "
            f"e.g. dask.config.set({{{PERSIST_CONFIG!r}: False}})"
        )
        raise ValueError(msg)
    if persist != "auto":
        return bool(persist)
    client = _client()
    if client is not None:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        memory = sum(float(w.get("memory_limit") or 0) for w in workers)
    else:
        memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return bool(memory) and X.nbytes <= PERSIST_FRACTION * memory


def _check(X: Any, y: Any, sw: Any) -> tuple[NDArray[Any], Any, float | None]:
    """One pass: the sorted classes, class indices of ``y`` (lazy), ``Σ sᵢ``; bad data raise."""
    dask = require("dask", "dask", feature=FEATURE)
    da = require("dask.array", "dask", feature=FEATURE)
    checks = [da.isfinite(X).all(), da.unique(y)]
    if sw is not None:
        checks += [da.isfinite(sw).all() & (sw >= 0).all(), sw.sum(dtype=np.float64)]
    finite, classes, *weights = dask.compute(*checks)
    if not finite:
        msg = "X holds NaN or infinity; fill or drop those rows (e.g. X[da.isfinite(X).all(1)])"
        raise ValueError(msg)
    if len(classes) < 2:
        msg = (
            "SoftmaxClassifier needs samples of at least 2 classes, but y contains only "
            f"{len(classes)}: {classes.tolist()!r}"
        )
        raise ValueError(msg)
    sw_sum = None
    if sw is not None:
        if not weights[0]:
            msg = "sample_weight must be finite and non-negative"
            raise ValueError(msg)
        sw_sum = float(weights[1])
        if sw_sum <= 0:
            msg = "sample_weight must have at least one positive entry"
            raise ValueError(msg)
    y_idx = y.map_blocks(_class_index, classes, dtype=np.intp)
    return classes, y_idx, sw_sum


def _class_index(labels: Any, classes: Any) -> Any:
    """Each label's index in the sorted ``classes``."""
    return np.searchsorted(classes, labels).astype(np.intp)


def fit(est: Any, X: Any, y: Any, sample_weight: Any = None, *, persist: Persist = "auto") -> Any:
    """Fit ``est`` (a :class:`~softgrad.SoftmaxClassifier`) to Dask data; returns ``est``.

    Parameters
    ----------
    est : SoftmaxClassifier
    X : dask.array.Array or dask.dataframe.DataFrame, shape (n_samples, n_features)
    y : dask.array.Array, Series, array-like or str
        Labels, one per row; the name of a column of a DataFrame ``X``.
    sample_weight : dask.array.Array or array-like, optional
    persist : bool or "auto", default "auto"
        Keep ``X`` in (worker) memory between passes: ``"auto"`` when it takes
        at most half of the workers' memory limits (of this machine's memory
        without a client), else it is re-read at every pass.
        ``SoftmaxClassifier.fit`` passes ``"auto"``; Dask's configuration key
        ``"softgrad.persist"`` (:data:`PERSIST_CONFIG`) overrides it:
        ``with dask.config.set({"softgrad.persist": False}): clf.fit(X, y)``
        streams ``X`` from its source even when it would fit.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_iris
    >>> from softgrad import SoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxClassifier(max_iter=500).fit(da.from_array(X, chunks=50), y)
    >>> round(float(clf.score(da.from_array(X, chunks=50), y)), 2)
    0.97
    """
    est._validate_params()
    if est.solver == "newton-cholesky":
        msg = (
            "solver='newton-cholesky' forms the whole Hessian in one process and is not "
            "available for Dask input; use solver='auto', 'lbfgs' or 'newton-cg'"
        )
        raise ValueError(msg)
    X, y, sw, names = _inputs(X, y, sample_weight)
    if _should_persist(X, persist):
        X, y, sw = require("dask", "dask", feature=FEATURE).persist(X, y, sw)
    classes, y_idx, sw_sum = _check(X, y, sw)
    k, d = len(classes), int(X.shape[1])
    warm = (
        est.warm_start
        and np.shape(getattr(est, "coef_", ())) == (k, d)
        and np.array_equal(getattr(est, "classes_", ()), classes)
    )
    W0, b0 = (est.coef_, est.intercept_) if warm else (np.zeros((k, d)), np.zeros(k))
    obj = DaskObjective(
        X,
        y_idx,
        n_classes=k,
        C=float(est.C),
        fit_intercept=bool(est.fit_intercept),
        sample_weight=sw,
        sw_sum=sw_sum,
    )
    est.solver_ = est.solver
    if est.solver == "auto":  # the in-memory rule, without the whole Hessian
        est.solver_ = choose_solver(obj.n_samples, obj.n_params, whole_hessian=False)
    res = _solve(est, obj, W0, b0)
    if not res.converged:
        warnings.warn(_not_converged(est, res), _convergence_warning(), stacklevel=3)
    W, b = obj.unpack(res.w)
    b = np.asarray(b, dtype=np.float64)
    if est.fit_intercept:
        b = b - b.mean()  # the loss is invariant to a common shift: the centred one, as in memory
    est.classes_ = classes
    est.coef_ = np.ascontiguousarray(W, dtype=X.dtype)
    est.intercept_ = b.astype(X.dtype)
    est.n_features_in_ = d
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    est.n_iter_, est.loss_curve_ = res.n_iter, res.loss_curve
    est.fit_stats_ = {
        "loss_evals": obj.n_evals,
        "gradients": obj.n_grads,
        "hvp_rows": obj.hvp_rows,
        # sgd/adam read every block once per epoch
        "data_passes": res.n_iter
        if est.solver in ("sgd", "adam")
        else obj.n_evals + obj.hvp_rows / obj.n_samples,
        "blocks": obj.n_blocks,
    }
    return est


def _solve(est: Any, obj: DaskObjective, W0: Any, b0: Any) -> Result:
    max_iter, tol = int(est.max_iter), float(est.tol)
    callback = _callback(est)
    if est.solver_ == "lbfgs":
        return lbfgs(obj, obj.pack(W0, b0), max_iter=max_iter, tol=tol, callback=callback)
    if est.solver_ == "newton-cg":
        rng = np.random.default_rng(est.random_state)
        max_cg = max(20, 20 * obj.n_classes)  # as in memory
        return newton_cg(
            obj,
            obj.pack(W0, b0),
            max_iter=max_iter,
            tol=tol,
            callback=callback,
            max_cg=max_cg,
            rng=rng,
        )
    # sgd/adam: one update per row block, the blocks shuffled each epoch
    w = obj.pack(W0, b0, dtype=obj.dtype)
    return stochastic(
        BlockBatches(obj),
        w,
        StochasticState(w.size, w.dtype),
        rule="sgd" if est.solver_ == "sgd" else "adam",
        learning_rate=float(est.learning_rate),
        batch_size=1,
        max_iter=max_iter,
        tol=tol,
        rng=np.random.default_rng(est.random_state),
        callback=callback,
    )


def _callback(est: Any) -> Any:
    """``callback(iteration, objective)``: the estimator's ``verbose`` line and its ``callback``."""
    user, verbose = est.callback, est.verbose
    if not verbose and user is None:
        return None

    def callback(iteration: int, value: float) -> None:
        if verbose:
            print(f"{est.solver_} iteration {iteration}: objective {value:.6g}")
        if user is not None:
            user(iteration, value)

    return callback


def _convergence_warning() -> type[Warning]:
    from sklearn.exceptions import ConvergenceWarning

    warning: type[Warning] = ConvergenceWarning
    return warning


def _not_converged(est: Any, res: Result) -> str:
    unit = "epochs" if est.solver in ("sgd", "adam") else "iterations"
    note = f" ({res.message})" if res.message else ""
    return (
        f"SoftmaxClassifier: {est.solver_} did not converge within max_iter={est.max_iter} "
        f"{unit}{note}; increase max_iter, raise tol, or standardise the features"
    )


# ---------------------------------------------------------------------- prediction


def _block_logits(X: Any, W: Any, b: Any) -> Any:
    with one_blas_thread:  # a skinny product, maybe beside other tasks in this process
        return X @ W.T.astype(X.dtype, copy=False) + b.astype(X.dtype, copy=False)


def _block_predict(X: Any, W: Any, b: Any, classes: Any) -> Any:
    return classes[np.argmax(_block_logits(X, W, b), axis=1)]


def _block_proba(X: Any, W: Any, b: Any) -> Any:
    return softmax(_block_logits(X, W, b), axis=-1)


def _block_log_proba(X: Any, W: Any, b: Any) -> Any:
    return log_softmax(_block_logits(X, W, b), axis=-1)


def _block_decision(X: Any, W: Any, b: Any) -> Any:
    z = _block_logits(X, W, b)
    return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z


def _features(est: Any, X: Any) -> Any:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    names = getattr(est, "feature_names_in_", None)
    if names is not None and hasattr(X, "columns"):
        missing = [n for n in names if n not in X.columns]
        if missing:
            msg = f"X lacks the training columns {missing}; pass a DataFrame with them"
            raise ValueError(msg)
        X = X[list(names)]
    X = _dask_array(X, "X")
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        msg = (
            f"X has shape {X.shape}, but {type(est).__name__} was fitted on "
            f"{est.n_features_in_} features; pass X of shape (n_samples, {est.n_features_in_})"
        )
        raise ValueError(msg)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X.rechunk({1: -1})


def predict_method(est: Any, method: str, X: Any) -> Any:
    """``est.<method>(X)`` for a Dask ``X``, lazily: a Dask array chunked like ``X``'s rows.

    ``method`` is one of ``predict``, ``predict_proba``, ``predict_log_proba``,
    ``decision_function``.
    """
    X = _features(est, X)
    W, b, k = est.coef_, est.intercept_, len(est.classes_)
    if method == "predict":
        return X.map_blocks(
            _block_predict, W, b, est.classes_, drop_axis=1, dtype=est.classes_.dtype
        )
    if method == "decision_function" and k == 2:
        return X.map_blocks(_block_decision, W, b, drop_axis=1, dtype=X.dtype)
    func = {
        "predict_proba": _block_proba,
        "predict_log_proba": _block_log_proba,
        "decision_function": _block_logits,
    }[method]
    return X.map_blocks(func, W, b, chunks=(X.chunks[0], (k,)), dtype=X.dtype)


def score(est: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """Mean (weighted) accuracy of ``est`` on Dask data, computed in one pass."""
    X, y, sw, _ = _inputs(X, y, sample_weight)
    hits = (predict_method(est, "predict", X) == y).astype(np.float64)
    value = (hits.mean() if sw is None else (hits * sw).sum() / sw.sum()).compute()
    return float(value)
