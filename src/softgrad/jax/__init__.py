"""JAX bridge: softgrad's operations with custom derivative rules."""

from softgrad.jax._linear import linear_lse as linear_lse

__all__ = ["linear_lse"]
