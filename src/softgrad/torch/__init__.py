"""PyTorch bridge: softmax, log_softmax, logsumexp and cross-entropy as single operations.

``cross_entropy_and_grad`` gives the loss and its gradient without autograd.

Each function is one ``torch.library`` custom operator whose backward is the
closed form (no autodiff through the Array API code), registered so that
``torch.compile(fullgraph=True)`` traces it without a graph break, with a
closed-form double backward for Hessian-vector products. On CPU
float32/float64 tensors the forward and backward run softgrad's numba
kernels on the tensor's memory; on other devices the same formulas run as
torch operations. The public :func:`softgrad.softmax` and friends route
torch tensors here by themselves. The CPU kernels' outputs reuse the memory
of dropped outputs (:func:`empty_cache`, :func:`set_cache_limit`), so a
training step touches no freshly mapped page.

Examples
--------
>>> import torch
>>> import softgrad.torch as sgt
>>> z = torch.zeros(4, 3, requires_grad=True)
>>> loss = sgt.cross_entropy(z, torch.tensor([0, 1, 2, 0]))
>>> loss.backward()
>>> round(loss.item(), 4), z.grad[0]
(1.0986, tensor([-0.1667,  0.0833,  0.0833]))
"""

from softgrad._lib._extras import require

require("torch", "torch", feature="softgrad.torch")

from softgrad.torch._functions import cross_entropy as cross_entropy
from softgrad.torch._functions import cross_entropy_and_grad as cross_entropy_and_grad
from softgrad.torch._functions import log_softmax as log_softmax
from softgrad.torch._functions import logsumexp as logsumexp
from softgrad.torch._functions import softmax as softmax
from softgrad.torch._head import LinearCrossEntropyHead as LinearCrossEntropyHead
from softgrad.torch._memory import cached_bytes as cached_bytes
from softgrad.torch._memory import empty_cache as empty_cache
from softgrad.torch._memory import set_cache_limit as set_cache_limit

__all__ = [
    "LinearCrossEntropyHead",
    "cached_bytes",
    "cross_entropy",
    "cross_entropy_and_grad",
    "empty_cache",
    "log_softmax",
    "logsumexp",
    "set_cache_limit",
    "softmax",
]
