"""The derivation page in headless Chromium (skipped when Chromium is not installed).

This is also the documented way to look at the page as a browser draws it
(issue 13 item 9: named math fonts, so brackets stretch)::

    softgrad derive -n 3 --format html -o derive.html
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \\
        --disable-component-update --no-first-run --window-size=1100,2400 \\
        --screenshot=derive.png "file://$PWD/derive.html"

Set ``SOFTGRAD_KEEP_SCREENSHOT=DIR`` to keep the PNG this test takes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from softgrad.explain import derive

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page, shot = tmp_path / "derive.html", tmp_path / "derive.png"
    page.write_text(derive(3).to_html(), encoding="utf-8")
    run = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1100,2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    keep = os.environ.get("SOFTGRAD_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, Path(keep) / "derive.png")
    # the page is not blank: a blank 1100 × 2400 PNG compresses to a few kB
    assert len(data) > 50_000
