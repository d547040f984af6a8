"""The thresholds suite: kernel against reference time on small arrays.

``softgrad bench thresholds``. With the kernels' size threshold set to 0
(through :func:`softgrad.bench._policy.kernel_policy`), times each kernel
family and the Array API reference on arrays of 8 to 32768 elements: where
the kernel starts to win is what the policy's ``min_size`` is set from.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from softgrad.bench._impls import implementations, inputs
from softgrad.bench._policy import kernel_policy
from softgrad.bench._timing import measure

__all__ = ["FAMILIES", "SIZES", "main", "run"]

FAMILIES = (("forward", "softmax"), ("vjp", "softmax_vjp"), ("cross_entropy", "cross_entropy"))
"""(kernel family, the operation timed for it)."""

SIZES = (8, 32, 128, 512, 2048, 8192, 32768)
"""Element counts tried: rows of at most 64 entries."""


def run(
    *, sizes: tuple[int, ...] = SIZES, out: Callable[[str], Any] = print
) -> dict[str, list[dict[str, float]]]:
    """Kernel and reference µs per family and size; printed through ``out``."""
    result: dict[str, list[dict[str, float]]] = {}
    with kernel_policy(min_size=0):
        for family, op in FAMILIES:
            rows = []
            out(f"## {family} ({op}): size, kernel µs, reference µs")
            for n in sizes:
                shape = (max(1, n // 64), min(n, 64))
                x, aux = inputs(op, shape, np.float64)
                fn = implementations(op, x, aux)["softgrad"]

                def ref(fn: Callable[[], Any] = fn) -> Any:
                    with kernel_policy(enabled=False):
                        return fn()

                tk = statistics.median(measure(fn, 0.1, 20)[0]) * 1e6
                tr = statistics.median(measure(ref, 0.1, 20)[0]) * 1e6
                rows.append({"size": float(x.size), "kernel_us": tk, "reference_us": tr})
                out(f"{x.size:>7} {tk:10.1f} {tr:10.1f}")
            result[family] = rows
    return result


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench thresholds [--json PATH]``."""
    from softgrad.bench._main import run_cli

    return run_cli("thresholds", argv)
