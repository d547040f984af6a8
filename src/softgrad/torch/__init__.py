"""PyTorch bridge: softgrad's operations as autograd-aware torch operators."""

from softgrad.torch._linear import LinearCrossEntropyHead as LinearCrossEntropyHead

__all__ = ["LinearCrossEntropyHead"]
