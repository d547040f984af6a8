r"""Output memory of the CPU kernels, kept and reused once PyTorch has dropped it.

Why. A tensor's memory comes from ``malloc``; a buffer of megabytes is a
fresh mapping (or heap the allocator has just trimmed), and its first write
takes one page fault per 4 KiB page. On the 2-core machine the benchmarks ran
on, writing 32 MiB of fresh memory costs 8-17 ms against 4 ms for memory
already mapped, and up to 38 ms when two threads fault huge pages at once:
about as much as the softmax kernel itself (7.6 ms for 32768 × 128 float32).
A training step allocates the same shapes every step (the forward's output,
the saved :math:`S`, the gradient), so the bridge keeps the buffers of
dropped outputs and hands them out again: the step then touches no fresh
page. PyTorch's CUDA caching allocator does the same on GPUs.

How. Every buffer is a NumPy ``uint8`` array owned by the cache; what the
kernels write into is a view of it, and the tensor given to PyTorch
(``torch.from_numpy``) holds that view. NumPy points every view, and every
view of a view, straight at the owning array, so the buffer's reference count
is exactly the cache's own reference plus one per live view: a buffer whose
count is back to the cache's alone is idle, whatever PyTorch did with the
tensor meanwhile (reshaped it, saved it for backward, made it a ``.grad``).

Limits. Idle buffers are kept up to :data:`DEFAULT_LIMIT_BYTES` in all
(environment variable ``SOFTGRAD_TORCH_CACHE_MB``, or
:func:`set_cache_limit`; 0 turns the cache off), the least recently used
given back first; buffers under :data:`MIN_BYTES` are not cached (``malloc``
serves those from its heap without faults). The limit is applied at every
allocation; :func:`empty_cache` gives back every idle buffer at once.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_LIMIT_BYTES",
    "MIN_BYTES",
    "BufferCache",
    "cache",
    "cached_bytes",
    "empty_cache",
    "set_cache_limit",
]

MIN_BYTES = 1 << 20
"""Buffers smaller than this are plain ``numpy.empty`` arrays."""

DEFAULT_LIMIT_BYTES = 256 << 20
"""Idle bytes kept by default: the buffers of a 4096 × 4096 float32 step, three times over."""

_ENV = "SOFTGRAD_TORCH_CACHE_MB"


def _references(buffers: list[Any], i: int) -> int:
    """References to ``buffers[i]`` as counted here (the same call measures the idle baseline)."""
    return sys.getrefcount(buffers[i])


_IDLE = _references([np.empty(0, dtype=np.uint8)], 0)
"""The count of a buffer held by the cache's list only."""


def _limit_from_environment() -> int:
    value = os.environ.get(_ENV)
    if value is None or not value.strip():
        return DEFAULT_LIMIT_BYTES
    try:
        mib = float(value)
    except ValueError:
        mib = math.nan
    if not (mib >= 0 and math.isfinite(mib)):
        msg = f"{_ENV}={value!r} is not a size in MiB; set it to a number >= 0 (0 turns the cache off)"
        raise ValueError(msg)
    return int(mib * (1 << 20))


class BufferCache:
    """Buffers for kernel outputs, reused once no view of them is alive.

    Parameters
    ----------
    limit_bytes : int
        Most idle bytes kept (0: every request is a fresh ``numpy.empty``).

    Examples
    --------
    >>> import numpy as np
    >>> c = BufferCache(limit_bytes=64 << 20)
    >>> a = c.empty((1024, 1024), np.float32)
    >>> address = a.ctypes.data
    >>> del a                                   # the only view is gone: the buffer is idle
    >>> c.empty((512, 2048), np.float32).ctypes.data == address
    True
    """

    def __init__(self, limit_bytes: int) -> None:
        self._buffers: list[np.ndarray] = []  # least recently handed out first
        self._lock = threading.Lock()
        self.limit_bytes = limit_bytes

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_BYTES or self.limit_bytes <= 0:
            return np.empty(shape, dtype=dtype)
        with self._lock:
            buf = self._take_idle(nbytes)  # out of the list: the trim cannot give it back
            self._trim(self.limit_bytes)  # before a fresh allocation, so the peak stays low
            if buf is None:
                buf = np.empty(nbytes, dtype=np.uint8)
            self._buffers.append(buf)
            out: np.ndarray = buf.view(dtype).reshape(shape)
            return out

    def _take_idle(self, nbytes: int) -> np.ndarray | None:
        """The most recently used idle buffer of ``nbytes``, removed from the list."""
        for i in range(len(self._buffers) - 1, -1, -1):
            if self._buffers[i].nbytes == nbytes and _references(self._buffers, i) == _IDLE:
                return self._buffers.pop(i)
        return None

    def _idle_indices(self) -> list[int]:
        return [i for i in range(len(self._buffers)) if _references(self._buffers, i) == _IDLE]

    def _trim(self, keep_bytes: int) -> int:
        """Give back the least recently used idle buffers until at most ``keep_bytes`` stay idle."""
        idle = self._idle_indices()
        excess = sum(self._buffers[i].nbytes for i in idle) - keep_bytes
        dropped = []
        for i in idle:
            if excess <= 0:
                break
            excess -= self._buffers[i].nbytes
            dropped.append(i)
        freed = sum(self._buffers[i].nbytes for i in dropped)
        for i in reversed(dropped):
            del self._buffers[i]
        return freed

    def idle_bytes(self) -> int:
        """Bytes held by buffers no tensor uses."""
        with self._lock:
            return sum(self._buffers[i].nbytes for i in self._idle_indices())

    def clear(self) -> int:
        """Give back every idle buffer; the bytes given back."""
        with self._lock:
            freed = self._trim(0)
            # buffers in use leave the cache too: they are freed with their last view
            self._buffers.clear()
        return freed


cache = BufferCache(_limit_from_environment())
"""The cache of :mod:`softgrad.torch`'s CPU kernels."""


def empty_cache() -> int:
    """Give back the memory of every idle cached output buffer; the bytes given back.

    ``softgrad.torch`` keeps the memory of dropped CPU outputs (up to 256 MiB
    idle by default) so that the next training step does not page-fault fresh
    memory; call this after training to return it at once.

    >>> import softgrad.torch as sgt
    >>> sgt.empty_cache() >= 0
    True
    """
    return cache.clear()


def cached_bytes() -> int:
    """Bytes of cached output buffers no tensor uses at the moment.

    >>> import softgrad.torch as sgt
    >>> sgt.cached_bytes() >= 0
    True
    """
    return cache.idle_bytes()


def set_cache_limit(limit_bytes: int) -> int:
    """Keep at most ``limit_bytes`` of idle output buffers (0: no cache); the previous limit.

    The default is 256 MiB, or ``SOFTGRAD_TORCH_CACHE_MB`` MiB when that
    environment variable is set.

    >>> import softgrad.torch as sgt
    >>> previous = sgt.set_cache_limit(0)       # every output freshly allocated
    >>> sgt.set_cache_limit(previous)
    0
    """
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 0:
        msg = f"limit_bytes must be an int >= 0 (0 turns the cache off), got {limit_bytes!r}"
        raise ValueError(msg)
    with cache._lock:
        previous = cache.limit_bytes
        cache.limit_bytes = limit_bytes
        cache._trim(limit_bytes)
    return previous
