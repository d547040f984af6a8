"""Tests of the rendered derivation: text, Markdown, LaTeX and HTML documents.

Snapshots of the n = 3 text and Markdown live in tests/explain/snapshots/;
regenerate them with ``SOFTGRAD_UPDATE_SNAPSHOTS=1 pytest tests/explain``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from softgrad.explain import derive

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("SOFTGRAD_UPDATE_SNAPSHOTS") == "1"


def _snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing snapshot {path}; run with SOFTGRAD_UPDATE_SNAPSHOTS=1")
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed; if intended, regenerate with SOFTGRAD_UPDATE_SNAPSHOTS=1"
    )


class TestRender:
    def test_text_snapshot(self) -> None:
        _snapshot("derive_n3.txt", derive(3).to_text())

    def test_markdown_snapshot(self) -> None:
        _snapshot("derive_n3.md", derive(3).to_markdown())

    @pytest.mark.parametrize("n", [1, 3, 12])
    def test_text_names_every_rule(self, n: int) -> None:
        d = derive(n)
        text = d.to_text()
        for number, step in enumerate(d.steps, start=1):
            assert f"Step {number} [{step.rule_text}]" in text
        assert str(d) == text

    def test_markdown_math(self) -> None:
        md = derive(3).to_markdown()
        assert md.count("$$") == 2 * len(derive(3).steps)
        assert r"\frac{\partial S_{1}}{\partial z_{1}}" in md

    @pytest.mark.parametrize("n", [2, 3, 12])
    def test_latex_document(self, n: int, tmp_path: Path) -> None:
        d = derive(n)
        tex = d.to_latex()
        assert tex.startswith(r"\documentclass")
        assert tex.count(r"\begin{document}") == 1
        assert tex.rstrip().endswith(r"\end{document}")
        begins = re.findall(r"\\begin\{(\w+\*?)\}", tex)
        ends = re.findall(r"\\end\{(\w+\*?)\}", tex)
        assert sorted(begins) == sorted(ends)
        assert tex.count(r"\paragraph{Step") == len(d.steps)
        body = tex.split(r"\begin{document}")[1]
        assert all(ord(c) < 128 for c in body), "pdflatex needs ASCII (or declared) input"
        if shutil.which("pdflatex") is None:
            return
        (tmp_path / "derive.tex").write_text(tex, encoding="utf-8")
        run = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "derive.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-2000:]
        assert (tmp_path / "derive.pdf").stat().st_size > 1000

    @pytest.mark.parametrize("n", [1, 3, 12])
    def test_html_page(self, n: int) -> None:
        d = derive(n)
        page = d.to_html()

        class Collect(HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.tags: list[str] = []
                self.refs: list[str] = []

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                self.tags.append(tag)
                self.refs += [v or "" for k, v in attrs if k in {"src", "href"}]

        parser = Collect()
        parser.feed(page)
        parser.close()
        assert parser.tags.count("math") == len(d.steps)
        assert "script" not in parser.tags
        assert "link" not in parser.tags
        assert not [r for r in parser.refs if r.startswith(("http://", "https://"))]
        assert "<mfrac>" in page
        for step in d.steps:
            assert step.rule_text.replace("'", "&#x27;") in page or step.rule_text in page


class TestWording:
    """Issue 13 item 10: each wording or rendering fix, pinned."""

    def test_outputs_are_called_probabilities(self) -> None:
        text = derive(3).to_text()
        assert "not probabilities" not in text
        assert "probability distribution" in text

    @pytest.mark.parametrize("n", [3, 12])
    def test_html_writes_s_i_before_the_bracket(self, n: int) -> None:
        d = derive(n)
        (step,) = [s for s in d.steps if s.rule == "cases"]
        number = d.steps.index(step) + 1
        page = d.to_html()
        block = page.split(f'id="step-{number}"')[1].split("</math>")[0]
        rhs = block.split("<mo>=</mo>")[1]
        assert rhs.index("<mi>S</mi>") < rhs.index("<mi>δ</mi>"), rhs

    @pytest.mark.parametrize("n", [1, 3, 12])
    def test_e_is_a_plain_e(self, n: int) -> None:
        page = derive(n).to_html()
        assert "&ExponentialE;" not in page
        assert "ⅇ" not in page
        assert "<mi>e</mi>" in page

    @pytest.mark.parametrize("n", [1, 3, 12])
    def test_latex_prose_writes_powers_of_e_as_math(self, n: int) -> None:
        tex = derive(n).to_latex()
        assert r"\^{}" not in tex
        assert "$ e^{z_{1}}$" in tex or "$ e^{z_{j}}$" in tex or "$ e^{z}$" in tex

    def test_one_output_mentions_no_second_output(self) -> None:
        d = derive(1)
        for render in (d.to_text, d.to_markdown, d.to_html):
            out = render()
            for absent in ("i ≠ j gives", "g₂", "S₂", "for i ≠ j"):
                assert absent not in out, (render.__name__, absent)

    def test_indexed_html_has_no_parentheses_around_a_product(self) -> None:
        d = derive(12)
        (chain,) = [s for s in d.steps if s.rule == "chain" and "every output" in s.title]
        number = d.steps.index(chain) + 1
        block = derive(12).to_html().split(f'id="step-{number}"')[1].split("</math>")[0]
        assert "<mo>(</mo>" not in block, block

    def test_page_names_math_fonts(self) -> None:
        page = derive(3).to_html()
        css = page.split("<style>")[1].split("</style>")[0]
        rule = css[css.index("math {") :].split("}")[0]
        for font in ("STIX Two Math", "Cambria Math", "Latin Modern Math", "DejaVu Math TeX Gyre"):
            assert f'"{font}"' in rule
        assert rule.rstrip().rstrip(";").endswith("math")
