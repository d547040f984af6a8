r"""The PyTorch operators of the bridge: one op per function, closed-form backward.

Design notes (they hold for every operator here):

* Each function is one ``torch.library.custom_op`` (namespace ``softgrad``)
  with a fake implementation (shapes only, so ``torch.compile`` traces it
  without a graph break) and a backward registered with ``register_autograd``.
  Its body is a plain function (``softmax_forward``, ...): in eager mode, on
  the tensors the CPU kernels take, :mod:`softgrad.torch._eager` runs the same
  bodies and backward functions as plain ``autograd.Function`` classes, which
  skip the operators' per-call dispatch.
* The forward runs the NumPy entry points of :mod:`softgrad.kernels._dispatch` on
  the tensor's own memory (``Tensor.numpy()`` shares it; the result comes
  back through ``torch.from_numpy``, no copy) when the tensor is a CPU
  float32/float64 tensor and the kernels are enabled; there the numba
  kernels run for large arrays. Everywhere else (CUDA, other devices, or
  with :func:`softgrad.kernels.disabled`) it runs the Array API reference
  on the tensors: the same closed forms in torch operations, on any device.
* The backward is itself an operator with a registered backward, so second
  derivatives (``autograd.grad(..., create_graph=True)``, Hessian-vector
  products) use closed forms as well:

  - softmax saves :math:`S` only: :math:`\bar z = S \odot (g - \langle g, S\rangle)`;
    that VJP is linear in :math:`g` with the symmetric Jacobian, so its own
    backward is the same VJP for :math:`g` and
    :math:`h \odot (g - \langle g, S\rangle) - g\,\langle h, S\rangle` for :math:`S`;
  - log_softmax saves :math:`\log S`: :math:`\bar z = g - S \sum g` (0 where
    :math:`\log S = -\infty`, i.e. at excluded entries), one kernel pass that
    exponentiates :math:`\log S` as it goes; when the input needs a gradient
    and the kernel holds whole rows, ``log_softmax_and_s`` saves :math:`S`
    instead (−1 at excluded entries), kept from the exponentials the forward
    sums, so the backward takes no ``exp`` (same saved memory, one more write
    in the forward);
  - logsumexp's backward is :math:`g\,S`, with :math:`S` from the softmax op;
  - cross-entropy computes its gradient in the forward pass (one fused
    kernel pass, like PyTorch's fused loss) and saves it; the backward
    scales it (and hands it on untouched when the incoming gradient is the
    scalar 1, as in ``loss.backward()``), and the second derivative is
    :func:`softgrad.cross_entropy_hvp`.
* Masked (and −inf) entries get exactly zero gradient: every backward zeroes
  the incoming gradient there before it enters a sum.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from softgrad import kernels as _kernels
from softgrad._agnostic import _derivatives, _losses, _softmax
from softgrad.kernels import _dispatch
from softgrad.torch._memory import cache

if TYPE_CHECKING:
    from torch._library.custom_ops import CustomOpDef

__all__ = [
    "cross_entropy",
    "log_softmax",
    "log_softmax_and_s",
    "log_softmax_vjp",
    "log_softmax_vjp_of_s",
    "logsumexp",
    "softmax",
    "softmax_vjp",
]

_KERNEL_DTYPES = (torch.float32, torch.float64)

# numba's presence is looked up once, now: the first lookup builds a module object,
# which torch.compile cannot trace when a compiled function makes the process's first call
_kernels.available()


def use_kernels(x: Tensor) -> bool:
    """True when ``x`` goes to the NumPy entry points (CPU float32/float64, kernels on)."""
    return x.device.type == "cpu" and x.dtype in _KERNEL_DTYPES and _kernels.enabled()


def _np(t: Tensor | None) -> Any:
    """The NumPy view of a CPU tensor (shares its memory)."""
    return None if t is None else t.detach().numpy()


def _from_np(a: Any) -> Tensor:
    return torch.from_numpy(np.asarray(a))


def _forward(kernel: Any, reference: Any, x: Tensor, dim: int, where: Tensor | None) -> Tensor:
    """The NumPy entry point ``kernel`` on the tensor's memory when the kernels apply,
    the Array API ``reference`` on the tensors otherwise."""
    if use_kernels(x):
        return _from_np(kernel(_np(x), dim, where=_np(where), empty=cache.empty))
    out: Tensor = reference(x, dim, where=where)
    return out


def _shaped_like_first(op: Any) -> Any:
    """Register the fake implementation of an op whose result is shaped like its first input."""
    op.register_fake(lambda first, *_: torch.empty_like(first))
    return op


def _operator(forward: Any, shaped_like_first: bool = True) -> CustomOpDef:
    """The ``softgrad::<name>`` operator of the plain function ``<name>_forward`` (its fake
    implementation registered too when the result is shaped like the first input);
    backwards are registered on it below."""
    name = forward.__name__.removesuffix("_forward")
    op = torch.library.custom_op(f"softgrad::{name}", mutates_args=())(forward)
    if shaped_like_first:
        _shaped_like_first(op)
    return op


def _keep_only(t: Tensor, where: Tensor | None) -> Tensor:
    """``t`` with 0 at the excluded entries (where ``where`` is False)."""
    return t if where is None else torch.where(where, t, torch.zeros((), dtype=t.dtype))


# --- softmax ---------------------------------------------------------------


def softmax_forward(x: Tensor, dim: int, where: Tensor | None) -> Tensor:
    """:math:`S(x)` along ``dim`` (0 at excluded entries)."""
    return _forward(_dispatch.softmax, _softmax.softmax, x, dim, where)


softmax = _operator(softmax_forward)


def softmax_vjp_forward(s: Tensor, g: Tensor, dim: int, where: Tensor | None) -> Tensor:
    r""":math:`S \odot (g - \langle g, S\rangle)`, 0 at excluded entries."""
    if use_kernels(s) and g.dtype == s.dtype and g.device == s.device:
        vjp = _dispatch.softmax_vjp(_np(s), _np(g), dim, where=_np(where), empty=cache.empty)
        return _from_np(vjp)
    out: Tensor = _derivatives.softmax_vjp(s, g, dim, where=where)
    return out


softmax_vjp = _operator(softmax_vjp_forward)


def _softmax_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    _, ctx.dim, where = inputs
    ctx.save_for_backward(output, where)


def _softmax_backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
    s, where = ctx.saved_tensors
    return softmax_vjp(s, g, ctx.dim, where), None, None


softmax.register_autograd(_softmax_backward, setup_context=_softmax_setup)


def _softmax_vjp_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    s, g, ctx.dim, where = inputs
    ctx.save_for_backward(s, g, where)


def _softmax_vjp_backward(ctx: Any, h: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
    # out = S ⊙ (g − ⟨g, S⟩): linear in g with the symmetric softmax Jacobian
    s, g, where = ctx.saved_tensors
    dim = ctx.dim
    ds = dg = None
    if ctx.needs_input_grad[1]:
        dg = softmax_vjp(s, h, dim, where)
    if ctx.needs_input_grad[0]:
        g, h = _keep_only(g, where), _keep_only(h, where)
        g_dot_s = (g * s).sum(dim, keepdim=True)
        h_dot_s = (h * s).sum(dim, keepdim=True)
        ds = _keep_only(h * (g - g_dot_s) - g * h_dot_s, where)
    return ds, dg, None, None


softmax_vjp.register_autograd(_softmax_vjp_backward, setup_context=_softmax_vjp_setup)


# --- log_softmax -----------------------------------------------------------


def log_softmax_forward(x: Tensor, dim: int, where: Tensor | None) -> Tensor:
    r""":math:`\log S(x)` along ``dim`` (−inf at excluded entries)."""
    return _forward(_dispatch.log_softmax, _softmax.log_softmax, x, dim, where)


log_softmax = _operator(log_softmax_forward)


def log_softmax_vjp_forward(log_s: Tensor, g: Tensor, dim: int) -> Tensor:
    r""":math:`g - S \sum g` with :math:`S = e^{\log S}`; 0 where :math:`\log S = -\infty`."""
    if use_kernels(log_s) and g.dtype == log_s.dtype and g.device == log_s.device:
        out = _log_softmax_vjp_kernel(log_s, g, dim)
        if out is not None:
            return out
    # excluded entries (masked or −inf logits) are exactly those with log S = −inf
    keep = log_s != -math.inf
    ref: Tensor = _derivatives.log_softmax_vjp(torch.exp(log_s), g, dim, where=keep)
    return ref


log_softmax_vjp = _operator(log_softmax_vjp_forward)


def _log_softmax_vjp_kernel(log_s: Tensor, g: Tensor, dim: int) -> Tensor | None:
    r"""The VJP kernel's log-S mode on the rows of ``log_s`` and ``g`` (``None``: too small).

    One pass reads :math:`\log S` and :math:`g` and writes the result: no
    :math:`S = e^{\log S}` array and no mask are built first.
    """
    policy = _kernels.current_policy()
    k = _kernels.load() if log_s.numel() >= max(policy.min_size, 1) else None
    if k is None:
        return None
    ls = log_s.movedim(dim, -1).contiguous()
    n = ls.shape[-1]
    ls2 = ls.view(-1, n)
    g2 = g.movedim(dim, -1).contiguous().view(-1, n)
    out = _from_np(cache.empty(tuple(ls2.shape), _np(ls2).dtype))
    run = k.vjp_rows_serial if ls2.numel() <= policy.serial_max else k.vjp_rows
    opts = k.RowOptions(k.LOG_SOFTMAX_VJP_OF_LOG, _dispatch.chunk(ls2.shape[0], n, policy))
    run(_np(ls2), _np(g2), None, _np(out), opts)
    return out.view(ls.shape).movedim(-1, dim)


def _log_softmax_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    ctx.dim = inputs[1]
    ctx.save_for_backward(output)


def _log_softmax_backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
    (log_s,) = ctx.saved_tensors
    return log_softmax_vjp(log_s, g, ctx.dim), None, None


log_softmax.register_autograd(_log_softmax_backward, setup_context=_log_softmax_setup)


def _vjp_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    saved, g, ctx.dim = inputs
    ctx.save_for_backward(saved, g)


def _vjp_grads(ctx: Any, h: Tensor, of_log: bool) -> tuple[Tensor | None, Tensor | None, None]:
    r"""Backward of a log_softmax VJP op saved from :math:`\log S` (``of_log``) or from
    :math:`S` with −1 at excluded entries.

    out = keep ⊙ (g − S Σ_keep g):  ∂/∂g = keep ⊙ (h − ⟨h, S⟩),  ∂/∂S = −h ⊙ Σ_keep g,
    and ∂/∂log S = S ⊙ ∂/∂S.
    """
    saved, g = ctx.saved_tensors
    dim: int = ctx.dim
    if of_log:
        keep, s = saved != -math.inf, torch.exp(saved)
    else:
        keep, s = _kept_s(saved)
    h = _keep_only(h, keep)
    dsaved = dg = None
    if ctx.needs_input_grad[1]:
        dg = _keep_only(h - (h * s).sum(dim, keepdim=True), keep)
    if ctx.needs_input_grad[0]:
        dsaved = -h * _keep_only(g, keep).sum(dim, keepdim=True)
        if of_log:
            dsaved = dsaved * s
    return dsaved, dg, None


log_softmax_vjp.register_autograd(
    lambda ctx, h: _vjp_grads(ctx, h, of_log=True), setup_context=_vjp_setup
)


# --- log_softmax for a backward without exp --------------------------------


def log_softmax_and_s_forward(x: Tensor, dim: int, where: Tensor | None) -> tuple[Tensor, Tensor]:
    r"""(:math:`\log S`, :math:`S` with −1 at the excluded entries) along ``dim``.

    The log_softmax of a tensor whose gradient is wanted: the kernel keeps the
    exponentials its sum computes as :math:`S` (one more write), so the backward
    :math:`g - S \sum g` takes no ``exp`` and saves :math:`S` instead of
    :math:`\log S` (the same memory).
    """
    if use_kernels(x):
        both = _dispatch.log_softmax_and_s(_np(x), dim, where=_np(where), empty=cache.empty)
        if both is not None:
            return _from_np(both[0]), _from_np(both[1])
        log_s = _from_np(_dispatch.log_softmax(_np(x), dim, where=_np(where), empty=cache.empty))
    else:
        log_s = _softmax.log_softmax(x, dim, where=where)
    minus_one = torch.full((), -1.0, dtype=log_s.dtype, device=log_s.device)
    return log_s, torch.where(log_s == -math.inf, minus_one, torch.exp(log_s))


log_softmax_and_s = _operator(log_softmax_and_s_forward, shaped_like_first=False)


@log_softmax_and_s.register_fake
def _(x: Tensor, dim: int, where: Tensor | None) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), torch.empty_like(x)


def _kept_s(s: Tensor) -> tuple[Tensor, Tensor]:
    """(the entries of ``s`` that are not excluded, ``s`` with 0 at the excluded ones)."""
    keep = ~(s < 0)  # NaN rows are kept: their gradient is NaN
    return keep, _keep_only(s, keep)


def _log_softmax_and_s_setup(
    ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]
) -> None:
    ctx.dim = inputs[1]
    ctx.set_materialize_grads(False)  # S is internal: its gradient is None unless differentiated
    ctx.save_for_backward(output[1])


def _log_softmax_and_s_backward(
    ctx: Any, g: Tensor | None, g_s: Tensor | None
) -> tuple[Tensor | None, None, None]:
    (s,) = ctx.saved_tensors
    dx = None if g is None else log_softmax_vjp_of_s(s, g, ctx.dim)
    if g_s is not None:  # S used by a double backward: its own VJP, on the kept entries
        keep, s_kept = _kept_s(s)
        ds = softmax_vjp(s_kept, g_s, ctx.dim, keep)
        dx = ds if dx is None else dx + ds
    return dx, None, None


log_softmax_and_s.register_autograd(
    _log_softmax_and_s_backward, setup_context=_log_softmax_and_s_setup
)


def log_softmax_vjp_of_s_forward(s: Tensor, g: Tensor, dim: int) -> Tensor:
    r""":math:`g - S \sum g` from :math:`S` with −1 at excluded entries (0 there)."""
    if use_kernels(s) and g.dtype == s.dtype and g.device == s.device:
        out = _dispatch.log_softmax_vjp_of_s(_np(s), _np(g), dim, empty=cache.empty)
        if out is not None:
            return _from_np(out)
    keep, s_kept = _kept_s(s)
    ref: Tensor = _derivatives.log_softmax_vjp(s_kept, g, dim, where=keep)
    return ref


log_softmax_vjp_of_s = _operator(log_softmax_vjp_of_s_forward)


log_softmax_vjp_of_s.register_autograd(
    lambda ctx, h: _vjp_grads(ctx, h, of_log=False), setup_context=_vjp_setup
)


# --- logsumexp -------------------------------------------------------------


@torch.library.custom_op("softgrad::logsumexp", mutates_args=())
def logsumexp(x: Tensor, dim: int, where: Tensor | None) -> Tensor:
    r""":math:`\log\sum_j e^{x_j}` along ``dim``, the axis kept with length 1."""
    kept = functools.partial(_dispatch.logsumexp, keepdims=True)
    return _forward(kept, functools.partial(_softmax.logsumexp, keepdims=True), x, dim, where)


@logsumexp.register_fake
def _(x: Tensor, dim: int, where: Tensor | None) -> Tensor:
    shape = list(x.shape)
    shape[dim] = 1
    return x.new_empty(shape)


def _logsumexp_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, ctx.dim, where = inputs
    ctx.save_for_backward(x, where)


def _logsumexp_backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
    # ∂ LSE / ∂x = S(x): recomputed by the softmax op, so the second derivative is its VJP
    x, where = ctx.saved_tensors
    return g * softmax(x, ctx.dim, where), None, None


logsumexp.register_autograd(_logsumexp_backward, setup_context=_logsumexp_setup)


# --- cross-entropy ---------------------------------------------------------


def cross_entropy_forward(
    logits: Tensor,
    target: Tensor,
    dim: int,
    weight: Tensor | None,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
) -> tuple[Tensor, Tensor]:
    """The loss and its gradient with respect to the logits, from one fused pass."""
    kw: dict[str, Any] = {
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "reduction": reduction,
    }
    if use_kernels(logits) and target.device.type == "cpu":
        loss, grad = _dispatch.cross_entropy_and_grad(
            _np(logits), _np(target), dim, weight=_np(weight), empty=cache.empty, **kw
        )
        return _from_np(loss), _from_np(grad)
    ref_loss, ref_grad = _losses.cross_entropy_and_grad(logits, target, dim, weight=weight, **kw)
    return ref_loss, ref_grad


cross_entropy = _operator(cross_entropy_forward, shaped_like_first=False)


@cross_entropy.register_fake
def _(logits: Tensor, target: Tensor, dim: int, *options: Any) -> tuple[Tensor, Tensor]:
    # options: weight, ignore_index, label_smoothing, reduction
    shape = list(logits.shape)
    del shape[dim]
    if options[-1] != "none":
        shape = []
    return logits.new_empty(shape), torch.empty_like(logits)


def _ce_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    logits, target, dim, weight, ignore_index, label_smoothing, reduction = inputs
    ctx.options = (dim, ignore_index, label_smoothing, reduction)
    ctx.handed_on = False  # set once the saved gradient has become someone's .grad
    # the gradient output is internal: without this, autograd would hand the backward a
    # zero tensor the size of the logits for it (a fresh page-faulted allocation per step)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(logits, target, weight, output[1])


def _ce_backward(ctx: Any, g_loss: Tensor | None, _g_grad: Tensor | None) -> tuple[Any, ...]:
    logits, target, weight, grad = ctx.saved_tensors
    dim, ignore_index, label_smoothing, reduction = ctx.options
    if ctx.handed_on:  # a retained graph run again: the saved gradient may have changed since
        grad = cross_entropy(logits, target, dim, weight, ignore_index, label_smoothing, reduction)[
            1
        ]
    if g_loss is None:  # only the gradient output was differentiated
        return (None,) * 7
    g = g_loss.unsqueeze(dim) if reduction == "none" else g_loss
    if torch.is_grad_enabled() or torch.compiler.is_compiling():
        # create_graph (double backward) or a traced graph: the differentiable op
        dlogits = scaled_gradient(logits, target, weight, grad, g, *ctx.options)
    elif g.ndim == 0 and grad.device.type == "cpu" and g.item() == 1.0:
        # loss.backward() of a reduced loss: the saved gradient is the answer, handed on
        # without a pass over memory (autograd makes it the .grad without a copy). The
        # tensor handed on shares the memory but not the version counter of the saved
        # one, which its later in-place updates would otherwise invalidate.
        ctx.handed_on = True
        dlogits = _from_np(_np(grad))
    else:
        dlogits = grad * g
    return dlogits, None, None, None, None, None, None


cross_entropy.register_autograd(_ce_backward, setup_context=_ce_setup)


@_shaped_like_first  # grad is shaped like the logits
@torch.library.custom_op("softgrad::cross_entropy_scaled_gradient", mutates_args=())
def scaled_gradient(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None,
    grad: Tensor,
    g: Tensor,
    dim: int,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
) -> Tensor:
    """``g ⋅ grad``: the backward of cross-entropy (``g`` broadcasts over the class axis)."""
    return grad * g


def _scaled_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    logits, target, weight, grad, g, *options = inputs
    ctx.options = options
    ctx.save_for_backward(logits, target, weight, grad, g)


def _scaled_backward(ctx: Any, h: Tensor) -> tuple[Any, ...]:
    # out = g ⋅ ∇ℓ(z):  ∂/∂z = g ⋅ H h (the closed-form Hessian product),  ∂/∂g = ⟨∇ℓ, h⟩
    logits, target, weight, grad, g = ctx.saved_tensors
    dim, ignore_index, label_smoothing, reduction = ctx.options
    dlogits = dg = None
    if ctx.needs_input_grad[0]:
        dlogits = _losses.cross_entropy_hvp(
            logits,
            target,
            g * h,
            dim,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
    if ctx.needs_input_grad[4]:
        dg = (grad * h).sum(dim, keepdim=True) if reduction == "none" else (grad * h).sum()
    return dlogits, None, None, None, dg, None, None, None, None


scaled_gradient.register_autograd(_scaled_backward, setup_context=_scaled_setup)
