"""The classifier-kernels suite: SoftmaxClassifier fits with the kernels on and off.

``softgrad bench classifier_kernels``. Synthetic 24,000 × 784 float32, 10
classes, one BLAS thread; prints the best of three fits and the time per
loss+gradient evaluation (lbfgs) or per epoch (adam).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from softgrad._lib._extras import require
from softgrad.bench._policy import kernel_policy

__all__ = ["best_fit_seconds", "main", "run"]


def best_fit_seconds(clf: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The fastest of three fits, after a small warm-up fit (numba loads its kernels)."""
    clf.fit(X[:2000], y[:2000])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        clf.fit(X, y)
        times.append(time.perf_counter() - start)
    return min(times)


def run(*, out: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Fit lbfgs and adam with the kernels on, then off; print and return the times."""
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning

    threadpool_limits = require(
        "threadpoolctl", "models", feature="the classifier benchmarks"
    ).threadpool_limits

    import softgrad

    X, y = make_classification(
        n_samples=24000, n_features=784, n_informative=60, n_classes=10, random_state=0
    )
    X = X.astype(np.float32)
    results = []
    out("solver  path        fit s    per eval/epoch ms")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        runs: tuple[tuple[Any, dict[str, Any]], ...] = (
            ("lbfgs", {"max_iter": 30}),
            ("adam", {"max_iter": 3, "batch_size": 256}),
        )
        for solver, params in runs:
            for enabled in (True, False):
                with kernel_policy(enabled=enabled):
                    clf = softgrad.SoftmaxClassifier(solver=solver, random_state=0, **params)
                    seconds = best_fit_seconds(clf, X, y)
                units = clf.fit_stats_["loss_evals"] if solver == "lbfgs" else params["max_iter"]
                path = "kernels" if enabled else "array-api"
                per_ms = 1000 * seconds / units
                out(f"{solver:<7} {path:<10} {seconds:>7.3f} {per_ms:>12.1f}")
                results.append(
                    {"solver": solver, "path": path, "fit_s": seconds, "per_unit_ms": per_ms}
                )
    return results


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench classifier_kernels [--json PATH]``."""
    from softgrad.bench._main import run_cli

    return run_cli("classifier_kernels", argv)
