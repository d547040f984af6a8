"""Pictures of a training run, written as SVG text: the loss curve and one softmax Jacobian.

No plotting library is imported: ``softgrad train`` would otherwise spend more
time importing matplotlib (~1.9 s) than fitting. Each picture is a standalone
SVG 1.1 file (``xmlns``, ``viewBox``, ``width``/``height``) that any browser
opens. Every piece of text passes through :func:`~softgrad.app._svg.xml_text`
(class names come from users' CSV files), numbers are written with two decimals at most, and
the groups carry ``id`` attributes (``curve``, ``cells``, ``y-axis`` with
``data-scale``) so that tests can read the structure back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softgrad.app._svg import (
    RDBU,
    Axis,
    diverging_colour,
    document,
    element,
    is_dark,
    linear_axis,
    log_axis,
    num,
    text_width,
    xml_text,
)

__all__ = [
    "JACOBIAN_TITLE",
    "loss_curve_svg",
    "plot_loss_curve",
    "plot_softmax_jacobian",
    "softmax_jacobian_svg",
]

# -- the loss curve ---------------------------------------------------------------------------

CURVE_COLOUR = "#1f77b4"
MARK_COLOUR = "#d62728"


@dataclass(frozen=True)
class _Frame:
    """The plotting area, in pixels, and the axes that map data into it."""

    left: float
    top: float
    width: float
    height: float
    x: Axis
    y: Axis

    def px(self, step: float, value: float) -> tuple[float, float]:
        return (
            self.left + self.x.fraction(step) * self.width,
            self.top + (1 - self.y.fraction(value)) * self.height,
        )


def loss_curve_svg(curve: Sequence[float], *, unit: str = "iteration", title: str = "") -> str:
    """The objective per iteration (or epoch) as an SVG document, on a log axis when all > 0.

    A log axis shows the slow tail of a converging fit; zero or negative values
    fall back to a linear axis. Non-finite values (a diverging fit) are not drawn:
    the line breaks there and a dashed red line marks each such step, with a note.

    Parameters
    ----------
    curve : sequence of float
        The objective after each iteration or epoch (may be empty).
    unit : {"iteration", "epoch"}, default "iteration"
        What one point is: an epoch for the stochastic solvers (sgd, adam).
    title : str, optional

    Returns
    -------
    str
        A standalone SVG document.

    Examples
    --------
    >>> import xml.etree.ElementTree as ET
    >>> svg = ET.fromstring(loss_curve_svg([1.0, 0.5, 0.25], unit="epoch"))
    >>> ns = {"s": "http://www.w3.org/2000/svg"}
    >>> svg.find(".//s:g[@id='y-axis']", ns).get("data-scale")
    'log'
    >>> len(svg.find(".//s:polyline", ns).get("points").split())
    3
    """
    values = np.asarray(curve, dtype=np.float64).reshape(-1)
    steps = np.arange(1, values.size + 1, dtype=np.float64)
    finite = np.isfinite(values)
    shown = values[finite]
    width, height = 640.0, 400.0
    x = linear_axis(1.0, float(max(values.size, 1)), integer=True)
    if shown.size == 0:
        y = linear_axis(0.0, 1.0)
    elif shown.min() > 0:
        y = log_axis(float(shown.min()), float(shown.max()))
    else:
        y = linear_axis(float(shown.min()), float(shown.max()))
    frame = _Frame(left=84.0, top=44.0, width=width - 84 - 24, height=height - 44 - 56, x=x, y=y)
    body = [
        element("text", title or "training loss", x=width / 2, y=26.0, text_anchor="middle",
                 font_size=15),
        *_axes(frame, unit, "objective (mean cross-entropy + L2 penalty)"),
        *_line(frame, steps[finite], shown, finite, markers=values.size < 40),
    ]  # fmt: skip
    note = ""
    if values.size == 0:
        note = f"no {unit}s recorded"
    elif not finite.all():
        bad = int(values.size - finite.sum())
        note = f"{bad} non-finite value{'s' * (bad > 1)} (NaN/inf) not drawn: dashed red lines"
    if note:
        body.append(element("text", note, id="note", x=frame.left + frame.width - 6,
                             y=frame.top + 16, text_anchor="end", fill=MARK_COLOUR))  # fmt: skip
    return document(width, height, body)


def _axes(frame: _Frame, x_title: str, y_title: str) -> list[str]:
    """Frame, light grid, tick labels and axis titles."""
    left, top, right, bottom = (
        frame.left,
        frame.top,
        frame.left + frame.width,
        frame.top + frame.height,
    )
    grid, labels = [], []
    for t, s in zip(frame.x.ticks, frame.x.labels, strict=True):
        px = left + frame.x.fraction(t) * frame.width
        grid.append(f"M{num(px)} {num(top)}V{num(bottom)}")
        labels.append(element("text", s, x=px, y=bottom + 16, text_anchor="middle"))
    x_axis = "\n".join(labels)
    labels = []
    for t, s in zip(frame.y.ticks, frame.y.labels, strict=True):
        py = top + (1 - frame.y.fraction(t)) * frame.height
        grid.append(f"M{num(left)} {num(py)}H{num(right)}")
        labels.append(element("text", s, x=left - 6, y=py + 4, text_anchor="end"))
    return [
        element("path", id="grid", d="".join(grid), stroke="#dddddd", fill="none"),
        element("rect", x=left, y=top, width=frame.width, height=frame.height, fill="none",
                 stroke="#444444"),
        f'<g id="x-axis">\n{x_axis}\n'
        + element("text", x_title, x=left + frame.width / 2, y=bottom + 40, text_anchor="middle")
        + "\n</g>",
        f'<g id="y-axis" data-scale="{"log" if frame.y.log else "linear"}">\n'
        + "\n".join(labels) + "\n"
        + element("text", y_title, x=0.0, y=0.0, text_anchor="middle",
                   transform=f"translate(18 {num(top + frame.height / 2)}) rotate(-90)")
        + "\n</g>",
    ]  # fmt: skip


def _line(
    frame: _Frame, steps: NDArray[Any], values: NDArray[Any], finite: NDArray[Any], *, markers: bool
) -> list[str]:
    """One polyline per run of finite values, markers when few, a dashed mark per non-finite."""
    points = [frame.px(float(s), float(v)) for s, v in zip(steps, values, strict=True)]
    # a non-finite value ends a run: the run of each finite point is the count of gaps before it
    runs = np.cumsum(~finite)[finite]
    out = ['<g id="curve">']
    for run in np.unique(runs):
        chosen = [p for p, r in zip(points, runs, strict=True) if r == run]
        coords = " ".join(f"{num(px)},{num(py)}" for px, py in chosen)
        out.append(element("polyline", points=coords, fill="none", stroke=CURVE_COLOUR,
                            stroke_width=1.5, stroke_linejoin="round"))  # fmt: skip
    if markers:
        out += [element("circle", cx=px, cy=py, r=2.5, fill=CURVE_COLOUR) for px, py in points]
    out.append("</g>")
    gaps = np.flatnonzero(~finite) + 1.0
    if gaps.size:
        top, bottom = frame.top, frame.top + frame.height
        d = "".join(f"M{num(frame.px(float(s), 1.0)[0])} {num(top)}V{num(bottom)}" for s in gaps)
        out.append(element("path", id="non-finite", d=d, stroke=MARK_COLOUR,
                            stroke_dasharray="4 3", fill="none"))  # fmt: skip
    return out


def plot_loss_curve(
    curve: Sequence[float], path: str | Path, *, unit: str = "iteration", title: str = ""
) -> Path:
    """Write :func:`loss_curve_svg` to ``path`` (UTF-8) and return ``path``."""
    Path(path).write_text(loss_curve_svg(curve, unit=unit, title=title), encoding="utf-8")
    return Path(path)


# -- the softmax Jacobian ---------------------------------------------------------------------

JACOBIAN_TITLE = "softmax Jacobian S_i(δ_ij − S_j)"
TEXT_LIMIT = 12  # cell values are written for K up to this
LABEL_CHARS = 24  # longer class names are cut (the whole name is the label's tooltip)


def softmax_jacobian_svg(
    jacobian: NDArray[Any],
    probabilities: NDArray[Any],
    class_names: Sequence[str],
    *,
    subtitle: str = "",
) -> str:
    r"""The heatmap of :math:`J_{ij} = \partial S_i/\partial z_j = S_i(\delta_{ij} - S_j)` as SVG.

    Colours diverge around 0 on a symmetric scale :math:`\pm\max|J|`: the
    diagonal :math:`S_i(1 - S_i) \ge 0` is red, the rest :math:`-S_i S_j \le 0`
    blue. Rows are labelled ``name (S=0.83)``; the values are written in the
    cells when :math:`K \le 12`; horizontal runs of cells of one colour are one
    rectangle, so the file stays small for many classes.

    Parameters
    ----------
    jacobian : array, shape (K, K)
        The softmax Jacobian of one sample (from :func:`softgrad.softmax_jacobian`).
    probabilities : array, shape (K,)
        That sample's softmax outputs, shown beside the rows.
    class_names : sequence of str, length K
    subtitle : str, optional
        A line under the title (which sample this is).

    Returns
    -------
    str
        A standalone SVG document: the cells, their labels and a colour bar.

    Examples
    --------
    >>> from xml.etree.ElementTree import fromstring
    >>> ns = {"s": "http://www.w3.org/2000/svg"}
    >>> s = np.array([0.7, 0.2, 0.1])
    >>> svg = fromstring(softmax_jacobian_svg(np.diag(s) - np.outer(s, s), s, ["a", "b", "c"]))
    >>> [t.text for t in svg.findall(".//s:g[@id='rows']/s:text", ns)]
    ['a (S=0.70)', 'b (S=0.20)', 'c (S=0.10)']
    """
    J = np.asarray(jacobian, dtype=np.float64)
    S = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    k = S.size
    if J.shape != (k, k) or len(class_names) != k:
        msg = (
            f"jacobian must be (K, K) with K = len(probabilities) = len(class_names), got "
            f"jacobian {J.shape}, probabilities ({k},), {len(class_names)} class_names: "
            "pass softmax_jacobian(z), softmax(z) and the names of one sample's K classes"
        )
        raise ValueError(msg)
    names = [str(c) for c in class_names]
    rows = [f"{_cut(n)} (S={p:.2f})" for n, p in zip(names, S, strict=True)]
    cell = min(56.0, max(4.0, 560.0 / max(k, 1)))
    font = min(12.0, max(7.0, cell * 0.8))
    every = math.ceil(
        (font + 1) / cell
    )  # label every n-th row/column when cells are smaller than text
    longest = max((len(_cut(n)) for n in names), default=1)
    tilt = text_width("M" * longest, font) * 0.85 > cell * every - 4  # else they would touch
    label_width = text_width("M" * max((len(r) for r in rows), default=1), font) * 0.85
    left, top = 30.0 + label_width + 8, 62.0
    size = cell * k
    below = (text_width("M" * longest, font) * 0.75 if tilt else font) + 12
    bar_x = left + size + 24
    width = max(bar_x + 20 + 96, text_width(JACOBIAN_TITLE + "  ", 15) + 20,
                text_width(subtitle, 11) + 20)  # fmt: skip
    height = top + size + below + 28
    finite = J[np.isfinite(J)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    colours = [[diverging_colour(float(v) / limit) for v in row] for row in J]
    place = f"translate({num(left)} {num(top)}) scale({num(cell)})"  # cells are unit squares
    body = [
        element("text", JACOBIAN_TITLE, x=width / 2, y=24.0, text_anchor="middle", font_size=15),
        element("text", subtitle, x=width / 2, y=42.0, text_anchor="middle", font_size=11,
                 fill="#444444"),
        f'<g id="cells" transform="{place}" shape-rendering="crispEdges">',
        *_cell_runs(colours),
        "</g>",
    ]  # fmt: skip
    if k <= TEXT_LIMIT:
        body += _cell_values(J, colours, left, top, cell)
    body += _labels(names, rows, left, top, cell, font, every, tilt)
    body += [
        element("text", "logit z_j", x=left + size / 2, y=height - 10, text_anchor="middle"),
        element("text", "softmax output S_i", x=0.0, y=0.0, text_anchor="middle",
                 transform=f"translate(14 {num(top + size / 2)}) rotate(-90)"),
        *_colour_bar(bar_x, top, size, limit),
    ]  # fmt: skip
    return document(width, height, body)


def _cut(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _cell_runs(colours: list[list[str]]) -> list[str]:
    """One unit rectangle per run of equal colours along a row (the group scales them)."""
    out = []
    for i, row in enumerate(colours):
        j = 0
        while j < len(row):
            n = 1
            while j + n < len(row) and row[j + n] == row[j]:
                n += 1
            out.append(f'<rect x="{j}" y="{i}" width="{n}" height="1" fill="{row[j]}"/>')
            j += n
    return out


def _cell_values(
    J: NDArray[Any], colours: list[list[str]], left: float, top: float, cell: float
) -> list[str]:
    out = ['<g id="values" text-anchor="middle" font-size="11">']
    for (i, j), v in np.ndenumerate(J):
        text = "0" if abs(v) < 5e-4 else f"{v:.3f}"
        fill = "white" if is_dark(colours[i][j]) else "black"
        out.append(element("text", text, x=left + (j + 0.5) * cell, y=top + (i + 0.5) * cell + 4,
                            fill=fill))  # fmt: skip
    out.append("</g>")
    return out


def _labels(
    names: list[str],
    rows: list[str],
    left: float,
    top: float,
    cell: float,
    font: float,
    every: int,
    tilt: bool,
) -> list[str]:
    """Row labels ``name (S=…)`` left of the cells, column labels under them (tilted when many)."""
    bottom = top + cell * len(names) + font + 4
    row_text, column_text = [], []
    for i, (name, row) in enumerate(zip(names, rows, strict=True)):
        if i % every:
            continue
        mid = (i + 0.5) * cell
        row_text.append(_tooltip(row, name, x=left - 6, y=top + mid + font / 3, text_anchor="end"))
        if tilt:
            turn = f"translate({num(left + mid + font / 3)} {num(bottom - font)}) rotate(-45)"
            spot: dict[str, object] = {"x": 0.0, "y": 0.0, "text_anchor": "end", "transform": turn}
        else:
            spot = {"x": left + mid, "y": bottom, "text_anchor": "middle"}
        column_text.append(_tooltip(_cut(name), name, **spot))
    return [
        f'<g id="rows" font-size="{num(font)}">',
        *row_text,
        f'</g>\n<g id="columns" font-size="{num(font)}">',
        *column_text,
        "</g>",
    ]


def _tooltip(text: str, whole: str, **attrs: object) -> str:
    """A ``<text>`` whose ``<title>`` child (a browser's tooltip) holds the uncut name."""
    return (
        element("text", text, **attrs)[: -len("</text>")]
        + f"<title>{xml_text(whole)}</title></text>"
    )


def _colour_bar(x: float, top: float, size: float, limit: float) -> list[str]:
    """A vertical gradient from +limit (top, red) to -limit (bottom, blue), with its limits."""
    stops = "".join(
        f'<stop offset="{num(100 * i / (len(RDBU) - 1))}%" stop-color="{c}"/>'
        for i, c in enumerate(reversed(RDBU))
    )
    label_x = x + 26
    return [
        f'<defs><linearGradient id="rdbu" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>',
        '<g id="colour-bar" font-size="11">',
        element("rect", x=x, y=top, width=18.0, height=size, fill="url(#rdbu)", stroke="#444444"),
        element("text", f"{limit:+.3g}", x=label_x, y=top + 9),
        element("text", "0", x=label_x, y=top + size / 2 + 4),
        element("text", f"{-limit:+.3g}", x=label_x, y=top + size),
        element("text", "∂S_i/∂z_j", x=0.0, y=0.0, text_anchor="middle",
                 transform=f"translate({num(label_x + 62)} {num(top + size / 2)}) rotate(-90)"),
        "</g>",
    ]  # fmt: skip


def plot_softmax_jacobian(
    jacobian: NDArray[Any],
    probabilities: NDArray[Any],
    class_names: Sequence[str],
    path: str | Path,
    *,
    subtitle: str = "",
) -> Path:
    """Write :func:`softmax_jacobian_svg` to ``path`` (UTF-8) and return ``path``."""
    svg = softmax_jacobian_svg(jacobian, probabilities, class_names, subtitle=subtitle)
    Path(path).write_text(svg, encoding="utf-8")
    return Path(path)
