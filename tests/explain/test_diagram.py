"""Tests of the dependency diagram."""

from __future__ import annotations

from pathlib import Path

import pytest

from softgrad.explain import derive, draw_dependencies


class TestDiagram:
    @pytest.mark.parametrize("suffix", [".png", ".svg"])
    def test_writes_image(self, suffix: str, tmp_path: Path) -> None:
        out = draw_dependencies(3, tmp_path / f"deps{suffix}")
        data = out.read_bytes()
        assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data

    @pytest.mark.parametrize("n", [1, 6])
    def test_sizes(self, n: int, tmp_path: Path) -> None:
        assert derive(min(n, 3) if n == 1 else n).diagram(tmp_path / "d.png").exists()

    def test_refuses_large_n(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"n must be at most 6.*got n=7"):
            draw_dependencies(7, tmp_path / "d.png")

    def test_refuses_unknown_format(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="path must end in"):
            draw_dependencies(3, tmp_path / "d.gif")

    def test_refuses_bad_n(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="n must be an int"):
            draw_dependencies(2.0, tmp_path / "d.png")  # type: ignore[arg-type]


class TestLayout:
    """Issue 13 item 10: the title clears the column headers; arrows into Σ show their heads."""

    @pytest.mark.parametrize("n", [1, 2, 3, 6])
    def test_title_clears_the_column_headers(self, n: int) -> None:
        from softgrad.explain._diagram import _figure

        fig = _figure(n)
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        (ax,) = fig.axes
        headers = [t for t in ax.texts if t.get_text() in {"inputs", "exponentials", "outputs"}]
        assert len(headers) == 3
        for header in headers:
            assert header.get_window_extent(renderer).y1 < title.y0, (n, header.get_text())

    @pytest.mark.parametrize("n", [1, 3, 6])
    def test_arrows_into_sigma_end_outside_its_box(self, n: int) -> None:
        from matplotlib.patches import FancyArrowPatch

        from softgrad.explain._diagram import _figure

        fig = _figure(n)
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        (ax,) = fig.axes
        (sigma,) = [t for t in ax.texts if t.get_text().startswith(r"$\Sigma")]
        box = sigma.get_bbox_patch().get_window_extent(renderer)
        into = []
        for arrow in ax.patches:
            if not isinstance(arrow, FancyArrowPatch):
                continue
            x_end, y_end = arrow._posA_posB[1]
            if abs(x_end - 2.0) < 0.6:  # an arrow that ends at Σ
                into.append(ax.transData.transform((x_end, y_end)))
        assert len(into) == n
        for x, y in into:
            inside = box.x0 + 1 < x < box.x1 - 1 and box.y0 + 1 < y < box.y1 - 1
            assert not inside, (n, x, y, box)
