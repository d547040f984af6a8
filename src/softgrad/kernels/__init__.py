"""Optional compiled kernels (numba) behind softgrad's public functions.

The public functions (``softgrad.softmax`` and friends) call a fused kernel
when it applies — a NumPy array of float32/float64, large enough that the
kernel is faster — and the Array API reference otherwise. Nothing here is
imported or compiled at ``import softgrad``: numba is imported, and the kernels
loaded from numba's on-disk cache, on the first call that uses them. The first
such call after an install never waits for a compile: it starts a background
warm-up process that compiles the kernels into the cache while the reference
serves, and the kernels take over once it has finished (see :func:`load`;
``SOFTGRAD_KERNELS_WAIT=1`` compiles in the calling thread instead).

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
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "Policy",
    "available",
    "cache_folder",
    "cache_ready",
    "cache_stamp",
    "current_policy",
    "disabled",
    "enabled",
    "load",
    "loaded",
    "policy",
    "set_enabled",
    "set_policy",
    "warm_up_marker",
    "warm_up_process",
    "warming_elsewhere",
]

_ENV = "SOFTGRAD_DISABLE_KERNELS"
_WAIT_ENV = "SOFTGRAD_KERNELS_WAIT"


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
    compiled code from the disk cache (~0.7 s; with an empty cache the kernels
    compile in a background process, see :func:`load`), which a program handling
    only small arrays should never pay — below 4096 elements a call saves at
    most ~0.1 ms."""

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
_lock = threading.Lock()


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
    if _flag(_ENV):
        return False
    return available()


def available() -> bool:
    """True when numba can be imported (checked once, without importing it)."""
    if "numba" not in _module:
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


def load(wait: bool | None = None) -> ModuleType | None:
    """The numba kernels, or ``None`` while they are not ready (the reference serves).

    The returned namespace holds ``forward_rows``, ``vjp_rows`` and
    ``cross_entropy_rows`` (each with a ``_serial`` twin) and their options
    types ``RowOptions`` and ``CrossEntropyOptions``.

    Parameters
    ----------
    wait : bool, optional
        ``True``: import (and if needed compile) the kernels in this thread and
        return them — what the first call did before the warm-up existed.
        ``False``: never compile here. Default: ``True`` when the environment
        variable ``SOFTGRAD_KERNELS_WAIT=1`` is set (the test suite sets it),
        else ``False``.

    Returns
    -------
    ModuleType or None
        ``None`` when numba is missing or broken, and — without ``wait`` —
        while a first warm-up compiles the kernels in the background.

    Notes
    -----
    Compiling the kernels takes tens of seconds of CPU time, once per install:
    numba then keeps them in its on-disk cache (next to the sources, or in
    ``NUMBA_CACHE_DIR``, or its user cache folder when the install is
    read-only), and a later process imports numba and loads them in well
    under a second. So the first call of a process that finds the cache
    ready (a stamp the warm-up leaves beside it, :func:`cache_ready`) loads
    them at once; otherwise it starts ``python -m softgrad.kernels._warm`` — a
    separate process, so the compile does not compete with the caller for the
    GIL — and returns ``None``. Every later call checks (one ``waitpid``)
    whether the warm-up has finished and then loads the kernels from the cache.
    If the warm-up fails the kernels are imported here (``None`` if that fails
    too). One warm-up per cache at a time: a process that finds another
    process's warm-up running (:func:`warming_elsewhere`) lets the reference
    serve until the stamp appears, instead of compiling the same kernels again.

    Examples
    --------
    >>> from softgrad import kernels
    >>> k = kernels.load()
    >>> k is None or hasattr(k, "forward_rows")
    True
    """
    cached: ModuleType | None = _module.get("cpu")
    if cached is not None or "cpu" in _module:
        return cached
    if wait is None:
        wait = _flag(_WAIT_ENV)
    with _lock:
        if "cpu" in _module:  # another thread loaded them meanwhile
            return _import_kernels()
        if wait or not available():
            return _import_kernels()
        warm = _module.get("warm")
        if warm is not None and warm.poll() is None:
            return None  # our warm-up still compiling: no stamp to look for yet
        if time.monotonic() < _module.get("look_again", 0.0):
            return None  # another process's warm-up, seen less than LOOK_AGAIN_S ago
        if "warm" in _module or cache_ready():  # warm-up over (or never started), or cache filled
            return _import_kernels()
        if warming_elsewhere():  # another process's warm-up fills the same cache
            _module["look_again"] = time.monotonic() + LOOK_AGAIN_S
            return None
        return None if _start_warm_up() else _import_kernels()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _import_kernels() -> ModuleType | None:
    """Import the kernels in this process (compiling those missing from the cache)."""
    if "cpu" in _module:
        done: ModuleType | None = _module["cpu"]
        return done
    try:
        from softgrad.kernels import _cross_entropy, _softmax
    except (ImportError, RuntimeError, OSError):  # numba missing or broken, or no cache folder
        _module["cpu"] = None
    else:
        ns = ModuleType("softgrad.kernels.compiled")
        for mod in (_softmax, _cross_entropy):
            for name in mod.__all__:
                setattr(ns, name, getattr(mod, name))
        _module["cpu"] = ns
    result: ModuleType | None = _module["cpu"]
    return result


def _start_warm_up() -> bool:
    """Start the warm-up process (once); False when it could not start."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=root if not path else root + os.pathsep + path)
    env[_WAIT_ENV] = "1"
    import subprocess  # here, not at ``import softgrad``: most programs never need it

    if (marker := _claim_warm_up()) is None:
        return False
    try:
        _module["warm"] = proc = subprocess.Popen(
            [sys.executable, "-m", "softgrad.kernels._warm"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except OSError:
        _module["warm"] = None
        marker.unlink(missing_ok=True)
        return False
    with suppress(OSError):
        marker.write_text(f"{proc.pid}\n", encoding="utf-8")
    return True


def warm_up_marker() -> Path:
    """The file naming the process that is filling the cache (beside :func:`cache_stamp`)."""
    return cache_stamp().with_suffix(".warming")


LOOK_AGAIN_S = 1.0
"""While another process's warm-up runs, how often :func:`load` looks for its stamp (a
look digests the kernel sources' sizes and times); the reference serves in between."""

WARM_UP_PATIENCE = 1800.0
"""Seconds after which a warm-up marker is taken as left behind (its process killed
without removing it), so that another warm-up may start."""


def warming_elsewhere() -> bool:
    """True while another process's warm-up (alive, started at most
    :data:`WARM_UP_PATIENCE` seconds ago) is filling this cache."""
    marker = warm_up_marker()
    try:
        pid = int(marker.read_text(encoding="utf-8").strip() or "0")
        age = time.time() - marker.stat().st_mtime
    except (OSError, ValueError):
        return False
    if age > WARM_UP_PATIENCE or pid == os.getpid():
        return False
    if pid <= 0 or sys.platform == "win32":  # no pid yet / no signal 0: trust the age
        return True
    try:
        os.kill(pid, 0)  # signal 0: is the process there?
    except ProcessLookupError:
        return False
    except PermissionError:  # there, another user's
        return True
    return True


def _claim_warm_up() -> Path | None:
    """Create the warm-up marker, atomically: None when another live warm-up holds it."""
    marker = warm_up_marker()
    for _ in range(2):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if warming_elsewhere():
                return None
            marker.unlink(missing_ok=True)  # left behind by a dead warm-up
            continue
        except OSError:  # no writable cache folder: the warm-up could not write either
            return None
        os.close(fd)
        return marker
    return None


def warm_up_process() -> subprocess.Popen[bytes] | None:
    """The background warm-up process this process started (``None`` if none):
    ``warm_up_process().wait()`` waits for the cache to be filled."""
    proc: subprocess.Popen[bytes] | None = _module.get("warm")
    return proc


def cache_folder() -> Path:
    """Where numba keeps the kernels' compiled code, as numba chooses it: ``NUMBA_CACHE_DIR``
    when set, else the kernels' ``__pycache__`` when it is writable, else numba's user cache
    folder (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``; ``%LOCALAPPDATA%`` on Windows)."""
    override = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if override:
        return Path(override)
    in_tree = Path(__file__).resolve().parent / "__pycache__"
    probe = in_tree if in_tree.is_dir() else in_tree.parent
    if os.access(probe, os.W_OK):
        return in_tree
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "numba" / "numba" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache") / "numba"


def cache_stamp() -> Path:
    """The file the warm-up writes once every kernel is in numba's cache.

    Its name is a digest of what invalidates that cache: the Python version, the
    installed numba, and the size and modification time of every kernel source.
    """
    import hashlib

    digest = hashlib.sha256(sys.version.encode())
    spec = importlib.util.find_spec("numba")
    sources = sorted(Path(__file__).resolve().parent.glob("*.py"))
    if spec is not None and spec.origin:
        sources.append(Path(spec.origin))
    for source in sources:
        st = source.stat()
        digest.update(f"{source}:{st.st_size}:{st.st_mtime_ns};".encode())
    return cache_folder() / f"softgrad-kernels-{digest.hexdigest()[:16]}.ready"


def cache_ready() -> bool:
    """True when a warm-up has filled numba's cache for these kernels (loading takes well
    under a second); False when the first load would compile."""
    try:
        return cache_stamp().is_file()
    except OSError:
        return False
