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

from typing import Unpack

from softgrad import _linear_blocks as _blocks
from softgrad._lib._array import Array
from softgrad._linear_blocks import LinearCrossEntropyGrad, LinearCrossEntropyOptions

__all__ = [
    "LinearCrossEntropyGrad",
    "LinearCrossEntropyOptions",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
]


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
    if _blocks._family(h) == "dask":
        from softgrad.dask import _linear as dlinear

        return dlinear.linear_cross_entropy(h, weight, target, **options)
    return _blocks.loss(h, weight, target, **options)


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
    if _blocks._family(h) == "dask":
        from softgrad.dask import _linear as dlinear

        return dlinear.linear_cross_entropy_and_grad(
            h, weight, target, grad_output=grad_output, **options
        )
    return _blocks.loss_and_grad(h, weight, target, grad_output=grad_output, **options)
