"""Pictures of a training run, written as SVG text: the loss curve and one softmax Jacobian.

No plotting library is imported: ``softgrad train`` would otherwise spend more
time importing matplotlib (~1.9 s) than fitting. Each picture is a standalone
SVG 1.1 file (``xmlns``, ``viewBox``, ``width``/``height``) that any browser
opens. Every piece of text passes through :func:`xml_text` (class names come
from users' CSV files), numbers are written with two decimals at most, and
the groups carry ``id`` attributes (``curve``, ``cells``, ``y-axis`` with
``data-scale``) so that tests can read the structure back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Axis",
    "diverging_colour",
    "linear_axis",
    "log_axis",
    "loss_curve_svg",
    "plot_loss_curve",
    "plot_softmax_jacobian",
    "softmax_jacobian_svg",
    "xml_text",
]

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
CHAR_WIDTH = 0.6  # a sans-serif character's mean width, in ems: for laying out labels

# ColorBrewer "RdBu", 11 classes (Cynthia Brewer, colorbrewer2.org), from blue to red:
# the colour scale of negative (blue) through 0 (near-white) to positive (red) values.
RDBU = (
    "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
)  # fmt: skip

# characters XML 1.0 forbids even when escaped (control characters, lone surrogates)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """``text`` as XML character data or attribute value: escaped, forbidden characters replaced.

    Examples
    --------
    >>> xml_text('a<b & "c"\x01')
    'a&lt;b &amp; &quot;c&quot;\ufffd'
    """
    s = _NOT_XML.sub("\ufffd", str(text))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _num(x: float) -> str:
    """A coordinate with two decimals at most: ``12.5``, ``3``, never ``-0``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _element(tag: str, text: str | None = None, **attrs: object) -> str:
    """One SVG element; ``font_size=9`` becomes ``font-size="9"``, floats are shortened."""
    parts = [tag]
    for name, value in attrs.items():
        shown = _num(value) if isinstance(value, float) else xml_text(value)
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{shown}"')
    opening = " ".join(parts)
    return f"<{opening}/>" if text is None else f"<{opening}>{xml_text(text)}</{tag}>"


def _document(width: float, height: float, body: Iterable[str]) -> str:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{FONT}" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n'
    )
    return head + "\n".join(body) + "\n</svg>\n"


def _text_width(text: str, size: float) -> float:
    return CHAR_WIDTH * size * len(text)


# -- axes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """A data interval ``[lo, hi]``, its ticks and their labels, on a linear or log scale."""

    lo: float
    hi: float
    ticks: tuple[float, ...]
    labels: tuple[str, ...]
    log: bool = False

    def fraction(self, value: float) -> float:
        """Where ``value`` lies between ``lo`` (0) and ``hi`` (1) on this scale."""
        if self.log:
            a, b = math.log10(self.lo), math.log10(self.hi)
            return (math.log10(value) - a) / (b - a)
        # halves first: hi - lo overflows when both are near the largest float
        return (value / 2 - self.lo / 2) / (self.hi / 2 - self.lo / 2)


def _short(label: str) -> str:
    """``1e-05`` -> ``1e-5``, ``2e+300`` -> ``2e300``."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", label)


def _nice_step(raw: float) -> float:
    """The 1, 2 or 5 times a power of ten nearest ``raw`` (> 0)."""
    e = math.floor(math.log10(raw))
    f = raw / 10.0**e
    m = 1 if f < 1.5 else 2 if f < 3.5 else 5 if f < 7.5 else 10
    return float(f"{m}e{e}")


def linear_axis(lo: float, hi: float, *, integer: bool = False, count: int = 5) -> Axis:
    """A linear axis over ``[lo, hi]`` padded by 5 %, with about ``count`` 1-2-5 ticks.

    Parameters
    ----------
    lo, hi : float
        Finite data limits, ``lo <= hi``; equal limits are widened around the value.
    integer : bool, default False
        Ticks at whole numbers only (iterations).
    count : int, default 5

    Examples
    --------
    >>> linear_axis(0.0, 1.0).labels
    ('0.0', '0.2', '0.4', '0.6', '0.8', '1.0')
    >>> linear_axis(1, 1, integer=True).ticks
    (1.0,)
    """
    big = max(abs(lo), abs(hi))
    if hi - lo <= 1e-12 * big or hi == lo:  # constant (to float precision): widen around it
        pad = big * 0.5 if big else 1.0
        pad = 0.5 if integer and big else pad
    else:
        pad = hi / 20 - lo / 20
    lo, hi = max(lo - pad, -np.finfo(float).max), min(hi + pad, np.finfo(float).max)
    step = _nice_step(hi / count - lo / count)
    if integer:
        step = max(step, 1.0)
    ticks = tuple(k * step + 0.0 for k in range(math.ceil(lo / step), math.floor(hi / step) + 1))
    top = max((abs(t) for t in ticks), default=0.0)
    if top >= 1e6 or 0 < top < 1e-4:
        digits = min(max(math.floor(math.log10(top)) - math.floor(math.log10(step)), 0), 16)
        labels = tuple(_short(f"{t:.{digits}e}") for t in ticks)
    else:
        decimals = max(0, -math.floor(math.log10(step)))
        labels = tuple(f"{t:.{decimals}f}" for t in ticks)
    return Axis(lo, hi, ticks, labels)


def log_axis(lo: float, hi: float, *, most: int = 8) -> Axis:
    """A log axis over ``[lo, hi]`` (both > 0) with ticks at decades, else 1-2-5, else 1…9.

    The first set that puts at least three ticks inside the (padded) range wins;
    a range too narrow for any of them gets linear ticks, placed on the log scale.

    Examples
    --------
    >>> log_axis(1e-3, 10.0).labels
    ('0.001', '0.01', '0.1', '1', '10')
    >>> log_axis(0.3, 1.1).labels
    ('0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '1')
    """
    a, b = math.log10(lo), math.log10(hi)
    pad = 0.3 if b - a < 1e-9 else (b - a) / 20
    a, b = max(a - pad, -323.0), min(b + pad, 308.2)
    lo, hi = 10.0**a, 10.0**b
    decades = range(math.floor(a), math.ceil(b) + 1)
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [v for e in decades for m in mantissas if lo <= (v := float(f"{m}e{e}")) <= hi]
        if mantissas == (1,) and len(ticks) > most:  # every n-th decade
            ticks = ticks[:: math.ceil(len(ticks) / most)]
        if len(ticks) >= 3:
            labels = tuple(_short(f"{t:.6g}") for t in ticks)
            return Axis(lo, hi, tuple(ticks), labels, log=True)
    narrow = linear_axis(lo, hi)
    inside = [(t, s) for t, s in zip(narrow.ticks, narrow.labels, strict=True) if lo <= t <= hi]
    return Axis(lo, hi, tuple(t for t, _ in inside), tuple(s for _, s in inside), log=True)


# -- colours ----------------------------------------------------------------------------------


def diverging_colour(t: float) -> str:
    """The RdBu colour of ``t`` in [-1, 1]: blue below 0, near-white at 0, red above.

    Linear interpolation, in sRGB, between the 11 ColorBrewer anchors of :data:`RDBU`;
    ``t`` outside [-1, 1] is clipped, NaN is grey.

    Examples
    --------
    >>> diverging_colour(-1.0), diverging_colour(0.0), diverging_colour(1.0)
    ('#053061', '#f7f7f7', '#67001f')
    """
    if math.isnan(t):
        return "#999999"
    position = (min(max(t, -1.0), 1.0) + 1.0) / 2 * (len(RDBU) - 1)
    i = min(int(position), len(RDBU) - 2)
    w = position - i
    left, right = _rgb(RDBU[i]), _rgb(RDBU[i + 1])
    return "#" + "".join(f"{round((1 - w) * p + w * q):02x}" for p, q in zip(left, right, strict=True))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _is_dark(colour: str) -> bool:
    """Whether white text reads better than black on ``colour`` (Rec. 709 luma below 0.5)."""
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128


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
        _element("text", title or "training loss", x=width / 2, y=26.0, text_anchor="middle",
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
        body.append(_element("text", note, id="note", x=frame.left + frame.width - 6,
                             y=frame.top + 16, text_anchor="end", fill=MARK_COLOUR))  # fmt: skip
    return _document(width, height, body)


def _axes(frame: _Frame, x_title: str, y_title: str) -> list[str]:
    """Frame, light grid, tick labels and axis titles."""
    left, top, right, bottom = frame.left, frame.top, frame.left + frame.width, frame.top + frame.height
    grid, labels = [], []
    for t, s in zip(frame.x.ticks, frame.x.labels, strict=True):
        px = left + frame.x.fraction(t) * frame.width
        grid.append(f"M{_num(px)} {_num(top)}V{_num(bottom)}")
        labels.append(_element("text", s, x=px, y=bottom + 16, text_anchor="middle"))
    x_axis = "\n".join(labels)
    labels = []
    for t, s in zip(frame.y.ticks, frame.y.labels, strict=True):
        py = top + (1 - frame.y.fraction(t)) * frame.height
        grid.append(f"M{_num(left)} {_num(py)}H{_num(right)}")
        labels.append(_element("text", s, x=left - 6, y=py + 4, text_anchor="end"))
    return [
        _element("path", id="grid", d="".join(grid), stroke="#dddddd", fill="none"),
        _element("rect", x=left, y=top, width=frame.width, height=frame.height, fill="none",
                 stroke="#444444"),
        f'<g id="x-axis">\n{x_axis}\n'
        + _element("text", x_title, x=left + frame.width / 2, y=bottom + 40, text_anchor="middle")
        + "\n</g>",
        f'<g id="y-axis" data-scale="{"log" if frame.y.log else "linear"}">\n'
        + "\n".join(labels) + "\n"
        + _element("text", y_title, x=0.0, y=0.0, text_anchor="middle",
                   transform=f"translate(18 {_num(top + frame.height / 2)}) rotate(-90)")
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
        coords = " ".join(f"{_num(px)},{_num(py)}" for px, py in chosen)
        out.append(_element("polyline", points=coords, fill="none", stroke=CURVE_COLOUR,
                            stroke_width=1.5, stroke_linejoin="round"))  # fmt: skip
    if markers:
        out += [_element("circle", cx=px, cy=py, r=2.5, fill=CURVE_COLOUR) for px, py in points]
    out.append("</g>")
    gaps = np.flatnonzero(~finite) + 1.0
    if gaps.size:
        top, bottom = frame.top, frame.top + frame.height
        d = "".join(f"M{_num(frame.px(float(s), 1.0)[0])} {_num(top)}V{_num(bottom)}" for s in gaps)
        out.append(_element("path", id="non-finite", d=d, stroke=MARK_COLOUR,
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
        A standalone SVG document.

    Examples
    --------
    >>> import xml.etree.ElementTree as ET
    >>> s = np.array([0.7, 0.2, 0.1])
    >>> svg = ET.fromstring(softmax_jacobian_svg(np.diag(s) - np.outer(s, s), s, ["a", "b", "c"]))
    >>> ns = {"s": "http://www.w3.org/2000/svg"}
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
    font = min(12.0, cell * 0.8)
    every = math.ceil(9.0 / cell)  # label every n-th row/column when cells are smaller than text
    longest = max((len(_cut(n)) for n in names), default=1)
    tilt = _text_width("M" * longest, font) * 0.85 > cell * every - 4  # else they would touch
    label_width = _text_width("M" * max((len(r) for r in rows), default=1), font) * 0.85
    left, top = 30.0 + label_width + 8, 62.0
    size = cell * k
    below = (_text_width("M" * longest, font) * 0.75 if tilt else font) + 12
    bar_x = left + size + 24
    width = max(bar_x + 20 + 96, _text_width(JACOBIAN_TITLE + "  ", 15) + 20,
                _text_width(subtitle, 11) + 20)  # fmt: skip
    height = top + size + below + 28
    finite = J[np.isfinite(J)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    colours = [[diverging_colour(float(v) / limit) for v in row] for row in J]
    body = [
        _element("text", JACOBIAN_TITLE, x=width / 2, y=24.0, text_anchor="middle", font_size=15),
        _element("text", subtitle, x=width / 2, y=42.0, text_anchor="middle", font_size=11,
                 fill="#444444"),
        f'<g id="cells" transform="translate({_num(left)} {_num(top)}) scale({_num(cell)})" '
        'shape-rendering="crispEdges">',
        *_cell_runs(colours),
        "</g>",
    ]  # fmt: skip
    if k <= TEXT_LIMIT:
        body += _cell_values(J, colours, left, top, cell)
    body += _labels(names, rows, left, top, cell, font, every, tilt)
    body += [
        _element("text", "logit z_j", x=left + size / 2, y=height - 10, text_anchor="middle"),
        _element("text", "softmax output S_i", x=0.0, y=0.0, text_anchor="middle",
                 transform=f"translate(14 {_num(top + size / 2)}) rotate(-90)"),
        *_colour_bar(bar_x, top, size, limit),
    ]  # fmt: skip
    return _document(width, height, body)


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
        fill = "white" if _is_dark(colours[i][j]) else "black"
        out.append(_element("text", text, x=left + (j + 0.5) * cell, y=top + (i + 0.5) * cell + 4,
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
            spot = dict(x=0.0, y=0.0, text_anchor="end",
                        transform=f"translate({_num(left + mid + font / 3)} {_num(bottom - font)}) rotate(-45)")  # fmt: skip
        else:
            spot = dict(x=left + mid, y=bottom, text_anchor="middle")
        column_text.append(_tooltip(_cut(name), name, **spot))
    return [
        f'<g id="rows" font-size="{_num(font)}">',
        *row_text,
        f'</g>\n<g id="columns" font-size="{_num(font)}">',
        *column_text,
        "</g>",
    ]


def _tooltip(text: str, whole: str, **attrs: object) -> str:
    """A ``<text>`` whose ``<title>`` child (a browser's tooltip) holds the uncut name."""
    return _element("text", text, **attrs)[: -len("</text>")] + f"<title>{xml_text(whole)}</title></text>"


def _colour_bar(x: float, top: float, size: float, limit: float) -> list[str]:
    """A vertical gradient from +limit (top, red) to -limit (bottom, blue), with its limits."""
    stops = "".join(
        f'<stop offset="{_num(100 * i / (len(RDBU) - 1))}%" stop-color="{c}"/>'
        for i, c in enumerate(reversed(RDBU))
    )
    label_x = x + 26
    return [
        f'<defs><linearGradient id="rdbu" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>',
        '<g id="colour-bar" font-size="11">',
        _element("rect", x=x, y=top, width=18.0, height=size, fill="url(#rdbu)", stroke="#444444"),
        _element("text", f"{limit:+.3g}", x=label_x, y=top + 9),
        _element("text", "0", x=label_x, y=top + size / 2 + 4),
        _element("text", f"{-limit:+.3g}", x=label_x, y=top + size),
        _element("text", "∂S_i/∂z_j", x=0.0, y=0.0, text_anchor="middle",
                 transform=f"translate({_num(label_x + 62)} {_num(top + size / 2)}) rotate(-90)"),
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
