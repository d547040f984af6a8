"""Optional compiled kernels (numba) behind softgrad's public functions.

The public functions (``softgrad.softmax`` and friends) call a fused kernel
when it applies — a NumPy array of float32/float64, large enough that the
kernel is faster — and the Array API reference otherwise. Nothing here is
imported or compiled at ``import softgrad``: numba is imported, and a kernel
compiled (or loaded from numba's on-disk cache), on the first call that uses it.

Turn the kernels off to debug or compare against the reference:

* set the environment variable ``SOFTGRAD_DISABLE_KERNELS=1`` (read at every call);
* call :func:`set_enabled` (``False``/``True``), or use :func:`disabled` as a
  context manager.

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
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["available", "disabled", "enabled", "load", "set_enabled"]

_ENV = "SOFTGRAD_DISABLE_KERNELS"
_state = threading.local()
_global = {"enabled": True}
_module: dict[str, ModuleType | None] = {}


def set_enabled(flag: bool) -> None:
    """Turn the compiled kernels on or off for the whole process."""
    _global["enabled"] = bool(flag)


def enabled() -> bool:
    """True when the kernels may run: not switched off by :func:`set_enabled`,
    :func:`disabled` or ``SOFTGRAD_DISABLE_KERNELS``, and numba is importable."""
    if not getattr(_state, "enabled", _global["enabled"]):
        return False
    if os.environ.get(_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return available()


@contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the reference (Array API) path, in this thread."""
    before = getattr(_state, "enabled", None)
    _state.enabled = False
    try:
        yield
    finally:
        if before is None:
            del _state.enabled
        else:
            _state.enabled = before


def available() -> bool:
    """True when numba can be imported (checked once, without importing it)."""
    if "numba" not in _module:
        import importlib.util

        spec = importlib.util.find_spec("numba")
        _module["numba"] = None if spec is None else ModuleType("numba-present")
    return _module["numba"] is not None


def load() -> ModuleType | None:
    """Import the numba kernels module on first use; ``None`` when numba is missing."""
    if "cpu" not in _module:
        try:
            from softgrad.kernels import _cpu
        except ImportError:  # numba missing or broken: the reference path serves
            _module["cpu"] = None
        else:
            _module["cpu"] = _cpu
    return _module["cpu"]
