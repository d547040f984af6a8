"""The background warm-up: ``python -m softgrad.kernels._warm`` fills numba's cache.

:func:`softgrad.kernels.load` starts this module in a separate process the
first time a process wants the kernels and finds no ready stamp
(:func:`softgrad.kernels.cache_ready`). numba compiles a kernel lazily, once
per argument types, so this calls every NumPy entry point of
:mod:`softgrad.kernels._dispatch` with the kernels forced at every size, on
the argument types the public functions pass: float32 and float64, with and
without a mask (softmax family) or class weights (cross-entropy), serial and
parallel builds; and the ``linear_cross_entropy`` kernels (which compile on
their first call, without waiting for the stamp). numba writes each compiled
kernel to its on-disk cache; once all have compiled, the stamp is written, and
every later process loads the kernels from the cache instead of compiling them.

Run it by hand to prepare an install ahead of time (a container image, a
read-only site-packages with ``NUMBA_CACHE_DIR`` set)::

    python -m softgrad.kernels._warm
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from softgrad import kernels
from softgrad.kernels import _dispatch

__all__ = ["compile_all", "main"]


def compile_all() -> int:
    """Call every kernel variant once on small inputs; return how many calls ran a kernel."""
    if kernels.load(wait=True) is None:
        return 0
    ran = 0
    for dtype in (np.float32, np.float64):
        x = np.linspace(-2.0, 2.0, 24, dtype=dtype).reshape(4, 6)
        g = np.ones_like(x)
        mask = np.arange(24).reshape(4, 6) % 5 != 0
        labels = np.array([0, 1, 5, 2])
        weight = np.linspace(0.5, 1.5, 6, dtype=dtype)
        for serial_max in (sys.maxsize, 0):  # the serial build, then the parallel one
            with kernels.policy(min_size=0, serial_max=serial_max):
                for where in (None, mask):
                    _dispatch.softmax(x, where=where)
                    _dispatch.log_softmax_and_s(x, where=where)  # S kept: softgrad.torch
                    _dispatch.log_softmax_vjp(x, g, where=where)
                    ran += 3
                for w in (None, weight):
                    _dispatch.cross_entropy_and_grad(x, labels, weight=w)
                    ran += 1
        ran += _compile_linear(x, labels, weight)
    return ran


def _compile_linear(h: np.ndarray, labels: np.ndarray, weight: np.ndarray) -> int:
    """Call the ``linear_cross_entropy`` kernels (parallel builds only) on ``h``'s dtype:
    the two-pass loss and the fused loss-and-gradient, with and without class weights."""
    from softgrad import _linear

    head = np.linspace(-1.0, 1.0, 36, dtype=h.dtype).reshape(6, 6)
    with kernels.policy(min_size=0):
        for w in (None, weight):
            _linear.linear_cross_entropy(h, head, labels, class_weight=w)
            _linear.linear_cross_entropy_and_grad(h, head, labels, class_weight=w)
    return 4


def main() -> int:
    """Compile every kernel into numba's cache, then write the ready stamp; exit status 0 on
    success. The warm-up marker (:func:`softgrad.kernels.warm_up_marker`) is removed at the end,
    whatever happened (when it names this process: one started by hand leaves another's)."""
    try:
        if compile_all() == 0:
            return 1
        stamp = kernels.cache_stamp()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        partial.write_text("softgrad kernels compiled into numba's cache\n", encoding="utf-8")
        os.replace(partial, stamp)  # atomic: a reader sees no stamp or a whole one
        return 0
    finally:
        _release(kernels.warm_up_marker())


def _release(marker: Path) -> None:
    """Remove the warm-up marker if it names this process (or no process yet)."""
    try:
        if marker.read_text(encoding="utf-8").strip() in ("", str(os.getpid())):
            marker.unlink()
    except OSError:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
