"""Pictures of a training run: the loss curve and the softmax Jacobian of one sample.

Figures are drawn on matplotlib's Agg canvas directly (no ``pyplot`` state,
no display needed) and written as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["loss_curve_figure", "plot_loss_curve", "plot_softmax_jacobian"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def loss_curve_figure(curve: Sequence[float], *, unit: str = "iteration", title: str = "") -> Any:
    """The objective per iteration (or epoch) on a log axis, where the tail still shows.

    Parameters
    ----------
    curve : sequence of float
        The objective after each iteration or epoch.
    unit : {"iteration", "epoch"}, default "iteration"
        What one point is: an epoch for the stochastic solvers (sgd, adam).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ax = loss_curve_figure([1.0, 0.5, 0.25], unit="epoch").axes[0]
    >>> ax.get_xlabel(), ax.get_yscale()
    ('epoch', 'log')
    """
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    values = np.asarray(curve, dtype=np.float64)
    steps = np.arange(1, len(values) + 1)
    ax.plot(steps, values, marker="o" if len(values) < 40 else None, ms=3, lw=1.5)
    # the objective (cross-entropy + L2) is positive; a log axis shows the slow tail
    ax.set_yscale("log" if values.size and values.min() > 0 else "linear")
    ax.set_xlabel(unit)
    ax.set_ylabel("objective (mean cross-entropy + L2 penalty)")
    ax.set_title(title or "training loss")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_loss_curve(
    curve: Sequence[float], path: str | Path, *, unit: str = "iteration", title: str = ""
) -> Path:
    """Save :func:`loss_curve_figure` as a PNG at ``path`` and return ``path``."""
    loss_curve_figure(curve, unit=unit, title=title).savefig(path)
    return Path(path)


def plot_softmax_jacobian(
    jacobian: NDArray[Any],
    probabilities: NDArray[Any],
    class_names: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    r"""Save the heatmap of :math:`J_{ij} = \partial S_i/\partial z_j = S_i(\delta_{ij} - S_j)`.

    Parameters
    ----------
    jacobian : array, shape (K, K)
        The softmax Jacobian of one sample (from :func:`softgrad.softmax_jacobian`).
    probabilities : array, shape (K,)
        That sample's softmax outputs, shown beside the rows.
    class_names : sequence of str, length K
    path : str or Path
        The PNG to write.
    title : str, optional

    Returns
    -------
    Path
        ``path``.
    """
    J = np.asarray(jacobian, dtype=np.float64)
    k = J.shape[0]
    size = min(2.0 + 0.7 * k, 12.0)
    fig = _figure(size + 1.5, size)
    ax = fig.add_subplot(1, 1, 1)
    # diverging colours centred on 0: the diagonal S_i(1 − S_i) ≥ 0, the rest −S_i S_j ≤ 0
    limit = float(np.abs(J).max()) or 1.0
    image = ax.imshow(J, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, label=r"$\partial S_i / \partial z_j$")
    labels = [f"{name}\n(S={p:.2f})" for name, p in zip(class_names, probabilities, strict=True)]
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45 if k > 4 else 0)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("logit $z_j$")
    ax.set_ylabel("softmax output $S_i$")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                v = J[i, j]
                text = "0" if abs(v) < 5e-4 else f"{v:.3f}"
                colour = "white" if abs(v) > 0.6 * limit else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
    ax.set_title(title or r"softmax Jacobian $S_i(\delta_{ij} - S_j)$")
    fig.savefig(path)
    return Path(path)
