r"""The public functions of :mod:`softgrad.torch`: argument checks, dtype policy, one op each.

Each function checks its arguments once (the messages of the NumPy version),
applies the dtype policy (float16/bfloat16 computed in float32 and cast back,
integers and booleans promoted to the default float), and calls one operator
of :mod:`softgrad.torch._ops`. Inside a ``torch.func`` transform
(``jacrev``, ``vmap``, forward-mode ``jvp``) the custom operators, which
carry a reverse-mode rule only, give way to the Array API reference, which
PyTorch differentiates in every mode; the values are the same.
"""

from __future__ import annotations

from typing import Any, Unpack

import torch
from torch import Tensor

from softgrad import kernels
from softgrad._agnostic import _losses, _softmax
from softgrad._agnostic._losses import CrossEntropyOptions
from softgrad._lib._array import normalize_axis
from softgrad.torch import _eager, _ops

__all__ = ["cross_entropy", "cross_entropy_and_grad", "log_softmax", "logsumexp", "softmax"]

_FLOATS = (torch.float32, torch.float64)


def _compute(x: Any, name: str = "x") -> tuple[Tensor, torch.dtype]:
    """``x`` in its compute dtype, and the dtype the result is given in."""
    if not isinstance(x, torch.Tensor):
        msg = f"{name} must be a torch.Tensor, got {type(x).__name__}; use torch.as_tensor({name})"
        raise TypeError(msg)
    dtype = x.dtype
    if dtype in _FLOATS:
        return x, dtype
    if dtype in (torch.float16, torch.bfloat16):  # accumulate in float32, answer in kind
        return x.to(torch.float32), dtype
    if dtype.is_complex:
        msg = (
            f"{name} has complex dtype {dtype}; softmax is defined for real inputs only. "
            f"Pass the real part ({name}.real) or the modulus if that is what you mean"
        )
        raise TypeError(msg)
    if dtype.is_floating_point:
        msg = f"{name} has unsupported dtype {dtype}; use float32 or float64"
        raise TypeError(msg)
    default = torch.get_default_dtype()
    return x.to(default), default


def _mask(where: Any, x: Tensor) -> Tensor | None:
    """A boolean mask tensor broadcast to ``x.shape`` (``None`` stays ``None``)."""
    if where is None:
        return None
    if not isinstance(where, torch.Tensor):
        where = torch.as_tensor(where, device=x.device)
    if where.dtype != torch.bool:
        msg = f"where must be a boolean array, got dtype {where.dtype}; pass (mask != 0) instead"
        raise TypeError(msg)
    if where.shape != x.shape:
        try:
            where = where.broadcast_to(x.shape)
        except RuntimeError as exc:
            msg = (
                f"where has shape {tuple(where.shape)}, which does not broadcast to "
                f"{tuple(x.shape)}"
            )
            raise ValueError(msg) from exc
    mask: Tensor = where
    return mask


def _transformed(x: Tensor) -> bool:
    """True inside a ``torch.func`` transform, where the reference path serves."""
    if torch.compiler.is_compiling():
        return False
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))


def _along_axis(
    reference: Any, op: Any, x: Tensor, axis: int, where: Any, keepdims: bool | None = None
) -> Tensor:
    """``op`` (the custom operator) on ``x`` in its compute dtype, the Array API
    ``reference`` on an empty axis or inside a ``torch.func`` transform; the result
    in ``x``'s dtype. ``keepdims`` is given for reductions (the op keeps the axis)."""
    z, out_dtype = _compute(x)
    ax = normalize_axis(axis, z.ndim)
    mask = _mask(where, z)
    reduction = {} if keepdims is None else {"keepdims": True}
    if z.shape[ax] == 0 or _transformed(z):
        out: Tensor = reference(z, ax, where=mask, **reduction)
    else:
        out = op(z, ax, mask)
    if keepdims is False:
        out = out.squeeze(ax)
    return out.to(out_dtype)


def softmax(x: Tensor, /, axis: int = -1, *, where: Tensor | None = None) -> Tensor:
    r"""Softmax along ``axis`` as one PyTorch operation with the closed-form backward.

    Parameters
    ----------
    x : Tensor, shape (..., n, ...)
        Logits, on any device. float16/bfloat16 are computed in float32 and
        returned in their dtype; integers and booleans give the default float.
    axis : int, default -1
        The axis the probabilities are spread over.
    where : bool Tensor broadcastable to ``x.shape``, optional
        Entries to include; excluded entries get probability 0 and gradient 0.

    Returns
    -------
    Tensor, same shape as ``x``
        :math:`S(x)`, with the edge cases of :func:`softgrad.softmax`: all 0 on
        a row with no entry left, uniform over the +inf entries of a row, NaN
        on a row holding NaN.

    Notes
    -----
    The backward saves :math:`S` only and applies

    .. math::

        \frac{\partial L}{\partial x} = S \odot \Bigl(g - \langle g, S\rangle\Bigr),
        \qquad g = \frac{\partial L}{\partial S},

    the Jacobian :math:`\operatorname{diag}(S) - S S^\top` applied without
    forming it; its own backward is closed-form too, so Hessian-vector
    products work. On CPU float32/float64 tensors the forward and backward
    run softgrad's numba kernels on the tensor's memory.

    Examples
    --------
    >>> import torch
    >>> import softgrad.torch as sgt
    >>> x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> s = sgt.softmax(x)
    >>> s
    tensor([0.0900, 0.2447, 0.6652], grad_fn=<...>)
    >>> s[2].backward()
    >>> x.grad  # S_3 (δ_3j − S_j)
    tensor([-0.0599, -0.1628,  0.2227])
    """
    return _along_axis(_softmax.softmax, _softmax_op, x, axis, where)


def log_softmax(x: Tensor, /, axis: int = -1, *, where: Tensor | None = None) -> Tensor:
    r"""Log-softmax along ``axis`` as one PyTorch operation with the closed-form backward.

    Parameters
    ----------
    x : Tensor, shape (..., n, ...)
        Logits (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to normalise over.
    where : bool Tensor broadcastable to ``x.shape``, optional
        Entries to include; excluded entries give −inf and gradient 0.

    Returns
    -------
    Tensor, same shape as ``x``
        :math:`\log S(x)`, accurate when the other probabilities underflow (the
        log1p form of :func:`softgrad.log_softmax`).

    Notes
    -----
    The backward saves :math:`\log S` only:

    .. math::

        \frac{\partial L}{\partial x} = g - S \sum_j g_j, \qquad S = e^{\log S},

    and 0 at excluded and −inf entries (PyTorch's own ``log_softmax`` passes
    :math:`g` through there).

    Examples
    --------
    >>> import torch
    >>> import softgrad.torch as sgt
    >>> x = torch.tensor([0.0, 0.0, float("-inf")], requires_grad=True)
    >>> y = sgt.log_softmax(x)
    >>> y.detach()
    tensor([-0.6931, -0.6931,    -inf])
    >>> y[0].backward()
    >>> x.grad  # δ_1j − S_j, and 0 at the −inf entry
    tensor([ 0.5000, -0.5000,  0.0000])
    """
    return _along_axis(_softmax.log_softmax, _log_softmax_op, x, axis, where)


def _log_softmax_op(z: Tensor, axis: int, mask: Tensor | None) -> Tensor:
    r"""The log_softmax operator: with :math:`S` kept for an ``exp``-free backward when
    ``z`` needs a gradient and the kernel holds whole rows in cache (where :math:`S`
    comes from the exponentials of the sum), without it (one write less) otherwise.

    Long rows keep :math:`\log S` only: their kernel can keep :math:`S` without a second
    ``exp``, but the extra write of :math:`S` costs what the backward's ``exp`` saves
    (8 x 1 000 000 float32, forward + backward: 19.7-20.3 ms with S, 19.8-20.1 ms
    without, in the same loop; quiet, 2 threads, AMD EPYC AVX2), and without it one
    row-sized buffer less is held until the backward."""
    on_cpu = _eager.eager(z)
    whole_rows = z.shape[axis] <= kernels.current_policy().chunk and _ops.use_kernels(z)
    if whole_rows and torch.is_grad_enabled() and z.requires_grad:
        op: Any = _eager.SoftgradLogSoftmaxAndS.apply if on_cpu else _ops.log_softmax_and_s
        log_s: Tensor = op(z, axis, mask)[0]
        return log_s
    op = _eager.SoftgradLogSoftmax.apply if on_cpu else _ops.log_softmax
    out: Tensor = op(z, axis, mask)
    return out


def _softmax_op(z: Tensor, axis: int, mask: Tensor | None) -> Tensor:
    """The softmax operator, or its plain autograd.Function on CPU kernel tensors in eager mode."""
    op: Any = _eager.SoftgradSoftmax.apply if _eager.eager(z) else _ops.softmax
    out: Tensor = op(z, axis, mask)
    return out


def logsumexp(
    x: Tensor, /, axis: int = -1, *, where: Tensor | None = None, keepdims: bool = False
) -> Tensor:
    r"""Log-sum-exp along ``axis`` as one PyTorch operation; its gradient is the softmax.

    Parameters
    ----------
    x : Tensor, shape (..., n, ...)
        Input (dtype policy as in :func:`softmax`).
    axis : int, default -1
        The axis to reduce.
    where : bool Tensor broadcastable to ``x.shape``, optional
        Entries to include in the sum.
    keepdims : bool, default False
        Keep the reduced axis with length 1.

    Returns
    -------
    Tensor
        −inf for an empty or fully excluded row, +inf for a row holding +inf,
        NaN for a row holding NaN.

    Notes
    -----
    .. math::

        \frac{\partial}{\partial x_j} \log\sum_k e^{x_k} = S_j(x),

    computed in the backward by the softmax operation (so second derivatives
    are its closed-form backward).

    Examples
    --------
    >>> import torch
    >>> import softgrad.torch as sgt
    >>> x = torch.tensor([1000.0, 1000.0], dtype=torch.float64, requires_grad=True)
    >>> sgt.logsumexp(x).backward()
    >>> x.grad
    tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    return _along_axis(_softmax.logsumexp, _ops.logsumexp, x, axis, where, keepdims=keepdims)


def _options(ignore_index: Any, label_smoothing: Any, reduction: Any) -> None:
    _losses._check_options(label_smoothing, reduction, ignore_index)


def _as_float(a: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Probability targets and weights in the logits' compute dtype when NumPy lacks theirs."""
    if a is None or not a.is_floating_point() or a.dtype in _FLOATS:
        return a
    return a.to(dtype)


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    /,
    axis: int = -1,
    *,
    weight: Tensor | None = None,
    ignore_index: int | None = _losses.DEFAULT_IGNORE_INDEX,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Cross-entropy as one PyTorch operation whose gradient comes from the forward pass.

    Parameters
    ----------
    logits : Tensor, shape (..., C, ...)
        Unnormalised scores; ``axis`` is the class axis (PyTorch's
        ``F.cross_entropy`` uses 1, softgrad the last by default).
    target : Tensor
        Integer class indices with the logits' shape without the class axis,
        or class probabilities with the logits' shape.
    axis : int, default -1
        The class axis.
    weight : Tensor, shape (C,), optional
        Non-negative, finite class weights (constants: no gradient).
    ignore_index : int, optional
        Index targets equal to it add nothing and do not count in the mean.
    label_smoothing : float in [0, 1], default 0
        Mix the target with the uniform distribution.
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`softgrad.cross_entropy` and ``F.cross_entropy``.

    Returns
    -------
    Tensor
        0-d for ``"mean"``/``"sum"``, one loss per sample for ``"none"``.

    Notes
    -----
    The forward pass computes the loss and its gradient
    :math:`\partial \ell / \partial z = a S - B` (the effective target
    :math:`B` of :mod:`softgrad._agnostic._losses`, :math:`a = \sum_c B_c`)
    together, one pass over the logits on CPU (the numba kernel), as
    PyTorch's fused loss does; the backward only scales it. Second
    derivatives use :func:`softgrad.cross_entropy_hvp`:
    :math:`H v = a\,S \odot (v - \langle S, v\rangle)`. A probability target
    (or weight) that requires grad is differentiated through the reference
    implementation instead.

    Examples
    --------
    >>> import torch
    >>> import softgrad.torch as sgt
    >>> z = torch.log(torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64)).requires_grad_()
    >>> loss = sgt.cross_entropy(z, torch.tensor([0]))
    >>> loss.backward()
    >>> z.grad  # S - y
    tensor([[-0.5000,  0.2500,  0.2500]], dtype=torch.float64)
    """
    z, target, ax, weight, out_dtype = _loss_arguments(
        logits, target, axis, weight, ignore_index, label_smoothing, reduction
    )
    differentiable_extra = target.requires_grad or (weight is not None and weight.requires_grad)
    if differentiable_extra or _transformed(z):
        out: Tensor = _losses.cross_entropy(
            z,
            target,
            ax,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,  # type: ignore[arg-type]
        )
    else:
        smoothing = float(label_smoothing)
        op: Any = _eager.SoftgradCrossEntropy.apply if _eager.eager(z) else _ops.cross_entropy
        out, _ = op(z, target, ax, weight, ignore_index, smoothing, reduction)
    return out.to(out_dtype)


def _loss_arguments(
    logits: Tensor,
    target: Tensor,
    axis: int,
    weight: Tensor | None,
    ignore_index: Any,
    label_smoothing: Any,
    reduction: Any,
) -> tuple[Tensor, Tensor, int, Tensor | None, torch.dtype]:
    """(logits in their compute dtype, target, class axis, weight, result dtype), checked."""
    z, out_dtype = _compute(logits, "logits")
    ax = normalize_axis(axis, z.ndim)
    _options(ignore_index, label_smoothing, reduction)
    target_f = _as_float(target, z.dtype)
    assert target_f is not None
    weight = _as_float(torch.as_tensor(weight) if weight is not None else None, z.dtype)
    return z, target_f, ax, weight, out_dtype


def cross_entropy_and_grad(
    logits: Tensor, target: Tensor, /, axis: int = -1, **options: Unpack[CrossEntropyOptions]
) -> tuple[Tensor, Tensor]:
    r"""Cross-entropy and its gradient with respect to the logits, without autograd.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, label_smoothing, reduction
        As in :func:`cross_entropy`.

    Returns
    -------
    loss : Tensor
        0-d for ``"mean"``/``"sum"``, one loss per sample for ``"none"``.
    grad : Tensor, same shape as ``logits``
        :math:`\partial \ell / \partial z = (a S - B) / \text{denom}` (the
        gradient of the summed losses for ``"none"``), in the logits' dtype.

    Notes
    -----
    One fused pass on CPU float32/float64 tensors (the numba kernel on the
    tensors' memory, the gradient written once), the closed form in torch
    operations on other devices; no graph is recorded, so neither result
    requires grad. What a training loop that applies the gradient itself
    (or :func:`softgrad.cross_entropy_and_grad` on tensors) needs.

    Examples
    --------
    >>> import torch
    >>> import softgrad.torch as sgt
    >>> z = torch.log(torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64))
    >>> loss, grad = sgt.cross_entropy_and_grad(z, torch.tensor([0]))
    >>> round(loss.item(), 4), grad  # -log 0.5 and S - y
    (0.6931, tensor([[-0.5000,  0.2500,  0.2500]], dtype=torch.float64))
    """
    _losses.check_option_names(options)
    ignore_index = options.get("ignore_index", _losses.DEFAULT_IGNORE_INDEX)
    label_smoothing = options.get("label_smoothing", 0.0)
    reduction = options.get("reduction", "mean")
    z, target, ax, weight, out_dtype = _loss_arguments(
        logits, target, axis, options.get("weight"), ignore_index, label_smoothing, reduction
    )
    with torch.no_grad():
        if _transformed(z):  # inside torch.func: the reference, which it can trace
            checked: CrossEntropyOptions = {**options, "weight": weight}
            loss, grad = _losses.cross_entropy_and_grad(z, target, ax, **checked)
        else:
            smoothing = float(label_smoothing)
            loss, grad = _ops.cross_entropy(
                z.detach(), target, ax, weight, ignore_index, smoothing, reduction
            )
    return loss.to(out_dtype), grad.to(out_dtype)
