"""The run folder's pictures: SVG text written without a plotting library (issue 12)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import softgrad
from softgrad._agnostic._derivatives import softmax_jacobian
from softgrad._agnostic._softmax import softmax
from softgrad.app._plots import (
    JACOBIAN_TITLE,
    loss_curve_svg,
    softmax_jacobian_svg,
)
from softgrad.app._svg import diverging_colour, linear_axis, log_axis, xml_text

NS = {"s": "http://www.w3.org/2000/svg"}
SVG_TAG = "{http://www.w3.org/2000/svg}svg"


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == SVG_TAG
    w, h = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert w > 0
    assert h > 0
    return root


def polylines(root: ET.Element) -> list[list[tuple[float, float]]]:
    return [
        [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        for line in root.findall(".//s:g[@id='curve']/s:polyline", NS)
    ]


def frame(root: ET.Element) -> tuple[float, float, float, float]:
    rect = next(r for r in root.findall("s:rect", NS) if r.get("stroke"))
    x, y = float(rect.get("x")), float(rect.get("y"))
    return x, y, x + float(rect.get("width")), y + float(rect.get("height"))


def texts(root: ET.Element, group: str) -> list[str]:
    return [t.text for t in root.findall(f".//s:g[@id='{group}']/s:text", NS)]


positive = st.floats(min_value=1e-300, max_value=1e300)
anything_finite = st.floats(min_value=-1e300, max_value=1e300)


class TestLossCurve:
    @pytest.mark.parametrize("n", [1, 2, 39, 40, 500])
    def test_one_point_per_step_markers_when_few(self, n):
        curve = 1.1 * 0.9 ** np.arange(n) + 0.2
        root = parse(loss_curve_svg(curve))
        [line] = polylines(root)
        assert len(line) == n
        assert len(root.findall(".//s:g[@id='curve']/s:circle", NS)) == (n if n < 40 else 0)
        xs = [x for x, _ in line]
        assert xs == sorted(xs)
        ys = [y for _, y in line]
        assert ys == sorted(ys)  # a falling objective goes down the page (y grows downwards)

    @given(st.lists(positive, min_size=1, max_size=60))
    def test_every_positive_curve_is_a_valid_log_plot_inside_its_frame(self, curve):
        root = parse(loss_curve_svg(curve, unit="epoch"))
        assert root.find(".//s:g[@id='y-axis']", NS).get("data-scale") == "log"
        left, top, right, bottom = frame(root)
        [line] = polylines(root)
        assert len(line) == len(curve)
        for x, y in line:
            assert left - 0.01 <= x <= right + 0.01
            assert top - 0.01 <= y <= bottom + 0.01
        labels = texts(root, "y-axis")[:-1]
        assert labels
        assert len(set(labels)) == len(labels)
        assert texts(root, "x-axis")[-1] == "epoch"

    @pytest.mark.parametrize("curve", [[0.0, 0.0], [1.0, 0.0], [-3.0, 2.0, 5.0]])
    def test_zero_or_negative_values_use_a_linear_axis(self, curve):
        root = parse(loss_curve_svg(curve))
        assert root.find(".//s:g[@id='y-axis']", NS).get("data-scale") == "linear"
        assert len(polylines(root)[0]) == len(curve)

    def test_constant_curve_sits_mid_frame_with_a_labelled_tick(self):
        root = parse(loss_curve_svg([0.35] * 5))
        _, top, _, bottom = frame(root)
        [line] = polylines(root)
        assert [y for _, y in line] == [pytest.approx((top + bottom) / 2, abs=0.01)] * 5
        assert texts(root, "y-axis")[:-1]

    def test_no_points_is_an_empty_plot_with_a_note(self):
        root = parse(loss_curve_svg([], unit="epoch"))
        assert polylines(root) == []
        assert root.find(".//s:text[@id='note']", NS).text == "no epochs recorded"

    def test_non_finite_values_break_the_line_and_are_marked(self):
        root = parse(loss_curve_svg([1.0, math.nan, 0.5, 0.4, math.inf, 0.25]))
        assert [len(line) for line in polylines(root)] == [1, 2, 1]
        marks = root.find(".//s:path[@id='non-finite']", NS).get("d")
        assert marks.count("M") == 2
        assert "2 non-finite values" in root.find(".//s:text[@id='note']", NS).text
        for element in root.iter():  # no coordinate is NaN or inf
            assert not any(v in str(element.attrib).lower() for v in ("nan", "inf"))

    def test_all_non_finite_draws_no_line(self):
        root = parse(loss_curve_svg([math.nan, -math.inf]))
        assert polylines(root) == []
        assert root.find(".//s:path[@id='non-finite']", NS).get("d").count("M") == 2

    def test_title_is_escaped(self):
        title = "a<b> & \"c\" 'd' é\x07"
        root = parse(loss_curve_svg([1.0, 0.5], title=title))
        assert root.find("s:text", NS).text == title.replace("\x07", "\ufffd")


@given(st.text())
def test_any_text_makes_valid_xml(text):
    # forbidden characters become U+FFFD; the parser reads line ends as "\n" (XML 1.0, 2.11)
    root = ET.fromstring(f'<a title="{xml_text(text)}">{xml_text(text)}</a>')
    allowed = "".join(
        c if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c > "\uffff"
        else "\ufffd"
        for c in text
    )  # fmt: skip
    assert (root.text or "") == allowed.replace("\r\n", "\n").replace("\r", "\n")
    assert root.get("title") is not None


class TestAxes:
    @given(anything_finite, anything_finite, st.booleans())
    @example(0.0, 5e-324, False)  # a span that underflows: pad and step were 0
    @example(-5e-324, 5e-324, True)
    @example(1e-310, 3e-310, False)
    @example(-7.3e-301, -2.8e-301, True)  # whole-number ticks in a range without one
    def test_linear_ticks_sorted_inside_distinct(self, a, b, integer):
        lo, hi = min(a, b), max(a, b)
        axis = linear_axis(lo, hi, integer=integer)
        assert axis.lo <= lo
        assert hi <= axis.hi
        assert 1 <= len(axis.ticks) <= 12
        assert list(axis.ticks) == sorted(axis.ticks)
        assert all(axis.lo <= t <= axis.hi for t in axis.ticks)
        assert len(set(axis.labels)) == len(axis.labels)
        if integer:
            assert all(t == int(t) for t in axis.ticks)

    @given(positive, positive)
    def test_log_ticks_sorted_inside_distinct(self, a, b):
        lo, hi = min(a, b), max(a, b)
        axis = log_axis(lo, hi)
        assert axis.log
        assert axis.lo <= lo
        assert hi <= axis.hi
        assert 2 <= len(axis.ticks) <= 16
        assert all(axis.lo <= t <= axis.hi for t in axis.ticks)
        assert len(set(axis.labels)) == len(axis.labels)
        assert all(0 <= axis.fraction(t) <= 1 for t in axis.ticks)

    def test_log_ticks_prefer_decades_then_1_2_5(self):
        assert log_axis(1e-3, 10.0).labels == ("0.001", "0.01", "0.1", "1", "10")
        assert log_axis(0.15, 6.0).labels == ("0.2", "0.5", "1", "2", "5")
        wide = log_axis(1e-300, 1e300).labels
        assert "1" in wide
        assert len(wide) <= 8
        assert all(re.fullmatch(r"1(e-?\d+)?", s) for s in wide)

    def test_linear_labels_show_the_step(self):
        assert linear_axis(0.35, 0.3504).labels[:2] == ("0.3500", "0.3501")
        assert linear_axis(0.0, 3e7).labels[:2] == ("0", "5.0e6")


class TestColours:
    @given(st.floats(min_value=-1, max_value=1))
    def test_sign_picks_the_hue(self, t):
        colour = diverging_colour(t)
        r, b = int(colour[1:3], 16), int(colour[5:7], 16)
        if t > 0.05:
            assert r > b
        elif t < -0.05:
            assert b > r

    def test_ends_centre_clipping_and_nan(self):
        assert diverging_colour(-1.0) == diverging_colour(-7.0) == "#053061"
        assert diverging_colour(0.0) == "#f7f7f7"
        assert diverging_colour(1.0) == diverging_colour(3.0) == "#67001f"
        assert diverging_colour(math.nan) == "#999999"


def cells(root: ET.Element) -> list[list[str]]:
    """The colour of every cell, row by row, expanding the runs."""
    grid: dict[int, list[str]] = {}
    for rect in root.findall(".//s:g[@id='cells']/s:rect", NS):
        x, y, n = int(rect.get("x")), int(rect.get("y")), int(rect.get("width"))
        assert len(grid.setdefault(y, [])) == x  # runs left to right, no gap, no overlap
        grid[y] += [rect.get("fill")] * n
    return [grid[i] for i in sorted(grid)]


def jacobian_of(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(softmax_jacobian(z)), np.asarray(softmax(z))


class TestJacobian:
    @pytest.mark.parametrize("k", [2, 3, 12])
    def test_cells_values_and_labels(self, k):
        J, S = jacobian_of(np.random.default_rng(k).normal(size=k) * 2)
        names = [f"class {i}" for i in range(k)]
        root = parse(softmax_jacobian_svg(J, S, names, subtitle="test sample 0"))
        limit = np.abs(J).max()
        assert cells(root) == [[diverging_colour(v / limit) for v in row] for row in J]
        values = texts(root, "values")
        assert len(values) == k * k
        assert values == ["0" if abs(v) < 5e-4 else f"{v:.3f}" for v in J.ravel()]
        assert texts(root, "rows") == [f"class {i} (S={p:.2f})" for i, p in enumerate(S)]
        assert texts(root, "columns") == names
        heading = [t.text for t in root.findall("s:text", NS)][:2]
        assert heading == [JACOBIAN_TITLE, "test sample 0"]
        bar = texts(root, "colour-bar")
        assert bar[0] == f"{limit:+.3g}"
        assert bar[2] == f"{-limit:+.3g}"

    def test_white_text_on_dark_cells(self):
        J, S = jacobian_of(np.array([3.0, 0.0, 0.0]))
        root = parse(softmax_jacobian_svg(J, S, ["a", "b", "c"]))
        colours = [c for row in cells(root) for c in row]
        fills = [t.get("fill") for t in root.findall(".//s:g[@id='values']/s:text", NS)]
        assert fills[0] == "white"
        assert colours[0] == "#67001f"
        assert fills[-1] == "black"

    def test_hostile_class_names_round_trip(self):
        names = ["<script>", "a&b", "say \"hi\" 'x'", "é中🙂", "ctrl\x01\x1f", "x" * 40]
        J, S = jacobian_of(np.linspace(-1, 1, len(names)))
        root = parse(softmax_jacobian_svg(J, S, names))
        whole = [
            t.find("s:title", NS).text for t in root.findall(".//s:g[@id='columns']/s:text", NS)
        ]
        expected = [n.replace("\x01", "\ufffd").replace("\x1f", "\ufffd") for n in names]
        assert whole == expected
        shown = texts(root, "columns")
        assert shown[:5] == expected[:5]
        assert shown[5] == "x" * 23 + "…"

    def test_hundred_classes_stay_small(self):
        z = np.random.default_rng(0).normal(size=100)
        J, S = jacobian_of(z)
        text = softmax_jacobian_svg(J, S, [f"c{i}" for i in range(100)])
        root = parse(text)
        grid = cells(root)
        assert [len(row) for row in grid] == [100] * 100
        assert root.find(".//s:g[@id='values']", NS) is None
        assert len(text.encode()) < 400_000
        assert 0 < len(texts(root, "rows")) <= 100

    def test_shapes_must_agree(self):
        J, S = jacobian_of(np.zeros(3))
        with pytest.raises(ValueError, match=r"jacobian must be \(K, K\).*got jacobian \(3, 3\)"):
            softmax_jacobian_svg(J, S, ["a", "b"])


def test_train_does_not_import_matplotlib(tmp_path):
    # a fresh process runs the whole `softgrad train` on iris, then reports its modules
    src = str(Path(softgrad.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys\nfrom softgrad.cli import main\n"
        f"try:\n    main(['train', '-q', '--out', {str(tmp_path / 'r')!r}])\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'PIL', 'pyparsing', 'fontTools', 'mpl_toolkits')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^LOADED \[\]$", done.stdout, re.MULTILINE), done.stdout
    for name in ("loss_curve.svg", "softmax_jacobian.svg"):
        parse((tmp_path / "r" / name).read_text(encoding="utf-8"))
