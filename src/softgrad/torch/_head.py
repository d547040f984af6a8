"""``LinearCrossEntropyHead``: a language-model head module over :func:`softgrad.linear_cross_entropy`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from softgrad._linear import linear_cross_entropy

__all__ = ["LinearCrossEntropyHead"]


class LinearCrossEntropyHead(torch.nn.Module):
    r"""A language-model head that returns the loss: ``nn.Linear`` + cross-entropy, logits never built.

    Holds ``weight`` (K, D) and ``bias`` (K,) like ``torch.nn.Linear(D, K)``
    (same initialisation) and calls :func:`softgrad.linear_cross_entropy`.

    Parameters
    ----------
    in_features : int
        D, the hidden size.
    num_classes : int
        K, the vocabulary size.
    bias : bool, default True
    device, dtype : optional
        Where and how the parameters are created.
    **loss_options
        Fixed keyword arguments of :func:`softgrad.linear_cross_entropy`
        (``ignore_index``, ``label_smoothing``, ``z_loss``, ``softcap``,
        ``reduction``, ``class_weight``, ``block_rows``, ``block_vocab``).

    Examples
    --------
    >>> import torch
    >>> from softgrad.torch import LinearCrossEntropyHead
    >>> _ = torch.manual_seed(0)
    >>> head = LinearCrossEntropyHead(16, 100, z_loss=1e-4)
    >>> h = torch.randn(2, 8, 16, requires_grad=True)  # (batch, time, hidden)
    >>> loss = head(h, torch.randint(0, 100, (2, 8)))
    >>> loss.backward()
    >>> head.weight.grad.shape, h.grad.shape
    (torch.Size([100, 16]), torch.Size([2, 8, 16]))
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        **loss_options: Any,
    ) -> None:
        super().__init__()
        linear = torch.nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.weight = linear.weight
        self.bias = linear.bias
        self.loss_options = loss_options

    def forward(self, h: Tensor, target: Tensor) -> Tensor:
        """The loss of the hidden states ``h`` (..., D) for the integer ``target`` (...)."""
        out: Tensor = linear_cross_entropy(
            h, self.weight, target, bias=self.bias, **self.loss_options
        )
        return out

    def extra_repr(self) -> str:
        k, d = self.weight.shape
        return f"in_features={d}, num_classes={k}, bias={self.bias is not None}" + "".join(
            f", {k_}={v!r}" for k_, v in self.loss_options.items()
        )
