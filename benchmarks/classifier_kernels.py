"""What the fused kernels bring to SoftmaxClassifier: the same fits with kernels on and off.

Run: ``python -m benchmarks.classifier_kernels``. Synthetic 24,000 × 784
float32, 10 classes, one BLAS thread; prints the best of three fits and the
time per loss+gradient evaluation (lbfgs) or per epoch (adam).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import softgrad
from softgrad import kernels


def best_fit_seconds(clf: softgrad.SoftmaxClassifier, X: np.ndarray, y: np.ndarray) -> float:
    clf.fit(X[:2000], y[:2000])  # warm-up: numba loads its compiled kernels
    times = []
    for _ in range(3):
        start = time.perf_counter()
        clf.fit(X, y)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    X, y = make_classification(
        n_samples=24000, n_features=784, n_informative=60, n_classes=10, random_state=0
    )
    X = X.astype(np.float32)
    print("solver  path        fit s    per eval/epoch ms")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver, params in (
            ("lbfgs", {"max_iter": 30}),
            ("adam", {"max_iter": 3, "batch_size": 256}),
        ):
            for enabled in (True, False):
                kernels.set_enabled(enabled)
                clf = softgrad.SoftmaxClassifier(solver=solver, random_state=0, **params)
                seconds = best_fit_seconds(clf, X, y)
                units = clf.fit_stats_["loss_evals"] if solver == "lbfgs" else params["max_iter"]
                path = "kernels" if enabled else "array-api"
                print(f"{solver:<7} {path:<10} {seconds:>7.3f} {1000 * seconds / units:>12.1f}")
    kernels.set_enabled(True)


if __name__ == "__main__":
    main()
