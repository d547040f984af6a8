"""The first-call suite: import time and first-call cost, cold and warm numba cache.

``softgrad bench first_call``. Fresh interpreters import softgrad and call
``softmax`` on a (256, 4096) float32 array twice, with ``NUMBA_CACHE_DIR``
set to a new empty folder (cold: the kernel is compiled) and then reused
(warm: the compiled kernel is loaded from the cache). Then, with the cache
still empty, a fresh interpreter fits ``SoftmaxClassifier()`` on digits and
calls ``predict_proba``: the first fit's time, and whether numba was imported
(it should not be: the classifier's inner loop is NumPy, and a prediction
uses the kernels only when the process has loaded them already).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["main", "run"]

_SCRIPT = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import softgrad
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((256, 4096)).astype(np.{dtype})
t2 = time.perf_counter()
softgrad.softmax(x)
t3 = time.perf_counter()
softgrad.softmax(x)
t4 = time.perf_counter()
print((t1 - t0) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3, 'numba' in sys.modules)
"""


_CLASSIFIER = """
import time, sys
t0 = time.perf_counter()
from sklearn.datasets import load_digits
from softgrad import SoftmaxClassifier
X, y = load_digits(return_X_y=True)
t1 = time.perf_counter()
clf = SoftmaxClassifier().fit(X / 16, y)
t2 = time.perf_counter()
clf.predict_proba(X / 16)
t3 = time.perf_counter()
print((t2 - t1) * 1e3, (t3 - t2) * 1e3, 'numba' in sys.modules)
"""


def run(*, dtype: str = "float32", out: Callable[[str], Any] = print) -> dict[str, Any]:
    """Milliseconds of the import, the first and the second call, per cache state."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _CLASSIFIER],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        fit, proba, numba = proc.stdout.split()
        result["classifier"] = {
            "first_fit_ms": float(fit),
            "first_predict_proba_ms": float(proba),
            "numba_imported": numba == "True",
        }
        out(
            f"classifier: first digits fit {float(fit):.0f} ms, predict_proba "
            f"{float(proba):.1f} ms, numba imported: {numba} (empty numba cache)"
        )
        for label in ("cold", "warm", "warm again"):
            proc = subprocess.run(
                [sys.executable, "-c", _SCRIPT.format(dtype=dtype)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            imp, first, second, _ = proc.stdout.split()
            result[label] = {
                "import_ms": float(imp),
                "first_call_ms": float(first),
                "second_call_ms": float(second),
            }
            out(
                f"{label:>10}: import softgrad {float(imp):.0f} ms, first softmax call "
                f"{float(first):.0f} ms, second {float(second):.1f} ms"
            )
    return result


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench first_call [--json PATH]``."""
    from softgrad.bench._main import run_cli

    return run_cli("first_call", argv)
