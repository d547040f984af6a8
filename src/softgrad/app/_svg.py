"""SVG as text: escaping, elements, axes with readable ticks and a diverging colour scale.

The primitives of :mod:`softgrad.app._plots`, which draws the run folder's
pictures without a plotting library. Numbers are written with two decimals at
most (:func:`num`) so the files stay small; all text passes through
:func:`xml_text`, so any class name yields a valid document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Axis",
    "diverging_colour",
    "document",
    "element",
    "is_dark",
    "linear_axis",
    "log_axis",
    "num",
    "text_width",
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


def _allowed(c: str) -> bool:
    """Whether XML 1.0 allows ``c`` (escaped or not): no control characters, no lone surrogates."""
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def xml_text(text: object) -> str:
    """``text`` as XML character data or attribute value: escaped, forbidden characters replaced.

    Examples
    --------
    >>> xml_text('a<b & "c"\x01')
    'a&lt;b &amp; &quot;c&quot;\ufffd'
    """
    s = str(text)
    if not (s.isascii() and s.isprintable()):  # a regex would cost 10 ms to compile
        s = "".join(c if _allowed(c) else "\ufffd" for c in s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def num(x: float) -> str:
    """A coordinate with two decimals at most: ``12.5``, ``3``, never ``-0``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def element(tag: str, text: str | None = None, **attrs: object) -> str:
    """One SVG element; ``font_size=9`` becomes ``font-size="9"``, floats are shortened."""
    parts = [tag]
    for name, value in attrs.items():
        shown = num(value) if isinstance(value, float) else xml_text(value)
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{shown}"')
    opening = " ".join(parts)
    return f"<{opening}/>" if text is None else f"<{opening}>{xml_text(text)}</{tag}>"


def document(width: float, height: float, body: Iterable[str]) -> str:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" font-family="{FONT}" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n'
    )
    return head + "\n".join(body) + "\n</svg>\n"


def text_width(text: str, size: float) -> float:
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
        pad = 0.5 if integer and 0 < big < 1e12 else big * 0.5 if big else 1.0
    else:
        pad = hi / 20 - lo / 20
    # data at the subnormal scale (0 to 5e-324): a pad and a step that underflow to 0
    pad = max(pad, np.finfo(float).tiny)
    lo, hi = max(lo - pad, -np.finfo(float).max), min(hi + pad, np.finfo(float).max)
    step = _nice_step(hi / count - lo / count)
    if integer:
        step = max(step, 1.0)
        if math.ceil(lo) > hi:  # a range narrower than 1 between whole numbers: reach one
            hi = float(math.ceil(lo))
    ticks = tuple(k * step + 0.0 for k in range(math.ceil(lo / step), math.floor(hi / step) + 1))
    top = max((abs(t) for t in ticks), default=0.0)
    if top >= 1e6 or 0 < top < 1e-4:
        digits = min(max(math.floor(math.log10(top)) - math.floor(math.log10(step)), 0), 16)
        labels = tuple(_short(f"{t:.{digits}e}") if t else "0" for t in ticks)
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
    # padded while the limits stay normal floats (no padding at the ends of the float range)
    lo, hi = (
        (10.0 ** (a - pad) if a - pad > -307 else lo),
        (10.0 ** (b + pad) if b + pad < 308 else hi),
    )
    a, b = math.log10(lo), math.log10(hi)
    stride = max(1, math.ceil((math.floor(b) - math.ceil(a) + 1) / most))  # every stride-th decade
    decades = range(math.floor(a), math.ceil(b) + 1)
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [
            v
            for e in decades
            if mantissas != (1,) or e % stride == 0
            for m in mantissas
            if lo <= (v := float(f"{m}e{e}")) <= hi
        ]
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
    return "#" + "".join(
        f"{round((1 - w) * p + w * q):02x}" for p, q in zip(left, right, strict=True)
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def is_dark(colour: str) -> bool:
    """Whether white text reads better than black on ``colour`` (Rec. 709 luma below 0.5)."""
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128
