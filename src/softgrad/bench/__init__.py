"""Benchmarks: timing, implementations, report and suites, in one installed package.

``softgrad bench [SUITE] [OPTIONS]`` runs a suite (``softgrad bench --help``
lists them; ``ops`` by default); ``python -m benchmarks`` from a checkout
does the same. Layout:

* :mod:`softgrad.bench._timing`: timing with a load monitor, written once;
* :mod:`softgrad.bench._impls`: each library's version of an operation;
* :mod:`softgrad.bench._report`: records, the long table, the summary;
* :mod:`softgrad.bench._policy`: the only contact with the kernel thresholds;
* :mod:`softgrad.bench._suites`: the registry (one line adds a suite);
* suites: :mod:`~softgrad.bench.ops`, :mod:`~softgrad.bench.thresholds`,
  :mod:`~softgrad.bench.first_call`, :mod:`~softgrad.bench.classifier`,
  :mod:`~softgrad.bench.classifier_kernels`, :mod:`~softgrad.bench.accuracy`
  (also home of the mpmath reference, :func:`softgrad.bench.accuracy.mp_reference`).

Timings are never asserted anywhere: tests check values, this package measures.
Importing it sets ``SOFTGRAD_KERNELS_WAIT=1`` unless already set, so a suite
times the compiled kernels, not the reference that serves while they warm up
in the background after an install (the first_call suite sets it per process).
"""

from __future__ import annotations

import os

from softgrad.bench._main import main
from softgrad.bench._report import Record
from softgrad.bench._suites import SUITES, register

__all__ = ["SUITES", "Record", "main", "register", "run"]

os.environ.setdefault("SOFTGRAD_KERNELS_WAIT", "1")


def __getattr__(name: str) -> object:
    # the ops suite's run(), kept at its old address (softgrad.bench.run)
    if name == "run":
        from softgrad.bench.ops import run

        return run
    msg = f"module 'softgrad.bench' has no attribute {name!r}"
    raise AttributeError(msg)
