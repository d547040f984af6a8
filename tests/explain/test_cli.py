"""``softgrad derive`` through click's CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from softgrad.cli import cli


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, ["derive", *args])


def test_default_is_the_posts_three_outputs() -> None:
    result = _run()
    assert result.exit_code == 0, result.output
    out = result.output
    assert "n = 3" in out
    for phrase in (
        "Rule 3, quotient",
        "Rule 2, exponential",
        "Rule 4, sum",
        "Rule 1, independence",
    ):
        assert phrase in out
    assert out.index("general rule") < out.index("diag(S)") < out.index("chain rule")
    assert "S₁ - y₁" in out


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [("text", "Step 1 ["), ("markdown", "$$"), ("latex", r"\documentclass"), ("html", "<math")],
)
def test_formats(fmt: str, marker: str) -> None:
    result = _run("-n", "2", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert marker in result.output


def test_output_and_diagram(tmp_path: Path) -> None:
    page, image = tmp_path / "d.html", tmp_path / "d.png"
    result = _run("--format", "html", "--output", str(page), "--diagram", str(image))
    assert result.exit_code == 0, result.output
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert image.read_bytes().startswith(b"\x89PNG")


def test_large_n_uses_the_indexed_derivation() -> None:
    result = _run("-n", "20")
    assert result.exit_code == 0, result.output
    assert "indexed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-n", "0"), "-n"),
        (("-n", "three"), "-n"),
        (("--format", "pdf"), "--format"),
        (("-n", "7", "--diagram", "x.png"), "--diagram"),
        (("--diagram", "x.gif"), "--diagram"),
    ],
    ids=["zero", "word", "format", "diagram-n", "diagram-suffix"],
)
def test_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unwritable_output_is_a_runtime_error(tmp_path: Path) -> None:
    result = _run("-n", "1", "--output", str(tmp_path / "missing" / "d.txt"))
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["HTML", "Html", "MARKDOWN", "LaTeX", "Text"])
def test_format_in_any_case(fmt: str) -> None:
    result = _run("-n", "1", "--format", fmt)
    assert result.exit_code == 0, result.output
    marker = {"html": "<math", "markdown": "$$", "latex": r"\documentclass", "text": "Step 1 ["}
    assert marker[fmt.lower()] in result.output


def test_unwritable_diagram_fails_before_printing(tmp_path: Path) -> None:
    # the diagram's folder does not exist: refused before the derivation is printed
    result = _run("-n", "3", "--diagram", str(tmp_path / "missing" / "d.png"))
    assert result.exit_code == 2, result.output
    assert "--diagram" in result.output
    assert "does not exist" in result.output
    assert "Step 1" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_diagram_folder_fails_before_printing(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = _run("-n", "3", "--diagram", str(folder / "d.png"))
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 2, result.output
    assert "read-only" in result.output
    assert "Step 1" not in result.output


def test_read_only_check_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as root every folder is writable, so the refusal is simulated through os.access
    from softgrad.cli import derive as derive_module

    monkeypatch.setattr(derive_module.os, "access", lambda *_args, **_kw: False)
    result = _run("-n", "3", "--diagram", str(tmp_path / "d.png"))
    assert result.exit_code == 2, result.output
    assert f"the folder {str(tmp_path)!r} is read-only" in result.output
    assert "Step 1" not in result.output
