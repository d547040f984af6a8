"""The classifier suite: SoftmaxClassifier against scikit-learn's LogisticRegression.

``softgrad bench classifier [--quick] [--reps N] [--C C]``: digits and a
synthetic 60000 × 784 set (15000 rows with ``--quick``), 10 classes, same C,
same tol. Both models run on one BLAS/OpenMP thread (threadpoolctl),
alternating rep by rep so that a busy machine slows both alike. Reported per
model: median fit time, iterations, loss(+gradient) evaluations, passes over
X (one pass = one product of X with a skinny matrix; a scikit-learn
loss_gradient is two), test accuracy; and the ratios scikit-learn / softgrad.
The machine's load and the cores other processes took during the timed fits
are recorded with the figures: rerun when "other cores" is far from 0.
"""

from __future__ import annotations

import functools
import os
import statistics
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softgrad._lib._extras import require
from softgrad.bench._timing import timed_once

__all__ = ["Fit", "main", "run"]


@dataclass
class Fit:
    """The measurements of one model on one data set."""

    model: str
    times: list[float] = field(default_factory=list)
    n_iter: int = 0
    evals: int = 0
    passes: float = 0.0
    accuracy: float = 0.0
    other_cores: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _datasets(quick: bool) -> dict[str, tuple[np.ndarray, ...]]:
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    out: dict[str, tuple[np.ndarray, ...]] = {
        "digits 1437x64 f64": (scaler.transform(Xtr), scaler.transform(Xte), ytr, yte)
    }
    n = 15000 if quick else 60000
    X, y = make_classification(
        n_samples=n, n_features=784, n_informative=200, n_classes=10, random_state=0
    )
    X = X.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    out[f"synthetic {len(ytr)}x784 f32"] = (Xtr, Xte, ytr, yte)
    return out


@contextmanager
def _counting_sklearn_evals() -> Iterator[dict[str, int]]:
    """Count LinearModelLoss.loss_gradient calls (what LogisticRegression's lbfgs evaluates)."""
    from sklearn.linear_model import _linear_loss

    counter = {"n": 0}
    original = _linear_loss.LinearModelLoss.loss_gradient

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["n"] += 1
        return original(self, *args, **kwargs)

    _linear_loss.LinearModelLoss.loss_gradient = counted
    try:
        yield counter
    finally:
        _linear_loss.LinearModelLoss.loss_gradient = original


def run(
    *, quick: bool = False, reps: int = 3, C: float = 1.0, out: Callable[[str], Any] = print
) -> list[dict[str, Any]]:
    """Fit each model ``reps`` times per data set (digits at least 5); print and return the fits."""
    from sklearn.linear_model import LogisticRegression

    threadpool_limits = require(
        "threadpoolctl", "models", feature="the classifier benchmarks"
    ).threadpool_limits

    from softgrad import SoftmaxClassifier

    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # kernels, if loaded later, on one thread
    results = []
    with _counting_sklearn_evals() as counter:
        for name, (Xtr, Xte, ytr, yte) in _datasets(quick).items():
            n_reps = reps if "synthetic" in name else max(reps, 5)
            makers: dict[str, Callable[[], Any]] = {
                "sklearn LogisticRegression(lbfgs)": lambda: LogisticRegression(
                    C=C, max_iter=10000
                ),
                "softgrad lbfgs": lambda: SoftmaxClassifier(C=C, solver="lbfgs", max_iter=10000),
                "softgrad newton-cg": lambda: SoftmaxClassifier(
                    C=C, solver="newton-cg", max_iter=10000, random_state=0
                ),
            }
            fits = {label: Fit(label) for label in makers}
            load_before = os.getloadavg()
            with threadpool_limits(1), warnings.catch_warnings():
                warnings.simplefilter("error")  # a ConvergenceWarning would void the comparison
                for _ in range(n_reps):
                    for label, make in makers.items():  # alternate: contention hits all alike
                        model = make()
                        counter["n"] = 0
                        wall, other = timed_once(functools.partial(model.fit, Xtr, ytr))
                        f = fits[label]
                        f.times.append(wall)
                        f.other_cores.append(other)
                        f.n_iter = int(np.max(model.n_iter_))
                        f.accuracy = float(model.score(Xte, yte))
                        if label.startswith("sklearn"):
                            f.evals = counter["n"]
                            f.passes = 2.0 * counter["n"]
                        else:
                            stats = model.fit_stats_
                            f.evals = int(stats["loss_evals"])
                            f.passes = float(stats["data_passes"])
            load_after = os.getloadavg()
            results.append(
                {
                    "data": name,
                    "reps": n_reps,
                    "load_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                    "fits": [_fit_dict(f) for f in fits.values()],
                }
            )
            for line in report_lines(results[-1]):
                out(line)
    return results


def _fit_dict(f: Fit) -> dict[str, Any]:
    return {
        "model": f.model,
        "median_s": round(f.median, 4),
        "times_s": [round(t, 4) for t in f.times],
        "n_iter": f.n_iter,
        "loss_evals": f.evals,
        "passes_over_X": round(f.passes, 1),
        "test_accuracy": round(f.accuracy, 5),
        "other_cores_busy": round(max(f.other_cores), 2),
    }


def report_lines(r: dict[str, Any]) -> list[str]:
    """One data set's table; the ratios are against its first model (scikit-learn)."""
    ref = r["fits"][0]
    title = (
        f"{r['data']}  ({r['reps']} reps, alternating; 1-min load "
        f"{r['load_1min_before_after'][0]} -> {r['load_1min_before_after'][1]})"
    )
    head = (
        f"{'model':<36}{'fit s':>9}{'x faster':>10}{'iters':>7}{'evals':>7}"
        f"{'X passes':>10}{'passes ratio':>14}{'test acc':>10}{'other cores':>13}"
    )
    lines = ["", title, head]
    for f in r["fits"]:
        lines.append(
            f"{f['model']:<36}{f['median_s']:>9.3f}{ref['median_s'] / f['median_s']:>10.2f}"
            f"{f['n_iter']:>7}{f['loss_evals']:>7}{f['passes_over_X']:>10.1f}"
            f"{ref['passes_over_X'] / f['passes_over_X']:>14.2f}{f['test_accuracy']:>10.4f}"
            f"{f['other_cores_busy']:>13.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench classifier [--quick] [--reps N] [--C C] [--json PATH]``."""
    from softgrad.bench._suites import run_cli

    return run_cli("classifier", argv)
