"""The first-call suite: import time and first-call cost, cold and warm numba cache.

``softgrad bench first_call``. Fresh interpreters import softgrad and call
``softmax`` on a (256, 4096) float32 array twice, with ``NUMBA_CACHE_DIR``
set to a new empty folder (cold: the kernel is compiled) and then reused
(warm: the compiled kernel is loaded from the cache).
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


def run(*, dtype: str = "float32", out: Callable[[str], Any] = print) -> dict[str, Any]:
    """Milliseconds of the import, the first and the second call, per cache state."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
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
    from softgrad.bench._suites import run_cli

    return run_cli("first_call", argv)
