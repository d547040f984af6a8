"""The 'bridges' benchmark suite runs and reports one row per case (timings are not checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softgrad.bench import _suites, bridges


def test_quick_run_reports_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bridges.json"
    assert bridges.main(["--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    cases = list(bridges.cases(quick=True))
    assert [(r["framework"], r["op"], tuple(r["shape"]), r["dtype"]) for r in rows] == cases
    for r in rows:
        assert r["peer_ms"] > 0
        assert r["softgrad_ms"] > 0
        assert r["ratio"] == pytest.approx(r["peer_ms"] / r["softgrad_ms"])
        assert r["goal"] == bridges.GOALS[r["framework"], r["op"]]
        assert r["met"] == (r["ratio"] >= r["goal"])
    printed = capsys.readouterr().out
    assert printed.count("\n| ") == len(rows) + 1  # the header and one line per row
    assert "load average" in printed


def test_registered() -> None:
    assert _suites.load("bridges") is bridges
