"""Optional dependencies: import one, or say which ``pip install`` line brings it.

The core install is NumPy and array-api-compat. Everything else belongs to an
extra (``softgrad[models]``, ``[explain]``, ``[cli]``, ``[kernels]``,
``[torch]``, ``[jax]``, ``[dask]``, ``[all]``); code that needs one calls
:func:`require` at the point of use, so a missing package is reported with the
line that fixes it instead of an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``softgrad[extra]``.

    Examples
    --------
    >>> require("numpy", "core").__name__
    'numpy'
    >>> require("no_such_module_xyz", "models", feature="SoftmaxClassifier")
    Traceback (most recent call last):
    ...
    softgrad._lib._extras.MissingExtraError: SoftmaxClassifier needs the package 'no_such_module_xyz', which is not installed; install it with: pip install 'softgrad[models]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", 1)[0]
        what = feature or f"this part of softgrad ({extra})"
        msg = (
            f"{what} needs the package {top!r}, which is not installed; "
            f"install it with: pip install 'softgrad[{extra}]'"
        )
        raise MissingExtraError(msg) from exc
