"""Test helpers shared by the test modules (importable as ``helpers``)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import array_api_compat
import numpy as np


class Backend:
    """One array library as the tests see it: its Array API namespace, plus a name.

    Attribute access falls through to the library's array-api-compat namespace
    (``xp.sum``, ``xp.float32``, ``xp.exp``); :meth:`asarray` also takes NumPy
    arrays and nested lists; ``xp.xp`` is the bare namespace.
    """

    def __init__(self, name: str, xp: Any, asarray: Callable[..., Any]) -> None:
        self.name = name
        self._asarray = asarray
        self.xp = array_api_compat.array_namespace(asarray(np.zeros(1)))  # the compat namespace

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.xp, attr)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        try:
            arr = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
        except TypeError:  # a dtype of this library (torch.float32, ...)
            return self.xp.astype(self._asarray(np.asarray(a)), dtype)
        return self._asarray(arr)

    def __repr__(self) -> str:
        return self.name


def to_numpy(a: Any) -> np.ndarray:
    """Any backend's array as a NumPy array (for assertions)."""
    if hasattr(a, "detach"):  # torch
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":
            a = a.float()
        return a.numpy()
    if hasattr(a, "compute"):  # dask
        return np.asarray(a.compute())
    if type(a).__module__.startswith("array_api_strict"):
        return np.from_dlpack(a)
    return np.asarray(a)


def _backends() -> list[Backend]:
    found = [Backend("numpy", importlib.import_module("array_api_compat.numpy"), np.asarray)]
    strict = importlib.import_module("array_api_strict")
    found.append(Backend("array_api_strict", strict, strict.asarray))
    try:
        import torch

        found.append(Backend("torch", torch, torch.from_numpy))
    except ImportError:  # pragma: no cover
        pass
    try:
        import jax.numpy as jnp

        found.append(Backend("jax", jnp, jnp.asarray))
    except ImportError:  # pragma: no cover
        pass
    try:
        import dask.array as da

        found.append(Backend("dask", da, lambda a: da.from_array(a, chunks=-1)))
    except ImportError:  # pragma: no cover
        pass
    return found


BACKENDS = _backends()


def assert_close(
    actual: Any,
    desired: Any,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
    check_namespace: bool = True,
) -> None:
    """Assert ``actual`` matches ``desired``: same library, dtype and shape, close values.

    Like SciPy's ``xp_assert_close``: NaNs must sit at the same places, the
    default ``rtol`` is ``4·sqrt(eps)`` of the dtype, and a NumPy ``desired``
    for a torch ``actual`` is a failure unless ``check_namespace=False``.
    """
    if check_namespace:
        got_ns = array_api_compat.array_namespace(actual)
        want_ns = array_api_compat.array_namespace(desired)
        assert got_ns is want_ns, f"namespace {got_ns.__name__} != {want_ns.__name__}"
    assert str(actual.dtype) == str(desired.dtype), f"dtype {actual.dtype} != {desired.dtype}"
    assert tuple(actual.shape) == tuple(desired.shape), (
        f"shape {tuple(actual.shape)} != {tuple(desired.shape)}"
    )
    a, d = to_numpy(actual), to_numpy(desired)
    if rtol is None:
        rtol = 4 * float(np.finfo(d.dtype).eps) ** 0.5 if d.dtype.kind == "f" else 0.0
    np.testing.assert_allclose(a, d, rtol=rtol, atol=atol, equal_nan=True)


def assert_ulp_close(got: Any, ref: Any, n: int, c: float = 16.0, zeros: Any = None) -> None:
    """Same dtype, shape and special values; finite values within c·eps·(|ref| + n).

    The kernels' accuracy contract against the reference. ``zeros`` marks
    entries that must be exactly 0 in both (excluded entries).
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.dtype == ref.dtype
    assert got.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    assert np.all(np.isfinite(got[finite]))
    eps = float(np.finfo(ref.dtype).eps)
    tiny = float(np.finfo(ref.dtype).tiny)
    err = np.abs(got[finite].astype(np.float64) - ref[finite])
    bound = c * eps * (np.abs(ref[finite]) + n) + tiny
    assert np.all(err <= bound), f"max error {err.max()} over bound, n={n}"
    if zeros is not None:
        np.testing.assert_array_equal(got[zeros], 0)
        np.testing.assert_array_equal(ref[zeros], 0)


KERNEL_DTYPES = [np.float32, np.float64]

KERNEL_PATHS = [(10**12, 32768), (0, 32768), (0, 2)]
"""(serial_max, chunk): serial kernels; parallel over whole rows; parallel over chunks of 2."""


@contextlib.contextmanager
def kernel_path(serial_max: int, chunk: int) -> Iterator[None]:
    """Kernels at every size, through the serial or the parallel (whole or split rows) path."""
    from softgrad import kernels

    with kernels.policy(min_size=0, serial_max=serial_max, chunk=chunk):
        yield
