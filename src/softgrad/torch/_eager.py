r"""The eager path of :mod:`softgrad.torch`: the operators' forward and backward as plain
``torch.autograd.Function`` classes.

A ``torch.library`` custom operator costs ~0.1-0.2 ms of Python per call in
eager mode (``fill_defaults``, the dispatcher's Python kernel, the autograd
wrapper, whose ``apply`` binds the arguments with ``inspect.signature``), twice
per training step (forward and backward). On small tensors that is most of
the time: softmax forward + backward on 64 × 10 took 0.52 ms through the
operators against 0.28 ms through a plain ``Function`` (torch 0.10 ms). So,
outside ``torch.compile``, the public functions call the classes here on the
tensors the CPU kernels take; the operators of :mod:`softgrad.torch._ops`
serve ``torch.compile`` (they carry the fake implementations it traces) and
every other device.

The forward and backward bodies are the operators' own (``*_forward``
functions, the registered backward functions). A plain backward calls the
kernels directly; a backward that builds a graph (``create_graph=True``)
calls the differentiable VJP operators on tensors connected to the graph
(the saved output, or the saved input), so second derivatives stay closed-form
and complete.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from softgrad.torch import _ops

__all__ = [
    "SoftgradCrossEntropy",
    "SoftgradLogSoftmax",
    "SoftgradLogSoftmaxAndS",
    "SoftgradSoftmax",
    "eager",
]


class SoftgradSoftmax(torch.autograd.Function):
    """:math:`S(x)`; the backward saves :math:`S` only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, dim: int, where: Tensor | None) -> Tensor:
        s = _ops.softmax_forward(x, dim, where)
        ctx.dim = dim
        ctx.save_for_backward(s, where)
        return s

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        s, where = ctx.saved_tensors
        vjp = _ops.softmax_vjp if torch.is_grad_enabled() else _ops.softmax_vjp_forward
        return vjp(s, g, ctx.dim, where), None, None


class SoftgradLogSoftmax(torch.autograd.Function):
    r""":math:`\log S(x)`; the backward saves :math:`\log S` (the output) only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, dim: int, where: Tensor | None) -> Tensor:
        log_s = _ops.log_softmax_forward(x, dim, where)
        ctx.dim = dim
        ctx.save_for_backward(log_s)
        return log_s

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        (log_s,) = ctx.saved_tensors
        vjp = _ops.log_softmax_vjp if torch.is_grad_enabled() else _ops.log_softmax_vjp_forward
        return vjp(log_s, g, ctx.dim), None, None


class SoftgradLogSoftmaxAndS(torch.autograd.Function):
    r"""(:math:`\log S`, :math:`S` with −1 at excluded entries): the backward saves
    :math:`S` (an output, so a graph-building backward differentiates through it)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, dim: int, where: Tensor | None) -> tuple[Tensor, Tensor]:
        log_s, s = _ops.log_softmax_and_s_forward(x, dim, where)
        ctx.dim = dim
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(s)
        return log_s, s

    @staticmethod
    def backward(
        ctx: Any, g: Tensor | None, g_s: Tensor | None
    ) -> tuple[Tensor | None, None, None]:
        if torch.is_grad_enabled() or g is None or g_s is not None:
            out: tuple[Tensor | None, None, None] = _ops._log_softmax_and_s_backward(ctx, g, g_s)
            return out
        (s,) = ctx.saved_tensors
        return _ops.log_softmax_vjp_of_s_forward(s, g, ctx.dim), None, None


class SoftgradCrossEntropy(torch.autograd.Function):
    """(loss, its gradient with respect to the logits) from one fused pass; the
    backward scales the saved gradient or hands it on (:func:`_ops._ce_backward`)."""

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> tuple[Tensor, Tensor]:
        # inputs: the arguments of _ops.cross_entropy_forward (logits, target, dim, weight,
        # ignore_index, label_smoothing, reduction)
        output = _ops.cross_entropy_forward(*inputs)
        _ops._ce_setup(ctx, inputs, output)
        return output

    @staticmethod
    def backward(ctx: Any, g_loss: Tensor | None, g_grad: Tensor | None) -> tuple[Any, ...]:
        return _ops._ce_backward(ctx, g_loss, g_grad)


def eager(z: Tensor) -> bool:
    """True where these classes serve: tensors the CPU kernels take, outside ``torch.compile``."""
    return not torch.compiler.is_compiling() and _ops.use_kernels(z)
