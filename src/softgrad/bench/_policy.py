"""The benchmarks' only contact with the kernel thresholds.

Suites that change when the kernels run (the thresholds suite times them
below their size threshold, the classifier suite with kernels on and off)
call :func:`kernel_policy` and nothing else: no module global is patched
anywhere else in the benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["kernel_policy"]


@contextmanager
def kernel_policy(**changes: Any) -> Iterator[None]:
    """Run the block, in this thread, with the kernel policy fields ``changes``
    (``enabled``, ``min_size``, ``serial_max``, ``chunk``) changed.

    Examples
    --------
    >>> import numpy as np
    >>> import softgrad
    >>> with kernel_policy(enabled=False):
    ...     softgrad.softmax(np.zeros(2))
    array([0.5, 0.5])
    """
    from softgrad import kernels

    policy = getattr(kernels, "policy", None)
    if policy is not None:
        with policy(**changes):
            yield
        return
    with _globals_fallback(changes):  # TODO: remove with the fallback
        yield


@contextmanager
def _globals_fallback(changes: dict[str, Any]) -> Iterator[None]:
    """TODO(remove once ``softgrad.kernels.policy`` is merged): today's module globals.

    Patches ``softgrad._delegation.MIN_SIZE``/``SERIAL_MAX``/``CHUNK`` for the
    whole process (not thread-local) and restores them on exit.
    """
    from softgrad import _delegation, kernels

    unknown = sorted(set(changes) - {"enabled", "min_size", "serial_max", "chunk"})
    if unknown:
        msg = f"unknown kernel policy field(s) {', '.join(unknown)}; use enabled, min_size, serial_max or chunk"
        raise TypeError(msg)
    d: Any = _delegation
    saved = (dict(d.MIN_SIZE), d.SERIAL_MAX, d.CHUNK)
    try:
        if "min_size" in changes:
            d.MIN_SIZE.update(dict.fromkeys(d.MIN_SIZE, changes["min_size"]))
        d.SERIAL_MAX = changes.get("serial_max", d.SERIAL_MAX)
        d.CHUNK = changes.get("chunk", d.CHUNK)
        if "enabled" in changes and not changes["enabled"]:
            with kernels.disabled():
                yield
        else:
            yield
    finally:
        d.MIN_SIZE.update(saved[0])
        d.SERIAL_MAX, d.CHUNK = saved[1], saved[2]
