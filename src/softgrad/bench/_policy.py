"""The benchmarks' only contact with the kernel thresholds.

Suites that change when the kernels run (the thresholds suite times them
below their size threshold, the classifier suite with kernels on and off)
call :func:`kernel_policy` and nothing else: no module global is patched
anywhere in the benchmarks. It is :func:`softgrad.kernels.policy`, so a
change holds for the block and this thread only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from softgrad import kernels

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
    with kernels.policy(**changes):
        yield
