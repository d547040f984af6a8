"""The ops suite: softgrad's functions beside NumPy, SciPy, PyTorch and JAX, in one run.

``softgrad bench ops`` (the default suite). For every operation × shape ×
dtype × implementation it prints the median time, the effective bandwidth
(the bytes the operation must move at least, over the median time), that
bandwidth as a fraction of the machine's copy bandwidth (``np.copyto``,
measured first, in the same process), the speed relative to PyTorch
(PyTorch's time over this one's: above 1 is faster), the cores the rest of
the machine used meanwhile, and the largest difference from softgrad's Array
API reference; then the one-screen summary of :mod:`softgrad.bench._report`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from softgrad.bench._impls import implementations, inputs, optional, result_array
from softgrad.bench._report import (
    TABLE_HEADER,
    Record,
    format_record,
    summarize,
    summary_lines,
)
from softgrad.bench._timing import copy_bandwidth, timed

__all__ = ["FULL_SHAPES", "QUICK_SHAPES", "TRAFFIC", "environment", "main", "run"]

FULL_SHAPES: dict[str, list[tuple[int, ...]]] = {
    "softmax": [(4096, 4096), (256, 32000), (32768, 128), (8, 1_000_000)],
    "log_softmax": [(4096, 4096), (256, 32000), (32768, 128), (8, 1_000_000)],
    "softmax_vjp": [(4096, 4096), (256, 32000), (32768, 128), (8, 1_000_000)],
    "cross_entropy": [(4096, 32000), (65536, 10)],
}
QUICK_SHAPES: dict[str, list[tuple[int, ...]]] = {
    "softmax": [(1024, 1024), (32, 32000), (8192, 128), (2, 500_000)],
    "log_softmax": [(1024, 1024), (8192, 128)],
    "softmax_vjp": [(1024, 1024), (8192, 128)],
    "cross_entropy": [(256, 32000), (65536, 10)],
}
TRAFFIC = {"softmax": 2, "log_softmax": 2, "softmax_vjp": 3, "cross_entropy": 2}
"""Bytes moved at least, in elements of the input: read x (+ g) and write the result."""


def _case(
    op: str,
    shape: tuple[int, ...],
    dt: str,
    impls: Sequence[str] | None,
    copy_gbps: float,
    timing: tuple[float, int, float, int, float],
) -> list[Record]:
    """Time every implementation of ``op`` on one input; torch's ratio filled in."""
    budget, min_reps, max_other, tries, wait_s = timing
    x, aux = inputs(op, shape, np.dtype(dt))
    candidates = implementations(op, x, aux)
    if impls:
        candidates = {k: v for k, v in candidates.items() if k in impls or k == "torch"}
    reference = (
        result_array(candidates["softgrad (Array API)"]())
        if "softgrad (Array API)" in candidates
        else None
    )
    found: list[Record] = []
    for name, fn in candidates.items():
        times, other, own = timed(fn, budget, min_reps, max_other, tries, wait_s)
        med = statistics.median(times)
        gbps = TRAFFIC[op] * x.size * x.itemsize / med / 1e9
        err = None
        if reference is not None:
            got = result_array(fn())
            err = float(np.max(np.abs(got.astype(np.float64) - reference)))
        found.append(
            Record(
                op,
                shape,
                dt,
                name,
                med * 1e3,
                min(times) * 1e3,
                len(times),
                gbps,
                gbps / copy_gbps,
                None,
                other,
                own,
                err,
            )
        )
    torch_ms = next((r.median_ms for r in found if r.impl == "torch"), None)
    for r in found:
        r.vs_torch = None if torch_ms is None else torch_ms / r.median_ms
    return found


def run(
    *,
    quick: bool = False,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    impls: Sequence[str] | None = None,
    max_other: float = 0.3,
    tries: int = 3,
    wait_s: float = 5.0,
    summary: bool = True,
    out: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Measure everything; print the table (and the summary) through ``out``.

    Returns the JSON-able results: ``meta`` (machine, versions, copy
    bandwidth), ``records`` (one dict per :class:`~softgrad.bench._report.Record`)
    and ``summary`` (one dict per :class:`~softgrad.bench._report.SummaryRow`).
    ``quick`` uses small shapes, a 0.25 s budget and one try per measurement;
    ``impls`` keeps only those implementations (torch is always timed: the
    ratios need it).
    """
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    budget, min_reps = (0.25, 3) if quick else (1.0, 7)
    if quick:
        tries = 1
    copy_gbps, copy_other = copy_bandwidth(64 * 2**20 if quick else 256 * 2**20, budget)
    meta = environment()
    meta["copy_gbps"] = copy_gbps
    meta["copy_other_cores"] = copy_other
    out(f"# softgrad benchmarks — {meta['date']}, {meta['cpu']}, {meta['cores']} cores")
    out("# " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    out(
        f"# np.copyto bandwidth: {copy_gbps:.1f} GB/s (read+write; other cores busy {copy_other:.2f})"
    )
    out("")
    out(TABLE_HEADER)
    out("|---" * (TABLE_HEADER.count("|") - 1) + "|")
    records: list[Record] = []
    for op in list(ops or shapes):
        for shape in shapes[op]:
            for dt in dtypes:
                found = _case(
                    op, shape, dt, impls, copy_gbps, (budget, min_reps, max_other, tries, wait_s)
                )
                for r in found:
                    out(format_record(r))
                records.extend(found)
    rows = summarize(records)
    if summary:
        out("")
        out("## Summary (× peer: best peer's median / softgrad's; goals are × torch)")
        for line in summary_lines(rows):
            out(line)
    return {
        "meta": meta,
        "records": [dataclasses.asdict(r) for r in records],
        "summary": [dataclasses.asdict(r) for r in rows],
    }


def environment() -> dict[str, Any]:
    """Date, CPU, core count, library versions and thread counts of this run."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in ("softgrad", "numpy", "scipy", "numba", "torch", "jax"):
        mod = optional(name)
        if mod is not None:
            versions[name] = str(getattr(mod, "__version__", "?"))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    threads: dict[str, int] = {}
    torch = optional("torch")
    if torch is not None:
        threads["torch"] = torch.get_num_threads()
    numba = optional("numba")
    if numba is not None:
        threads["numba"] = numba.config.NUMBA_NUM_THREADS
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench ops [OPTIONS]``; the options are those of ``softgrad bench --help``."""
    from softgrad.bench._main import run_cli

    return run_cli("ops", argv)
