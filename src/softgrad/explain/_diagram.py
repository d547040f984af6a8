"""The dependency diagram of the post's coloured arrows, drawn with matplotlib (Agg).

Four columns: the inputs ``z_j``, their exponentials ``e^{z_j}``, the one shared
denominator ``Σ``, and the outputs ``S_i = e^{z_i}/Σ``. Input ``j``'s colour
follows its arrows: into ``e^{z_j}``, into ``Σ`` and straight into ``S_j`` as the
numerator; from ``Σ`` a grey arrow reaches every output, which is why every
``S_i`` depends on every ``z_j``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from softgrad.explain._model import check_n

__all__ = ["DIAGRAM_LIMIT", "draw_dependencies"]

#: Largest ``n`` the diagram draws legibly.
DIAGRAM_LIMIT = 6

_FORMATS = (".png", ".svg", ".pdf")


def draw_dependencies(n: int, path: str | Path) -> Path:
    """Draw how every input z_j feeds every output S_i through the shared denominator Σ.

    Parameters
    ----------
    n : int
        Number of softmax outputs, ``1 <= n <= 6``.
    path : str or pathlib.Path
        Where to write the image; the suffix picks the format
        (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``n`` is not an int.
    ValueError
        If ``n`` is outside ``1..6`` or the suffix is not a supported format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from softgrad.explain import draw_dependencies
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = draw_dependencies(3, pathlib.Path(tmp) / "softmax.png")
    ...     out.stat().st_size > 1000
    True
    """
    n = check_n(n)
    if n > DIAGRAM_LIMIT:
        msg = (
            f"n must be at most {DIAGRAM_LIMIT} for the dependency diagram "
            f"(n² arrows stop being readable), got n={n}"
        )
        raise ValueError(msg)
    out = Path(path)
    if out.suffix.lower() not in _FORMATS:
        msg = f"path must end in one of {', '.join(_FORMATS)}, got {str(out)!r}"
        raise ValueError(msg)

    _figure(n).savefig(out, dpi=110)
    return out


def _figure(n: int) -> Any:
    """The diagram's matplotlib Figure (Agg canvas), for ``1 <= n <= 6``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    fig = Figure(figsize=(9.0, 1.2 + 1.1 * max(n, 2)))
    FigureCanvasAgg(fig)
    # leave a band above the column headers for the title
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86 - 0.04 * (n <= 2)))
    ax.set_xlim(-0.4, 3.6)
    top = max(n, 2)
    ax.set_ylim(-0.7, top - 0.3)
    ax.axis("off")
    colours = [f"C{k}" for k in range(n)]
    ys = [top - 1 - k * (top - 1) / max(n - 1, 1) for k in range(n)] if n > 1 else [top / 2 - 0.5]
    y_sigma = sum(ys) / n
    x_z, x_e, x_sigma, x_s = 0.0, 1.0, 2.0, 3.2

    def node(x: float, y: float, label: str, colour: str, shape: str = "circle") -> None:
        box = {"boxstyle": f"{shape},pad=0.35", "fc": "white", "ec": colour, "lw": 2}
        ax.text(x, y, label, ha="center", va="center", fontsize=14, bbox=box, zorder=3)

    # half the size of the Σ box in data units (it is about 1.0 × 0.6 inches)
    width_in, height_in = fig.get_size_inches()
    _, _, ax_w, ax_h = ax.get_position().bounds
    half_w = 0.52 * 4.0 / (ax_w * width_in)
    half_h = 0.32 * (top + 0.4) / (ax_h * height_in)

    def sigma_edge(x: float, y: float) -> tuple[float, float]:
        """Where the line from (x, y) to Σ's centre crosses the edge of Σ's box."""
        dx, dy = x - x_sigma, y - y_sigma
        t = min(half_w / abs(dx) if dx else 1e9, half_h / abs(dy) if dy else 1e9)
        return x_sigma + t * dx, y_sigma + t * dy

    def arrow(
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        colour: str,
        rad: float = 0.0,
        shrink: tuple[float, float] = (18, 20),
    ) -> None:
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=14,
                lw=1.8,
                color=colour,
                shrinkA=shrink[0],
                shrinkB=shrink[1],
                connectionstyle=f"arc3,rad={rad}",
                zorder=2,
            )
        )

    for k in range(n):
        c, y = colours[k], ys[k]
        node(x_z, y, f"$z_{k + 1}$", c)
        node(x_e, y, f"$e^{{z_{k + 1}}}$", c, "round")
        node(x_s, y, f"$S_{k + 1}$", c)
        arrow(x_z, y, x_e, y, c)
        # into Σ: end at the edge of its box, so that the head is not hidden under it
        arrow(x_e, y, *sigma_edge(x_e, y), c, shrink=(18, 1))
        # the numerator of S_k: e^{z_k} goes straight to its own output
        arrow(x_e, y, x_s, y, c, rad=-0.25 if y >= y_sigma else 0.25)
        # the shared denominator reaches every output
        arrow(*sigma_edge(x_s, y), x_s, y, "0.45", shrink=(1, 20))
    node(x_sigma, y_sigma, r"$\Sigma=\sum_k e^{z_k}$", "0.25", "round")
    for x, label in (
        (x_z, "inputs"),
        (x_e, "exponentials"),
        (x_sigma, "shared Σ"),
        (x_s, "outputs"),
    ):
        ax.text(x, top - 0.35, label, ha="center", va="bottom", fontsize=11, color="0.3")
    fig.suptitle(
        f"Softmax with n = {n}: every $z_j$ reaches every $S_i = e^{{z_i}}/\\Sigma$ through $\\Sigma$",
        fontsize=13,
    )
    return fig
