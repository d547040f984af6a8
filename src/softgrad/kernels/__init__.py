"""Optional compiled kernels (numba) behind softgrad's public functions.

The public functions (``softgrad.softmax`` and friends) call a fused kernel
when it applies — a NumPy array of float32/float64, large enough that the
kernel is faster — and the Array API reference otherwise. Nothing here is
imported or compiled at ``import softgrad``: numba is imported, and a kernel
compiled (or loaded from numba's on-disk cache), on the first call that uses it.

When a kernel runs is set by a :class:`Policy`: whether kernels are enabled,
the smallest input they take (``min_size``), the largest one run in the
calling thread (``serial_max``) and the chunk length of long rows (``chunk``).
Change it for a block of code in this thread with :func:`policy`, or for the
whole process with :func:`set_policy`; read it with :func:`current_policy`.

Turn the kernels off to debug or compare against the reference:

* set the environment variable ``SOFTGRAD_DISABLE_KERNELS=1`` (read at every call);
* call :func:`set_enabled` (``False``/``True``), or use :func:`disabled` as a
  context manager (shorthands for ``set_policy(enabled=...)`` and
  ``policy(enabled=False)``).

Examples
--------
>>> import numpy as np
>>> import softgrad
>>> from softgrad import kernels
>>> with kernels.disabled():
...     kernels.enabled()
False
>>> softgrad.softmax(np.zeros(2))
array([0.5, 0.5])
>>> with kernels.policy(min_size=0, serial_max=0):  # kernels at every size, in parallel
...     kernels.current_policy().min_size
0
>>> kernels.current_policy().min_size
4096
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = [
    "Policy",
    "available",
    "current_policy",
    "disabled",
    "enabled",
    "load",
    "loaded",
    "policy",
    "set_enabled",
    "set_policy",
]

_ENV = "SOFTGRAD_DISABLE_KERNELS"


@dataclasses.dataclass(frozen=True)
class Policy:
    """When the compiled kernels run, and how they split the work.

    Build a changed copy with :func:`policy` (this thread, a block of code) or
    :func:`set_policy` (the whole process); every field is checked there.
    """

    enabled: bool = True
    """Whether the kernels may run at all (numba must also be importable and
    ``SOFTGRAD_DISABLE_KERNELS`` unset)."""

    min_size: int = 4096
    """Smallest number of elements for which a kernel is used.

    Measured (``python -m benchmarks --thresholds``, 2-core Xeon, float64): once
    loaded, the serial kernels are faster than the reference at every size tried,
    down to 8 elements (softmax 5.6 µs vs 58 µs, softmax_vjp 5.7 vs 18,
    cross-entropy 15 vs 163). The threshold is therefore set by the one-off cost
    instead: the first kernel call of a process imports numba and loads the
    compiled code from the disk cache (~0.7 s; ~10 s per kernel and dtype when
    the cache is empty), which a program handling only small arrays should never
    pay — below 4096 elements a call saves at most ~0.1 ms."""

    serial_max: int = 8192
    """Arrays up to this many elements run in the calling thread (no parallel launch).

    Measured: at 8192 elements the serial and parallel kernels cost about the
    same (forward 50 vs 23 µs, vjp 29 vs 13 µs when both cores are free, but a
    parallel launch waits a whole scheduler time slice, milliseconds, whenever
    another process holds a core); at 32768 the parallel ones win 2–3×."""

    chunk: int = 32768
    """Rows longer than this are split into chunks spread over the threads.

    With fewer than 4 rows the chunk is shortened (to a quarter of the row, at
    least 4096 entries, never longer than this) so that every core gets work."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            msg = f"enabled must be True or False, got {self.enabled!r}"
            raise TypeError(msg)
        for name, low in (("min_size", 0), ("serial_max", 0), ("chunk", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                msg = f"{name} must be an int >= {low}, got {value!r}"
                raise TypeError(msg)
            if value < low:
                msg = f"{name} must be an int >= {low}, got {value}"
                raise ValueError(msg)


_FIELDS = tuple(f.name for f in dataclasses.fields(Policy))
_state = threading.local()
_process: dict[str, Policy] = {"policy": Policy()}
_module: dict[str, Any] = {}


def _changed(base: Policy, changes: dict[str, Any]) -> Policy:
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        msg = f"unknown kernel policy field(s) {', '.join(unknown)}; the fields are {', '.join(_FIELDS)}"
        raise TypeError(msg)
    return dataclasses.replace(base, **changes)


def current_policy() -> Policy:
    """The policy in force in this thread: the process's, with the changes of the
    enclosing :func:`policy` blocks applied (the innermost last)."""
    stack: list[dict[str, Any]] | None = getattr(_state, "stack", None)
    base = _process["policy"]
    if not stack:
        return base
    merged: dict[str, Any] = {}
    for changes in stack:
        merged.update(changes)
    return dataclasses.replace(base, **merged)


@contextmanager
def policy(**changes: Any) -> Iterator[Policy]:
    """Run the block, in this thread, with ``changes`` applied to the policy.

    Fields not named keep following the process-wide policy (:func:`set_policy`,
    :func:`set_enabled`). Raises ``TypeError`` for an unknown field name or a
    value of the wrong type and ``ValueError`` for a negative size, before the
    block runs.

    >>> from softgrad import kernels
    >>> with kernels.policy(chunk=3) as p:
    ...     p.chunk
    3
    """
    new = _changed(current_policy(), changes)
    stack: list[dict[str, Any]] = _state.__dict__.setdefault("stack", [])
    stack.append(dict(changes))
    try:
        yield new
    finally:
        stack.pop()


def set_policy(**changes: Any) -> Policy:
    """Apply ``changes`` to the process-wide policy (every thread without a
    :func:`policy` block); return the new policy."""
    _process["policy"] = _changed(_process["policy"], changes)
    return _process["policy"]


def set_enabled(flag: bool) -> None:
    """Turn the compiled kernels on or off for the whole process."""
    set_policy(enabled=bool(flag))


@contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the reference (Array API) path, in this thread."""
    with policy(enabled=False):
        yield


def enabled() -> bool:
    """True when the kernels may run: enabled by the current policy, not switched
    off by ``SOFTGRAD_DISABLE_KERNELS``, and numba importable."""
    if not current_policy().enabled:
        return False
    if os.environ.get(_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return available()


def available() -> bool:
    """True when numba can be imported (checked once, without importing it)."""
    if "numba" not in _module:
        import importlib.util

        spec = importlib.util.find_spec("numba")
        _module["numba"] = None if spec is None else ModuleType("numba-present")
    return _module["numba"] is not None


def loaded() -> bool:
    """True when this process has already imported the kernels (no call would wait for numba).

    Code that may run once on small data (a classifier's ``predict_proba``)
    can use the kernels only when this holds, so that it never pays for
    importing numba and loading the compiled code itself.

    >>> from softgrad import kernels
    >>> isinstance(kernels.loaded(), bool)
    True
    """
    return _module.get("cpu") is not None


def load() -> ModuleType | None:
    """Import the numba kernels on first use; ``None`` when numba is missing.

    The returned namespace holds ``forward_rows``, ``vjp_rows`` and
    ``cross_entropy_rows`` (each with a ``_serial`` twin) and their options
    types ``RowOptions`` and ``CrossEntropyOptions``.
    """
    if "cpu" not in _module:
        try:
            from softgrad.kernels import _cross_entropy, _softmax
        except ImportError:  # numba missing or broken: the reference path serves
            _module["cpu"] = None
        else:
            ns = ModuleType("softgrad.kernels.compiled")
            for mod in (_softmax, _cross_entropy):
                for name in mod.__all__:
                    setattr(ns, name, getattr(mod, name))
            _module["cpu"] = ns
    result: ModuleType | None = _module["cpu"]
    return result
