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
