"""Test helpers shared by the test modules (importable as ``helpers``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np


class Backend:
    """One array library as the tests see it: make arrays, read them back."""

    def __init__(self, name: str, xp: Any, asarray: Callable[..., Any]) -> None:
        self.name = name
        self._asarray = asarray
        self.xp = array_api_compat.array_namespace(asarray(np.zeros(1)))  # the compat namespace

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
        return self._asarray(a)

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
