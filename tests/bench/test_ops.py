"""The ops suite runs and reports what it promises (values, never timings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numba")

from softgrad.bench import ops


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = {"softmax": [(64, 128)], "cross_entropy": [(64, 10)]}
    monkeypatch.setattr(ops, "QUICK_SHAPES", shapes)
    monkeypatch.setattr(ops, "copy_bandwidth", lambda nbytes, budget_s: (10.0, 0.0))


def test_main_writes_table_and_json(tiny: None, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bench.json"
    assert ops.main(["--quick", "--dtype", "float64", "--json", str(path)]) == 0
    table = capsys.readouterr().out
    assert "| softmax | 64x128 | float64 | softgrad |" in table
    data = json.loads(path.read_text())
    impls = {r["impl"] for r in data["records"] if r["op"] == "softmax"}
    assert {"softgrad", "softgrad (Array API)", "numpy"} <= impls
    for r in data["records"]:
        assert r["median_ms"] > 0
        assert r["max_abs_err"] is None or r["max_abs_err"] < 1e-12
        assert r["copy_fraction"] == pytest.approx(r["gbps"] / 10.0)
    assert data["meta"]["copy_gbps"] == 10.0


def test_summary_follows_the_table_and_matches_the_records(
    tiny: None, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "bench.json"
    assert ops.main(["--quick", "--dtype", "float32", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    table_end = out.rindex("| cross_entropy | 64x10 | float32 |")
    assert out.index("## Summary") > table_end
    assert "goals met:" in out.splitlines()[-1]
    data = json.loads(path.read_text())
    assert [(s["op"], s["shape"]) for s in data["summary"]] == [
        ("softmax", [64, 128]),
        ("cross_entropy", [64, 10]),
    ]
    for s in data["summary"]:
        case = [r for r in data["records"] if r["op"] == s["op"] and r["shape"] == s["shape"]]
        ours = next(r for r in case if r["impl"] == "softgrad")
        peers = [r for r in case if not r["impl"].startswith("softgrad")]
        best = min(peers, key=lambda r: r["median_ms"])
        assert s["best_peer"] == best["impl"]
        assert s["vs_best_peer"] == pytest.approx(best["median_ms"] / ours["median_ms"])
        assert s["vs_torch"] == pytest.approx(ours["vs_torch"])


def test_cli_bench_is_registered(tiny: None) -> None:
    from click.testing import CliRunner

    from softgrad.cli import cli

    result = CliRunner().invoke(cli, ["bench", "--quick", "--dtype", "float32", "--op", "softmax"])
    assert result.exit_code == 0, result.output
    assert "× torch" in result.output
