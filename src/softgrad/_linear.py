r"""Linear layer + softmax + cross-entropy for huge vocabularies, logits never materialised.

A language-model head computes :math:`z = hW^\top + b` (N tokens × K classes,
K the vocabulary: 32 000 to 256 000) and the cross-entropy of ``softmax(z)``;
the N × K logits and their gradient dominate its memory. Here they are
computed one block of rows × one block of classes at a time, twice: a forward
pass for each row's logsumexp (the online max/sum rescaling), and a gradient
pass that recomputes each block, forms :math:`G = \partial L/\partial z` on
it and accumulates :math:`\partial h \mathrel{+}= G W`,
:math:`\partial W \mathrel{+}= G^\top h`.

Design
------
Everything a loss option changes is a function of three numbers per row,
computed by one primitive, ``linear_lse``:

.. math::

    \mathrm{lse}_i = \log\textstyle\sum_c e^{z_{ic}}, \qquad
    z_{i y_i}, \qquad \textstyle\sum_c w_c z_{ic},

whose vector–Jacobian product is one blocked pass,
:math:`\partial L/\partial z_{ic} = \alpha_i S_{ic} - \beta_i [c = y_i] - \gamma_i w_c`
with :math:`(\alpha, -\beta, -\gamma)` the upstream gradients of the three.
Cross-entropy with class weights, label smoothing, the z-loss and every
reduction are then ordinary array arithmetic on those N-vectors, so PyTorch's
and JAX's autodiff handle ``reduction="none"`` with any per-token upstream
gradient (the bug of Liger-Kernel #968 cannot happen: the blocked pass runs in
the backward, after the upstream gradient is known — CCE's order).

Two orders
----------
*Two-pass* (Cut Cross-Entropy's): a forward pass for the three numbers, then
a gradient pass that recomputes every block: four block products
(:math:`hW^\top` twice, :math:`GW`, :math:`G^\top h`), one
``block_rows × block_vocab`` block alive. The autodiff paths (torch, JAX)
must use it: their upstream gradient arrives after the forward pass.
*Fused* (Liger-Kernel's): each chunk of rows' logits over the whole
vocabulary is formed once, reduced to its logsumexp and overwritten with
:math:`G` at once: three products, ``chunk × K`` logits alive (as many as one
block when the blocks are given, ``FUSED_LOGITS`` otherwise). NumPy's
:func:`linear_cross_entropy_and_grad` knows its upstream gradient before the
pass (``grad_output``), so it runs the fused order (``FUSED_ORDER``);
``softgrad bench linear`` times both (``softgrad`` and ``softgrad-recompute``).

The primitive runs on NumPy through a numba/BLAS kernel
(``softgrad.kernels._linear``), on PyTorch tensors through a custom operation
(``softgrad.torch``: the NumPy kernel on the memory of CPU tensors, the same
blocking in torch operations on other devices), on JAX arrays through a
``custom_vjp`` with ``lax.scan`` blocks (``softgrad.jax``), and on any other
Array API namespace through the reference (``softgrad._agnostic._linear``).
The row blocks are independent: Dask arrays go to ``softgrad.dask``, which
runs this NumPy function on each block of rows and sums the blocks' :math:`\partial W`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np

from softgrad._agnostic import _linear as _ref
from softgrad._lib._array import Array, Namespace, array_namespace, constant, is_concrete

__all__ = [
    "LinearCrossEntropyGrad",
    "LinearCrossEntropyOptions",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
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


def _primitive(hd: _Head, *, differentiable: bool) -> tuple[Array, Array, Array]:
    """``(lse, z_y, Σ w z)`` per row, from the implementation for ``h``'s library."""
    kw: dict[str, Any] = {
        "softcap": hd.softcap,
        "class_weight": hd.class_weight,
        "smoothing": hd.eps > 0,
        "block_rows": hd.blocks[0],
        "block_vocab": hd.blocks[1],
    }
    family = _family(hd.h)
    if family == "torch":
        from softgrad.torch import _linear as bridge

        fn = bridge.linear_lse if differentiable else bridge.linear_lse_raw
        return fn(hd.h, hd.weight, hd.bias, hd.y, **kw)
    if family == "jax":
        from softgrad.jax import _linear as jbridge

        return jbridge.linear_lse(hd.h, hd.weight, hd.bias, hd.y, **kw)
    kernel = _numpy_kernel(hd) if family == "numpy" else None
    if kernel is not None:
        return kernel.linear_lse(hd.h, hd.weight, hd.bias, np.asarray(hd.y), **kw)  # type: ignore[no-any-return]
    return _ref.linear_lse(hd.xp, hd.h, hd.weight, hd.bias, hd.y, **kw)


def _backward(
    hd: _Head, lse: Array, coef: tuple[Array, Array, Array]
) -> tuple[Array, Array, Array | None]:
    kw: dict[str, Any] = {
        "softcap": hd.softcap,
        "class_weight": hd.class_weight,
        "block_rows": hd.blocks[0],
        "block_vocab": hd.blocks[1],
    }
    family = _family(hd.h)
    if family == "torch":
        from softgrad.torch import _linear as bridge

        return bridge.linear_lse_backward(hd.h, hd.weight, hd.bias, hd.y, lse, coef, **kw)
    if family == "jax":
        from softgrad.jax import _linear as jbridge

        return jbridge.linear_lse_backward(hd.h, hd.weight, hd.bias, hd.y, lse, coef, **kw)
    kernel = _numpy_kernel(hd) if family == "numpy" else None
    if kernel is not None:
        return kernel.linear_backward(hd.h, hd.weight, hd.bias, np.asarray(hd.y), lse, coef, **kw)  # type: ignore[no-any-return]
    return _ref.linear_backward(hd.xp, hd.h, hd.weight, hd.bias, hd.y, lse, coef, **kw)


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


# ------------------------------------------------------------ public names ---


def linear_cross_entropy(
    h: Array, weight: Array, target: Array, /, **options: Unpack[LinearCrossEntropyOptions]
) -> Array:
    r"""Cross-entropy of ``softmax(h @ weight.T + bias)``, without building the logits.

    Parameters
    ----------
    h : array, shape (..., D)
        Hidden states (one row per token).
    weight : array, shape (K, D)
        The head's weight in ``nn.Linear`` layout (K classes, the vocabulary).
    target : integer array, shape (...)
        Class indices in ``[0, K)``, or ``ignore_index``.
    bias : array, shape (K,), optional
    class_weight : array, shape (K,), optional
        Non-negative, finite class weights (PyTorch's ``weight=``).
    ignore_index : int, default -100
        Tokens with this target add nothing and do not count in the mean.
    label_smoothing : float in [0, 1], default 0
    z_loss : float >= 0, default 0
        Adds :math:`\lambda\,\mathrm{lse}^2` per counted token (PaLM's
        auxiliary loss); its mean is over the counted tokens.
    softcap : float > 0, optional
        Caps the logits to :math:`c \tanh(z / c)` first (Gemma 2).
    reduction : {"mean", "sum", "none"}, default "mean"
        As ``torch.nn.functional.cross_entropy``; ``"none"`` returns one value
        per token, with ``h``'s leading shape.
    block_rows, block_vocab : int, optional
        The block of logits alive at a time (defaults 1024 × 2048).

    Returns
    -------
    array
        The loss in ``h``'s dtype (float16/bfloat16 inputs are computed in
        float32). PyTorch tensors and JAX arrays are differentiable: the
        gradient pass runs in their backward.

    Notes
    -----
    With :math:`z = \operatorname{cap}(hW^\top + b)` (never stored whole),
    :math:`a = (1-\varepsilon)w_y + \tfrac{\varepsilon}{K}\sum_c w_c`:

    .. math::

        \ell_i = a\,\mathrm{lse}_i - (1-\varepsilon)\,w_{y_i} z_{iy_i}
                 - \tfrac{\varepsilon}{K}\textstyle\sum_c w_c z_{ic}
                 + \lambda\,\mathrm{lse}_i^2,

    which equals ``F.cross_entropy(z, y, weight=w, label_smoothing=ε,
    reduction="none") + λ·logsumexp(z)²`` token by token. ``"mean"`` divides
    the cross-entropy by :math:`\sum_i w_{y_i}` over counted tokens and the
    z-loss by their number (the two agree without class weights); a mean over
    no token is NaN, as in PyTorch. The logsumexp accumulates block by block
    with the online rescaling of Milakov & Gimelshein (2018), stable as in
    Blanchard, Higham & Higham (2021).

    References
    ----------
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models",
    ICLR 2025, arXiv:2411.09009. Milakov & Gimelshein, "Online normalizer
    calculation for softmax", arXiv:1805.02867. Blanchard, Higham & Higham,
    doi:10.1093/imanum/draa038.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import linear_cross_entropy
    >>> h = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> weight = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> loss = linear_cross_entropy(h, weight, np.array([0, 1]))
    >>> bool(np.isclose(loss, np.log(np.e + 2) - 1))  # both rows: logits (1, 0, 0)
    True
    """
    if _family(h) == "dask":
        from softgrad.dask import _linear as dlinear

        return dlinear.linear_cross_entropy(h, weight, target, **options)
    hd = _check(h, weight, target, **options)
    lse, zy, wz = _primitive(hd, differentiable=True)
    loss = _reduce(hd, *_per_token(hd, lse, zy, wz))
    return hd.xp.astype(loss, hd.dtypes[0])


def linear_cross_entropy_and_grad(
    h: Array,
    weight: Array,
    target: Array,
    /,
    *,
    grad_output: Array | None = None,
    **options: Unpack[LinearCrossEntropyOptions],
) -> LinearCrossEntropyGrad:
    r""":func:`linear_cross_entropy` and its gradients for ``h``, ``weight`` and ``bias``.

    Parameters
    ----------
    h, weight, target, bias, class_weight, ignore_index, label_smoothing, z_loss, softcap, reduction, block_rows, block_vocab
        As in :func:`linear_cross_entropy`.
    grad_output : array, optional
        The upstream gradient: a scalar for ``"mean"``/``"sum"``, one value per
        token (the shape of ``target``) for ``"none"``. Default: ones, i.e. the
        gradient of the loss itself (for ``"none"``, of the per-token losses' sum).

    Returns
    -------
    LinearCrossEntropyGrad
        ``(loss, grad_h, grad_weight, grad_bias)``, each gradient in its
        argument's shape and dtype; ``grad_bias`` is None without a bias.

    Notes
    -----
    One blocked pass after the forward one: on each block
    :math:`G = (\alpha\,S - \beta\,e_y - \gamma\,w)\odot(1 - (z/c)^2)` with
    :math:`\alpha = g_{ce}\,a + 2\lambda g_z\,\mathrm{lse}`,
    :math:`\beta = g_{ce}(1-\varepsilon)w_y`, :math:`\gamma = g_{ce}\varepsilon/K`
    (:math:`g` the per-token upstream gradient, divided by the mean's
    denominator), then :math:`\partial h = G W`, :math:`\partial W = G^\top h`,
    :math:`\partial b = \sum_i G_i`.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import linear_cross_entropy_and_grad
    >>> h = np.array([[0.0, 0.0]])
    >>> weight = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> loss, gh, gw, gb = linear_cross_entropy_and_grad(h, weight, np.array([0]), bias=np.zeros(2))
    >>> float(loss), gb  # logits (0, 0): S - y = (0.5, 0.5) - (1, 0)
    (0.6931..., array([-0.5,  0.5]))
    """
    if _family(h) == "dask":
        from softgrad.dask import _linear as dlinear

        return dlinear.linear_cross_entropy_and_grad(
            h, weight, target, grad_output=grad_output, **options
        )
    hd = _check(h, weight, target, **options)
    go = _check_grad_output(hd, grad_output)
    kernel = _numpy_kernel(hd) if FUSED_ORDER and _family(hd.h) == "numpy" else None
    if kernel is not None:
        lse, zy, wz, dh, dw, db = kernel.linear_fused(
            hd.h, hd.weight, hd.bias, np.asarray(hd.y),
            lambda r0, r1, lse: _coefficients(hd, lse, go, slice(r0, r1)),
            softcap=hd.softcap, class_weight=hd.class_weight, smoothing=hd.eps > 0,
            chunk_rows=hd.fused_rows, block_vocab=hd.blocks[1],
        )  # fmt: skip
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
