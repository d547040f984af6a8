r"""PyTorch operator and ``nn.Module`` head for the blocked linear cross-entropy.

The operator ``softgrad::linear_lse`` (a ``torch.library.custom_op``: opaque
to ``torch.compile``, with a fake implementation for tracing) returns, per
row of ``h``, the three numbers every loss option is built from
(``softgrad._linear`` explains the design):

.. math::

    \mathrm{lse}_i = \log\textstyle\sum_c e^{z_{ic}},\quad z_{iy_i},\quad
    \textstyle\sum_c w_c z_{ic}, \qquad z = \operatorname{cap}(hW^\top + b),

without the N × K logits. Its backward, ``softgrad::linear_lse_backward``,
is the blocked gradient pass with
:math:`\partial L/\partial z = g_{\mathrm{lse}}\,S + g_{z_y}\,e_y + g_{wz}\,w`;
it runs after autograd knows the upstream gradient, so
``reduction="none"`` with any per-token gradient is exact.

CPU float32/float64 tensors run the NumPy kernel (numba + BLAS) on the
tensors' own memory; tensors on any other device (CUDA), or with the kernels
switched off, run the same blocking in torch operations.
"""

from __future__ import annotations

from typing import Any, Unpack, overload

import numpy as np
import torch
from torch import Tensor

from softgrad import kernels as _kernels
from softgrad._agnostic import _linear as _ref

__all__ = ["linear_lse", "linear_lse_backward", "linear_lse_raw"]


def _numpy_path(h: Tensor) -> bool:
    return (
        h.device.type == "cpu" and h.dtype in (torch.float32, torch.float64) and _kernels.enabled()
    )


@overload
def _np(t: Tensor) -> np.ndarray: ...
@overload
def _np(t: Tensor | None) -> np.ndarray | None: ...
def _np(t: Tensor | None) -> np.ndarray | None:
    """The tensor's memory as a NumPy array (a copy only when not contiguous)."""
    return None if t is None else t.detach().contiguous().numpy()


def _xp() -> Any:
    import array_api_compat.torch as xp

    return xp


def _options(
    class_weight: Tensor | None, softcap: float, block_rows: int, block_vocab: int
) -> _ref.BackwardOptions:
    """The primitives' options from the custom ops' flat arguments (``softcap`` 0: none)."""
    return _ref.BackwardOptions(
        softcap=softcap if softcap > 0 else None,
        class_weight=class_weight,
        block_rows=block_rows,
        block_vocab=block_vocab,
    )


@torch.library.custom_op("softgrad::linear_lse", mutates_args=())
def _lse_op(
    h: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    y: Tensor,
    class_weight: Tensor | None,
    softcap: float,
    smoothing: bool,
    block_rows: int,
    block_vocab: int,
) -> tuple[Tensor, Tensor, Tensor]:
    options = _ref.LseOptions(
        **_options(class_weight, softcap, block_rows, block_vocab), smoothing=smoothing
    )
    if _numpy_path(h):
        from softgrad.kernels import _linear as kernel

        arrays = _ref.LinearOperands(_np(h), _np(weight), _np(bias), _np(y))
        options["class_weight"] = _np(class_weight)
        out = kernel.linear_lse(arrays, **options)
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in out)  # type: ignore[return-value]
    with torch.no_grad():
        lse, zy, wz = _ref.linear_lse(_xp(), _ref.LinearOperands(h, weight, bias, y), **options)
    return lse.clone(), zy.clone(), wz.clone()


@_lse_op.register_fake
def _(
    h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, *args: Any
) -> tuple[Tensor, Tensor, Tensor]:
    n = h.shape[0]
    return h.new_empty(n), h.new_empty(n), h.new_empty(n)


@torch.library.custom_op("softgrad::linear_lse_backward", mutates_args=())
def _backward_op(
    h: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    y: Tensor,
    lse: Tensor,
    alpha: Tensor,
    beta: Tensor,
    gamma: Tensor,
    class_weight: Tensor | None,
    softcap: float,
    block_rows: int,
    block_vocab: int,
) -> tuple[Tensor, Tensor, Tensor]:
    options = _options(class_weight, softcap, block_rows, block_vocab)
    if _numpy_path(h):
        from softgrad.kernels import _linear as kernel

        arrays = _ref.LinearOperands(_np(h), _np(weight), _np(bias), _np(y))
        coef = (_np(alpha), _np(beta), _np(gamma))
        options["class_weight"] = _np(class_weight)
        dh, dw, db = kernel.linear_backward(arrays, _np(lse), coef, **options)
        dbt = torch.from_numpy(db) if db is not None else h.new_empty(0)
        return torch.from_numpy(dh), torch.from_numpy(dw), dbt
    with torch.no_grad():
        operands = _ref.LinearOperands(h, weight, bias, y)
        dh, dw, db = _ref.linear_backward(_xp(), operands, lse, (alpha, beta, gamma), **options)
    return dh.clone(), dw.clone(), (db.clone() if db is not None else h.new_empty(0))


@_backward_op.register_fake
def _(h: Tensor, weight: Tensor, bias: Tensor | None, *args: Any) -> tuple[Tensor, Tensor, Tensor]:
    return (
        torch.empty_like(h),
        torch.empty_like(weight),
        h.new_empty(0 if bias is None else bias.shape[0]),
    )


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    h, weight, bias, y, class_weight, softcap, _smoothing, block_rows, block_vocab = inputs
    ctx.save_for_backward(h, weight, bias, y, class_weight, output[0])
    ctx.options = (softcap, block_rows, block_vocab)


def _lse_backward(
    ctx: Any, g_lse: Tensor | None, g_zy: Tensor | None, g_wz: Tensor | None
) -> tuple[Any, ...]:
    h, weight, bias, y, class_weight, lse = ctx.saved_tensors
    zeros = torch.zeros_like(lse)
    alpha = zeros if g_lse is None else g_lse
    beta = zeros if g_zy is None else -g_zy
    gamma = zeros if g_wz is None else -g_wz
    dh, dw, db = _backward_op(
        h, weight, bias, y, lse, alpha, beta, gamma, class_weight, *ctx.options
    )
    return dh, dw, (db if bias is not None else None), None, None, None, None, None, None


_lse_op.register_autograd(_lse_backward, setup_context=_setup_context)


def linear_lse(
    operands: _ref.LinearOperands, **options: Unpack[_ref.LseOptions]
) -> tuple[Tensor, Tensor, Tensor]:
    """The differentiable primitive: ``(lse, z_y, Σ w z)`` per row of ``h`` (N, D)."""
    h, weight, bias, y = operands
    out: tuple[Tensor, Tensor, Tensor] = _lse_op(
        h,
        weight,
        bias,
        y,
        options["class_weight"],
        options["softcap"] or 0.0,
        options["smoothing"],
        options["block_rows"],
        options["block_vocab"],
    )
    return out


def linear_lse_raw(
    operands: _ref.LinearOperands, **options: Unpack[_ref.LseOptions]
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`linear_lse` without recording autograd history."""
    with torch.no_grad():
        return linear_lse(operands, **options)


def linear_lse_backward(
    operands: _ref.LinearOperands,
    lse: Tensor,
    coef: _ref.Coefficients,
    **options: Unpack[_ref.BackwardOptions],
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""The blocked gradient pass for :math:`\partial L/\partial z = \alpha S - \beta e_y - \gamma w`."""
    cap, blocks = options["softcap"] or 0.0, (options["block_rows"], options["block_vocab"])
    with torch.no_grad():
        dh, dw, db = _backward_op(*operands, lse, *coef, options["class_weight"], cap, *blocks)
    return dh, dw, (db if operands.bias is not None else None)
