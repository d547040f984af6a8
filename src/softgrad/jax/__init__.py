"""JAX bridge: softmax, log_softmax, logsumexp and cross-entropy with closed-form derivatives.

Each function is ``jax.custom_jvp`` (cross-entropy builds on log_softmax), so
``jit``, ``grad``, ``vmap``, ``jvp``, ``jacfwd``/``jacrev`` and ``hessian``
compose and use the closed forms; masked entries get exactly zero gradient and
finite input never makes an infinite intermediate (``jax.debug_infs`` passes).
The public :func:`softgrad.softmax` and friends route JAX arrays here by
themselves.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import softgrad.jax as sgj
>>> z = jnp.zeros((4, 3), jnp.float32)
>>> loss, grad = jax.value_and_grad(sgj.cross_entropy)(z, jnp.array([0, 1, 2, 0]))
>>> round(float(loss), 4), grad[0]
(1.0986, Array([-0.1667,  0.0833,  0.0833], dtype=float32))
"""

from softgrad._lib._extras import require

require("jax", "jax", feature="softgrad.jax")

from softgrad.jax._functions import cross_entropy as cross_entropy
from softgrad.jax._functions import cross_entropy_and_grad as cross_entropy_and_grad
from softgrad.jax._functions import log_softmax as log_softmax
from softgrad.jax._functions import logsumexp as logsumexp
from softgrad.jax._functions import softmax as softmax
from softgrad.jax._linear import linear_lse as linear_lse

__all__ = [
    "cross_entropy",
    "cross_entropy_and_grad",
    "linear_lse",
    "log_softmax",
    "logsumexp",
    "softmax",
]
