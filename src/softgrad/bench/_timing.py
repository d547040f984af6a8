"""Timing written once: repeated runs with a load monitor, one timed call, copy bandwidth.

Every suite times through these functions. Beside the times they report the
cores the *rest of the machine* kept busy meanwhile (busy jiffies from
``/proc/stat`` minus this process's own CPU time): near 0 is a clean
measurement, near 1 means another process held a core.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["busy_jiffies", "copy_bandwidth", "measure", "own_cpu", "timed", "timed_once"]


def busy_jiffies() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def own_cpu() -> float:
    """Seconds of CPU (user + system) this process has used."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _other_cores(
    j0: tuple[float, float] | None, j1: tuple[float, float] | None, wall: float, own: float
) -> float:
    """Cores busy outside this process over ``wall`` seconds (0 when /proc/stat is absent)."""
    if j0 is None or j1 is None or wall <= 0:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, (j1[0] - j0[0]) / tick / wall - own)


def measure(
    fn: Callable[[], Any], budget_s: float, min_reps: int
) -> tuple[list[float], float, float]:
    """Run ``fn`` twice to warm up, then at least ``min_reps`` times and until ``budget_s``.

    Returns the seconds of each timed run (at most 200), the cores other
    processes used meanwhile and the cores this process used.
    """
    fn()
    fn()  # warm-up: compilation, page faults, caches
    times: list[float] = []
    j0, c0, w0 = busy_jiffies(), own_cpu(), time.perf_counter()
    while len(times) < min_reps or (sum(times) < budget_s and len(times) < 200):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    j1, c1, w1 = busy_jiffies(), own_cpu(), time.perf_counter()
    wall = w1 - w0
    own = (c1 - c0) / wall
    return times, _other_cores(j0, j1, wall, own), own


def timed(
    fn: Callable[[], Any],
    budget_s: float,
    min_reps: int,
    max_other: float,
    tries: int,
    wait_s: float,
) -> tuple[list[float], float, float]:
    """:func:`measure`, repeated (after a pause) while other processes take more than
    ``max_other`` cores, at most ``tries`` times; the least contended try is kept."""
    best: tuple[list[float], float, float] | None = None
    for attempt in range(max(1, tries)):
        res = measure(fn, budget_s, min_reps)
        if best is None or res[1] < best[1]:
            best = res
        if res[1] <= max_other:
            break
        if attempt + 1 < tries:
            time.sleep(wait_s)
    assert best is not None
    return best


def timed_once(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds of one call ``fn()`` and the cores other processes kept busy meanwhile."""
    j0, c0, w0 = busy_jiffies(), own_cpu(), time.perf_counter()
    fn()
    j1, c1, w1 = busy_jiffies(), own_cpu(), time.perf_counter()
    wall = w1 - w0
    return wall, _other_cores(j0, j1, wall, (c1 - c0) / wall if wall > 0 else 0.0)


def copy_bandwidth(nbytes: int = 256 * 2**20, budget_s: float = 1.0) -> tuple[float, float]:
    """GB/s of ``np.copyto`` (read + write counted) and the other processes' cores meanwhile."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    times, other, _ = measure(lambda: np.copyto(dst, src), budget_s, 7)
    return 2 * nbytes / statistics.median(times) / 1e9, other
