"""The blocked computation behind :func:`softgrad.linear_cross_entropy` (see ``softgrad._linear``).

Argument checks, the dispatch of the ``linear_lse`` primitive to the
implementation for the array library (NumPy kernel, torch operation, JAX
``custom_vjp``, Array API reference), and the loss arithmetic on its three
numbers per row. :mod:`softgrad._linear` (public) routes Dask arrays to
:mod:`softgrad.dask`, which runs :func:`loss` and :func:`loss_and_grad` on each
block of rows; everything else comes here. Nothing here imports the public
module or the Dask bridge, so neither makes an import circle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np

from softgrad._agnostic import _linear as _ref
from softgrad._lib._array import Array, Namespace, array_namespace, constant, is_concrete

__all__ = [
    "FUSED_ORDER",
    "LinearCrossEntropyGrad",
    "LinearCrossEntropyOptions",
    "loss",
    "loss_and_grad",
]

Reduction = Literal["mean", "sum", "none"]
BLOCK_ROWS = 1024
BLOCK_VOCAB = 2048
FUSED_LOGITS = 2**24
"""Logits alive at once in the fused order with the default blocks (64 MiB in float32)."""
FUSED_ORDER = True
"""NumPy ``linear_cross_entropy_and_grad``: gradients during the forward pass (Liger's order)."""


class LinearCrossEntropyOptions(TypedDict, total=False):
    """The keyword options of :func:`linear_cross_entropy` (defaults there)."""

    bias: Array | None
    class_weight: Array | None
    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float | None
    reduction: Reduction
    block_rows: int | None
    block_vocab: int | None


class LinearCrossEntropyGrad(NamedTuple):
    """What :func:`linear_cross_entropy_and_grad` returns (unpacks as a 4-tuple)."""

    loss: Array
    grad_h: Array
    grad_weight: Array
    grad_bias: Array | None


@dataclass(frozen=True)
class _Head:
    """Checked arguments: 2-D ``h``, compute dtype, per-row target data."""

    xp: Namespace
    h: Array  # (N, D)
    weight: Array  # (K, D)
    bias: Array | None  # (K,)
    y: Array  # (N,) targets, ignored rows set to class 0
    counted: Array  # (N,) bool
    wy: Array  # (N,) the target's class weight, 0 where ignored
    class_weight: Array | None
    sum_w: float | Array  # sum of the class weights (K without them)
    eps: float
    z_loss: float
    softcap: float | None
    reduction: str
    blocks: tuple[int, int]
    fused_rows: int  # rows per chunk in the fused order (chunk x K logits alive)
    lead: tuple[int, ...]  # h's shape without the feature axis
    dtypes: tuple[Any, Any, Any]  # h's, weight's and bias's dtype for the results

    def operands(self) -> _ref.LinearOperands:
        """``(h, weight, bias, y)`` as the ``linear_lse`` primitives take them."""
        return _ref.LinearOperands(self.h, self.weight, self.bias, self.y)


def _inspectable(x: Array) -> bool:
    """True when ``x``'s values can be read now (not a JAX tracer, lazy Dask or ``torch.compile`` trace)."""
    if type(x).__module__.startswith("torch"):
        import torch

        # inside a compiled graph labels are not range-checked: reading one breaks the graph
        return not torch.compiler.is_compiling()
    return is_concrete(x)


def _float_option(name: str, value: Any, lo: float, hi: float, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a float, got {value!r}; {fix}"
        raise TypeError(msg)
    if not (lo <= value <= hi) or math.isnan(value):
        msg = f"{name} must be in [{lo}, {hi}], got {value}; {fix}"
        raise ValueError(msg)
    return float(value)


def _block(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be a positive int, got {value!r}; pass e.g. {name}={default}"
        raise ValueError(msg)
    return value


def _compute_dtype(xp: Namespace, a: Array, name: str) -> Any:
    if a.dtype in (xp.float32, xp.float64):
        return a.dtype
    if xp.isdtype(a.dtype, "real floating"):  # float16, bfloat16: accumulate in float32
        return xp.float32
    msg = (
        f"{name} must be a real floating array, got dtype {a.dtype}; "
        f"cast it with {name}.astype(float32) (or .float() in PyTorch)"
    )
    raise TypeError(msg)


def _check(
    h: Array,
    weight: Array,
    target: Array,
    /,
    *,
    bias: Array | None = None,
    class_weight: Array | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    block_rows: int | None = None,
    block_vocab: int | None = None,
) -> _Head:
    """Every argument check of the two public functions, in one place (their defaults here)."""
    xp = array_namespace(h, weight, target, bias, class_weight)
    if reduction not in ("mean", "sum", "none"):
        msg = f"reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        raise ValueError(msg)
    eps = _float_option("label_smoothing", label_smoothing, 0.0, 1.0, "use 0 for none")
    zl = _float_option("z_loss", z_loss, 0.0, math.inf, "use 0 for none (PaLM used 1e-4)")
    cap = None
    if softcap is not None:
        cap = _float_option("softcap", softcap, 0.0, math.inf, "use None for no cap (Gemma 2: 30)")
        if cap == 0.0 or math.isinf(cap):
            msg = f"softcap must be positive and finite, got {softcap}; use None for no cap"
            raise ValueError(msg)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        msg = f"ignore_index must be an int, got {ignore_index!r}; the default is -100"
        raise TypeError(msg)
    if h.ndim < 1 or weight.ndim != 2 or h.shape[-1] != weight.shape[1]:
        msg = (
            f"h must have shape (..., D) and weight (K, D) with the same D, got h "
            f"{tuple(h.shape)} and weight {tuple(weight.shape)}; weight is nn.Linear's "
            f"(out_features, in_features) layout"
        )
        raise ValueError(msg)
    k, d = weight.shape
    if xp.isdtype(target.dtype, "real floating"):
        msg = (
            "target holds floats, but linear_cross_entropy takes integer class indices: "
            "probability targets are an N × K array, the very thing this function avoids; "
            "compute the logits and use softgrad.cross_entropy for them"
        )
        raise TypeError(msg)
    if target.dtype == xp.bool or not xp.isdtype(target.dtype, "integral"):
        msg = f"target must hold integer class indices, got dtype {target.dtype}"
        raise TypeError(msg)
    lead = tuple(h.shape[:-1])
    if tuple(target.shape) != lead:
        msg = f"target must have h's shape without the feature axis, {lead}, got {tuple(target.shape)}"
        raise ValueError(msg)
    for name, vec in (("bias", bias), ("class_weight", class_weight)):
        if vec is not None and tuple(vec.shape) != (k,):
            msg = f"{name} must have shape ({k},), one entry per class, got {tuple(vec.shape)}"
            raise ValueError(msg)
    dt = _compute_dtype(xp, h, "h")
    if _compute_dtype(xp, weight, "weight") != dt or (
        bias is not None and _compute_dtype(xp, bias, "bias") != dt
    ):
        msg = (
            f"h, weight and bias must share a precision, got {h.dtype}, {weight.dtype}"
            f"{'' if bias is None else ', ' + str(bias.dtype)}; cast them to one dtype"
        )
        raise TypeError(msg)
    dtypes = (h.dtype, weight.dtype, None if bias is None else bias.dtype)
    n = math.prod(lead)
    h2 = xp.reshape(h, (n, d))
    h2, w2 = (a if a.dtype == dt else xp.astype(a, dt) for a in (h2, weight))
    b2 = None if bias is None or bias.dtype == dt else xp.astype(bias, dt)
    b2 = bias if b2 is None and bias is not None else b2
    y = xp.reshape(target, (n,))
    counted = y != ignore_index
    if _inspectable(y) and n:
        bad = xp.logical_and(counted, xp.logical_or(y < 0, y >= k))
        if bool(xp.any(bad)):
            lo = int(xp.min(xp.where(bad, y, xp.zeros_like(y))))
            value = lo if lo < 0 else int(xp.max(xp.where(bad, y, xp.zeros_like(y))))
            msg = (
                f"target holds class index {value}, outside [0, {k}) for {k} classes; "
                f"every label must be in [0, {k}) or equal ignore_index={ignore_index}"
            )
            raise ValueError(msg)
    y = xp.where(counted, y, xp.zeros_like(y))
    cw = None
    sum_w: float | Array = float(k)
    wy = xp.astype(counted, dt)
    if class_weight is not None:
        cw = xp.astype(class_weight, dt)
        if _inspectable(cw) and (
            not bool(xp.all(xp.isfinite(cw))) or bool(xp.any(cw < constant(xp, 0.0, cw)))
        ):
            msg = "class_weight must be finite and non-negative; got NaN, inf or a negative weight"
            raise ValueError(msg)
        sum_w = xp.sum(cw)
        wy = wy * xp.take(cw, y, axis=0)
    blocks = (
        _block("block_rows", block_rows, BLOCK_ROWS),
        _block("block_vocab", block_vocab, BLOCK_VOCAB),
    )
    # the fused order's chunk of rows x the whole vocabulary: as many logits as
    # one block when the blocks are given, else FUSED_LOGITS
    budget = FUSED_LOGITS if block_rows is None and block_vocab is None else math.prod(blocks)
    fused_rows = max(1, min(blocks[0], budget // max(k, 1)))
    return _Head(
        xp, h2, w2, b2, y, counted, wy, cw, sum_w, eps, zl, cap, reduction, blocks,
        fused_rows, lead, dtypes,
    )  # fmt: skip


# ---------------------------------------------------------------- dispatch ---


def _family(x: Array) -> str:
    module = type(x).__module__
    if module.startswith("torch"):
        return "torch"
    if module.startswith(("jax", "jaxlib")):
        return "jax"
    if module.startswith("dask"):
        return "dask"
    if isinstance(x, np.ndarray):
        return "numpy"
    return "other"


def _numpy_kernel(hd: _Head) -> Any:
    from softgrad import kernels

    if hd.h.dtype not in (np.float32, np.float64) or not kernels.enabled():
        return None
    from softgrad.kernels import _linear as k

    return k


def _options(hd: _Head) -> _ref.LseOptions:
    return _ref.LseOptions(
        softcap=hd.softcap,
        class_weight=hd.class_weight,
        smoothing=hd.eps > 0,
        block_rows=hd.blocks[0],
        block_vocab=hd.blocks[1],
    )


def _primitive(hd: _Head, *, differentiable: bool) -> tuple[Array, Array, Array]:
    """``(lse, z_y, Σ w z)`` per row, from the implementation for ``h``'s library."""
    family, operands = _family(hd.h), hd.operands()
    if family == "torch":
        from softgrad.torch import _linear as bridge

        fn = bridge.linear_lse if differentiable else bridge.linear_lse_raw
        return fn(operands, **_options(hd))
    if family == "jax":
        from softgrad.jax import _linear as jbridge

        return jbridge.linear_lse(operands, **_options(hd))
    kernel = _numpy_kernel(hd) if family == "numpy" else None
    if kernel is not None:
        return kernel.linear_lse(operands, **_options(hd))  # type: ignore[no-any-return]
    return _ref.linear_lse(hd.xp, operands, **_options(hd))


def _backward(
    hd: _Head, lse: Array, coef: tuple[Array, Array, Array]
) -> tuple[Array, Array, Array | None]:
    family, operands = _family(hd.h), hd.operands()
    options = _ref.backward_options(_options(hd))
    if family == "torch":
        from softgrad.torch import _linear as bridge

        return bridge.linear_lse_backward(operands, lse, coef, **options)
    if family == "jax":
        from softgrad.jax import _linear as jbridge

        return jbridge.linear_lse_backward(operands, lse, coef, **options)
    kernel = _numpy_kernel(hd) if family == "numpy" else None
    if kernel is not None:
        return kernel.linear_backward(operands, lse, coef, **options)  # type: ignore[no-any-return]
    return _ref.linear_backward(hd.xp, operands, lse, coef, **options)


# ------------------------------------------------------------ the loss math ---


def _per_token(hd: _Head, lse: Array, zy: Array, wz: Array) -> tuple[Array, Array]:
    r"""Per-row cross-entropy :math:`a\,\mathrm{lse} - (1-\varepsilon) w_y z_y - \tfrac{\varepsilon}{K}\sum w z` and z-loss."""
    xp, eps, k = hd.xp, hd.eps, hd.weight.shape[0]
    zero = constant(xp, 0.0, lse)
    a = (1.0 - eps) * hd.wy + (eps / k) * hd.sum_w * xp.astype(hd.counted, lse.dtype)
    ce = a * lse - (1.0 - eps) * hd.wy * zy
    if eps:
        ce = ce - (eps / k) * wz
    ce = xp.where(hd.counted, ce, zero)
    zl = xp.where(hd.counted, hd.z_loss * lse**2, zero) if hd.z_loss else zero
    return ce, zl


def _denominators(hd: _Head) -> tuple[Array, Array]:
    """The mean's denominators: summed target weights (cross-entropy), counted rows (z-loss)."""
    xp = hd.xp
    return xp.sum(hd.wy), xp.sum(xp.astype(hd.counted, hd.wy.dtype))


def _safe(xp: Namespace, d: Array) -> tuple[Array, Array]:
    nothing = d == constant(xp, 0.0, d)
    return nothing, xp.where(nothing, constant(xp, 1.0, d), d)


def _reduce(hd: _Head, ce: Array, zl: Array) -> Array:
    xp = hd.xp
    if hd.reduction == "none":
        return xp.reshape(ce + zl, hd.lead)
    if hd.reduction == "sum":
        return xp.sum(ce + zl)
    d_ce, d_z = _denominators(hd)
    nothing, safe_ce = _safe(xp, d_ce)
    total = xp.sum(ce) / safe_ce
    if hd.z_loss:
        total = total + xp.sum(zl) / _safe(xp, d_z)[1]
    # a mean over no token is 0/0: NaN, as in PyTorch (and a zero gradient)
    return xp.where(nothing, constant(xp, math.nan, total), total)


def _coefficients(
    hd: _Head, lse: Array, grad_output: Array | None, rows: slice = slice(None)
) -> tuple[Array, Array, Array]:
    r"""The primitive's upstream gradients :math:`(\alpha, \beta, \gamma)` for the reduced loss.

    ``lse`` holds the rows ``rows`` (all by default) and so do the results.
    """
    xp, eps, k = hd.xp, hd.eps, hd.weight.shape[0]
    counted, wy = hd.counted[rows], hd.wy[rows]
    c = xp.astype(counted, lse.dtype)
    g = constant(xp, 1.0, lse) if grad_output is None else grad_output
    if grad_output is not None and grad_output.ndim:
        g = grad_output[rows]
    if hd.reduction == "none" or hd.reduction == "sum":
        g_ce = g_z = c * g
    else:
        d_ce, d_z = _denominators(hd)
        nothing, safe_ce = _safe(xp, d_ce)
        scale = xp.where(nothing, constant(xp, 0.0, lse), g / safe_ce)
        g_ce = c * scale
        g_z = c * xp.where(nothing, constant(xp, 0.0, lse), g / _safe(xp, d_z)[1])
    a = (1.0 - eps) * wy + (eps / k) * hd.sum_w * c
    alpha = g_ce * a
    if hd.z_loss:
        alpha = alpha + xp.where(counted, 2.0 * hd.z_loss * g_z * lse, constant(xp, 0.0, lse))
    return alpha, g_ce * (1.0 - eps) * wy, g_ce * (eps / k)


def _check_grad_output(hd: _Head, grad_output: Array | None) -> Array | None:
    if grad_output is None:
        return None
    xp = hd.xp
    want = hd.lead if hd.reduction == "none" else ()
    if tuple(grad_output.shape) != want:
        kind = "one value per token" if want else "a scalar"
        msg = (
            f"grad_output must have shape {want} ({kind}) for reduction={hd.reduction!r}, "
            f"got {tuple(grad_output.shape)}"
        )
        raise ValueError(msg)
    go = xp.astype(grad_output, hd.h.dtype)
    return xp.reshape(go, (-1,)) if want else go


# ------------------------------------------------------------ entry points ---


def loss(
    h: Array, weight: Array, target: Array, /, **options: Unpack[LinearCrossEntropyOptions]
) -> Array:
    """:func:`softgrad.linear_cross_entropy` for everything but Dask arrays."""
    hd = _check(h, weight, target, **options)
    lse, zy, wz = _primitive(hd, differentiable=True)
    loss = _reduce(hd, *_per_token(hd, lse, zy, wz))
    return hd.xp.astype(loss, hd.dtypes[0])


def loss_and_grad(
    h: Array,
    weight: Array,
    target: Array,
    /,
    *,
    grad_output: Array | None = None,
    **options: Unpack[LinearCrossEntropyOptions],
) -> LinearCrossEntropyGrad:
    """:func:`softgrad.linear_cross_entropy_and_grad` for everything but Dask arrays."""
    hd = _check(h, weight, target, **options)
    go = _check_grad_output(hd, grad_output)
    kernel = _numpy_kernel(hd) if FUSED_ORDER and _family(hd.h) == "numpy" else None
    if kernel is not None:
        lse, zy, wz, dh, dw, db = kernel.linear_fused(
            hd.operands(),
            lambda r0, r1, lse: _coefficients(hd, lse, go, slice(r0, r1)),
            chunk_rows=hd.fused_rows,
            **_options(hd),
        )
    else:
        lse, zy, wz = _primitive(hd, differentiable=False)
        dh, dw, db = _backward(hd, lse, _coefficients(hd, lse, go))
    loss = _reduce(hd, *_per_token(hd, lse, zy, wz))
    xp = hd.xp
    dh = xp.reshape(dh, (*hd.lead, hd.h.shape[1]))
    return LinearCrossEntropyGrad(
        # copy=False: no second dW when the dtype is already right
        xp.astype(loss, hd.dtypes[0], copy=False),
        xp.astype(dh, hd.dtypes[0], copy=False),
        xp.astype(dw, hd.dtypes[1], copy=False),
        None if db is None else xp.astype(db, hd.dtypes[2], copy=False),
    )
