"""SoftmaxClassifier against scikit-learn's LogisticRegression: same C, same tol, side by side.

Run from the repository root::

    python -m benchmarks.classifier            # digits + synthetic 60000 x 784, 10 classes
    python -m benchmarks.classifier --quick    # digits + a 12000-row synthetic set
    python -m benchmarks.classifier --json results.json

Both models run on one BLAS/OpenMP thread (threadpoolctl), alternating rep by
rep so that a busy machine slows both alike. Reported per model: median fit
time, iterations, loss(+gradient) evaluations, passes over X (one pass = one
product of X with a skinny matrix; a scikit-learn loss_gradient is two), test
accuracy; and the ratios scikit-learn / softgrad. The machine's load and the
CPU that other processes took during the timed fits are recorded with the
figures: rerun when "other cores" is far from 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # kernels, if any, on one thread like BLAS


@dataclass
class Fit:
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


def _busy_jiffies() -> tuple[float, float]:
    """Machine-wide busy and total CPU time from /proc/stat (seconds); zeros elsewhere."""
    try:
        with open("/proc/stat") as fh:
            parts = [float(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    return (sum(parts) - idle) / hz, sum(parts) / hz


def _timed(fit: Any) -> tuple[float, float]:
    """Wall seconds of ``fit()`` and the cores other processes kept busy meanwhile."""
    busy0, _ = _busy_jiffies()
    own0 = sum(os.times()[:2])
    t0 = time.perf_counter()
    fit()
    wall = time.perf_counter() - t0
    busy1, _ = _busy_jiffies()
    own = sum(os.times()[:2]) - own0
    return wall, max(0.0, (busy1 - busy0 - own) / wall)


def _datasets(quick: bool) -> dict[str, tuple[np.ndarray, ...]]:
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    out = {"digits 1437x64 f64": (scaler.transform(Xtr), scaler.transform(Xte), ytr, yte)}
    n = 15000 if quick else 60000
    X, y = make_classification(
        n_samples=n, n_features=784, n_informative=200, n_classes=10, random_state=0
    )
    X = X.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    out[f"synthetic {len(ytr)}x784 f32"] = (Xtr, Xte, ytr, yte)
    return out


def _count_sklearn_evals() -> dict[str, int]:
    """Count LinearModelLoss.loss_gradient calls (what LogisticRegression's lbfgs evaluates)."""
    from sklearn.linear_model import _linear_loss

    counter = {"n": 0}
    original = _linear_loss.LinearModelLoss.loss_gradient

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["n"] += 1
        return original(self, *args, **kwargs)

    _linear_loss.LinearModelLoss.loss_gradient = counted
    return counter


def run(quick: bool, reps: int, C: float) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from softgrad import SoftmaxClassifier

    counter = _count_sklearn_evals()
    results = []
    for name, (Xtr, Xte, ytr, yte) in _datasets(quick).items():
        n_reps = reps if "synthetic" in name else max(reps, 5)
        makers = {
            "sklearn LogisticRegression(lbfgs)": lambda: LogisticRegression(C=C, max_iter=10000),
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
                    wall, other = _timed(lambda m=model, X=Xtr, y=ytr: m.fit(X, y))
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
                "fits": [
                    {
                        "model": f.model,
                        "median_s": round(f.median, 4),
                        "times_s": [round(t, 4) for t in f.times],
                        "n_iter": f.n_iter,
                        "loss_evals": f.evals,
                        "passes_over_X": round(f.passes, 1),
                        "test_accuracy": round(f.accuracy, 5),
                        "other_cores_busy": round(max(f.other_cores), 2),
                    }
                    for f in fits.values()
                ],
            }
        )
        _print(results[-1])
    return results


def _print(r: dict[str, Any]) -> None:
    ref = r["fits"][0]
    print(
        f"\n{r['data']}  ({r['reps']} reps, alternating; 1-min load "
        f"{r['load_1min_before_after'][0]} -> {r['load_1min_before_after'][1]})"
    )
    head = (
        f"{'model':<36}{'fit s':>9}{'x faster':>10}{'iters':>7}{'evals':>7}"
        f"{'X passes':>10}{'passes ratio':>14}{'test acc':>10}{'other cores':>13}"
    )
    print(head)
    for f in r["fits"]:
        print(
            f"{f['model']:<36}{f['median_s']:>9.3f}{ref['median_s'] / f['median_s']:>10.2f}"
            f"{f['n_iter']:>7}{f['loss_evals']:>7}{f['passes_over_X']:>10.1f}"
            f"{ref['passes_over_X'] / f['passes_over_X']:>14.2f}{f['test_accuracy']:>10.4f}"
            f"{f['other_cores_busy']:>13.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 15000-row synthetic set")
    parser.add_argument("--reps", type=int, default=3, help="timed fits per model (synthetic)")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, 1 BLAS thread per fit")
    results = run(args.quick, args.reps, args.C)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
