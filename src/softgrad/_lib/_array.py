"""Array core: the one place that knows about array libraries.

Every public function starts here: it finds the caller's namespace through
array-api-compat, applies the dtype policy, normalises the axis and checks its
arguments, so that the math modules only ever call ``xp.*``.

Dtype policy
------------
* float32 / float64 are computed as they are;
* integers and booleans are promoted to the namespace's default float;
* float16 / bfloat16 are computed in float32 and cast back on return;
* complex dtypes are refused (softmax is not defined on them here).
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat

Array = Any
"""Any array of a library that array-api-compat supports."""

Namespace = Any
"""An Array API namespace (``xp``)."""

__all__ = [
    "Array",
    "Namespace",
    "array_namespace",
    "compute_dtype",
    "constant",
    "device",
    "is_concrete",
    "normalize_axis",
    "stop_gradient",
    "to_compute",
    "validate_where",
]


def array_namespace(*arrays: Array | None, names: tuple[str, ...] = ()) -> Namespace:
    """Return the Array API namespace shared by ``arrays`` (``None`` entries skipped).

    ``names`` names the arrays in the caller's terms (``("logits", "target")``)
    for the errors: a Python value where an array belongs, or arrays of two
    libraries, name the argument, its library and how to convert it.
    """
    labels = [names[k] if k < len(names) else f"argument {k + 1}" for k in range(len(arrays))]
    present = [(label, a) for label, a in zip(labels, arrays, strict=True) if a is not None]
    if not present:
        msg = "expected at least one array, got none"
        raise TypeError(msg)
    for label, a in present:
        if isinstance(a, (bool, int, float, complex)) or not hasattr(a, "shape"):
            msg = (
                f"{label}: expected an array (NumPy, PyTorch, JAX, CuPy, Dask, array-api-strict), "
                f"got {type(a).__name__}; wrap Python values with numpy.asarray(...)"
            )
            raise TypeError(msg)
    if all(_is_torch(a) for _, a in present):
        # direct, so that torch.compile traces no cached helper
        import array_api_compat.torch as torch_namespace

        return torch_namespace
    try:
        return array_api_compat.array_namespace(*(a for _, a in present))
    except TypeError as exc:
        if "ultiple namespaces" not in str(exc):
            raise
        raise TypeError(_mixed_libraries_message(present)) from exc


def _library(a: Array) -> str:
    """The array library ``a`` belongs to, as its users call it."""
    module = type(a).__module__.split(".")[0]
    return {"jaxlib": "jax", "builtins": "python"}.get(module, module)


def _mixed_libraries_message(present: list[tuple[str, Array]]) -> str:
    first_label, first = present[0]
    lib = _library(first)
    others = [(label, _library(a)) for label, a in present if _library(a) != lib]
    if not others:  # same library, several namespaces (e.g. JAX and NumPy scalars)
        kinds = ", ".join(
            f"{label} ({type(a).__module__}.{type(a).__name__})" for label, a in present
        )
        return f"the arrays come from different namespaces: {kinds}; pass arrays of one library"
    label, other = others[0]
    convert = {
        "numpy": f"numpy.asarray({label})",
        "torch": f"torch.as_tensor({label})",
        "jax": f"jax.numpy.asarray({label})",
        "dask": f"dask.array.from_array({label})",
    }.get(lib, f"the {lib} library's asarray({label})")
    return (
        f"{label} is a {other} array but {first_label} is a {lib} array; every array argument "
        f"must come from one library: convert {label} with {convert}"
    )


def _is_torch(x: Array) -> bool:
    # a plain isinstance check: array-api-compat's cached helpers make torch.compile warn
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def device(x: Array) -> Any:
    """The device ``x`` lives on (``"cpu"`` for NumPy)."""
    if _is_torch(x):
        return x.device
    return array_api_compat.device(x)


def _default_float(xp: Namespace) -> Any:
    try:
        return xp.__array_namespace_info__().default_dtypes()["real floating"]
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - very old namespaces
        return xp.float64


def compute_dtype(xp: Namespace, dtype: Any, *, name: str = "x", func: str = "softmax") -> Any:
    """The dtype the math runs in for an input of ``dtype`` (see the module's policy).

    ``name`` is the argument and ``func`` the public function, for the errors.
    """
    kind = getattr(dtype, "kind", "")
    if kind in ("O", "U", "S", "V", "M", "m"):  # NumPy object, string, void, datetime
        msg = (
            f"{func}: {name} has dtype {dtype}, which holds no real numbers; "
            f"convert it to a float array first, e.g. {name}.astype(float)"
        )
        raise TypeError(msg)
    if dtype in (xp.float32, xp.float64):
        return dtype
    if dtype == xp.bool or xp.isdtype(dtype, "integral"):
        return _default_float(xp)
    if xp.isdtype(dtype, "complex floating"):
        msg = (
            f"{func}: {name} has complex dtype {dtype}; {func} is defined for real inputs only. "
            f"Pass the real part ({name}.real) or the modulus if that is what you mean"
        )
        raise TypeError(msg)
    try:
        bits = xp.finfo(dtype).bits
    except (TypeError, ValueError) as exc:
        msg = f"{func}: {name} has unsupported dtype {dtype}; use a real floating dtype"
        raise TypeError(msg) from exc
    if bits < 32:  # float16, bfloat16: accumulate in float32
        return xp.float32
    msg = (
        f"{func}: {name} has unsupported dtype {dtype}; use float32 or float64"  # pragma: no cover
    )
    raise TypeError(msg)  # pragma: no cover


def to_compute(
    xp: Namespace, x: Array, *, name: str = "x", func: str = "softmax"
) -> tuple[Array, Any]:
    """Cast ``x`` to its compute dtype; return it and the dtype results are given in.

    Results come back in the input's own dtype when it is a float (float16 and
    bfloat16 included) and in the compute dtype otherwise.
    """
    dtype = compute_dtype(xp, x.dtype, name=name, func=func)
    out_dtype = dtype if (x.dtype == xp.bool or xp.isdtype(x.dtype, "integral")) else x.dtype
    if x.dtype != dtype:
        x = xp.astype(x, dtype)
    return x, out_dtype


def normalize_axis(axis: int, ndim: int, *, name: str = "axis") -> int:
    """Return ``axis`` as a non-negative index into an array of ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        msg = f"{name} must be an int, got {axis!r}"
        raise TypeError(msg)
    if ndim == 0:
        msg = f"{name}={axis} is invalid for a 0-d array; softmax needs at least one dimension"
        raise ValueError(msg)
    if not -ndim <= axis < ndim:
        msg = f"{name}={axis} is out of range for an array of {ndim} dimensions; use -{ndim}..{ndim - 1}"
        raise ValueError(msg)
    return axis % ndim


def constant(xp: Namespace, value: float, like: Array) -> Array:
    """A 0-d array holding ``value`` with ``like``'s dtype and device (broadcasts anywhere)."""
    return xp.asarray(value, dtype=like.dtype, device=device(like))


def validate_where(xp: Namespace, where: Array | None, shape: tuple[int, ...]) -> Array | None:
    """Check that a mask is boolean and broadcasts to ``shape``; return it broadcast."""
    if where is None:
        return None
    if where.dtype != xp.bool:
        msg = f"where must be a boolean array, got dtype {where.dtype}; pass (mask != 0) instead"
        raise TypeError(msg)
    if tuple(where.shape) != tuple(shape):
        try:
            where = xp.broadcast_to(where, shape)
        except (ValueError, RuntimeError, TypeError) as exc:
            msg = f"where has shape {tuple(where.shape)}, which does not broadcast to {shape}"
            raise ValueError(msg) from exc
    return where


def is_concrete(x: Array) -> bool:
    """True when ``x``'s values can be inspected now (not a JAX tracer or a lazy Dask array)."""
    return _is_torch(x) or not array_api_compat.is_lazy_array(x)


def stop_gradient(xp: Namespace, x: Array) -> Array:
    """``x`` with autodiff cut (PyTorch ``detach``, JAX ``stop_gradient``); values unchanged.

    Used for the max shift of softmax: the result does not depend on it, so its
    derivative is exactly zero and autodiff should not trace it.
    """
    if _is_torch(x):
        return x.detach()
    if array_api_compat.is_jax_array(x):
        import jax

        return jax.lax.stop_gradient(x)
    return x
