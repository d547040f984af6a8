"""The benchmark suite runs and reports what it promises (values, never timings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numba")

from softgrad.bench import _run


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = {"softmax": [(64, 128)], "cross_entropy": [(64, 10)]}
    monkeypatch.setattr(_run, "QUICK_SHAPES", shapes)
    monkeypatch.setattr(_run, "copy_bandwidth", lambda nbytes, budget_s: (10.0, 0.0))


def test_main_writes_table_and_json(tiny: None, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bench.json"
    assert _run.main(["--quick", "--dtype", "float64", "--json", str(path)]) == 0
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


def test_cli_bench_is_registered(tiny: None) -> None:
    from click.testing import CliRunner

    from softgrad.cli import cli

    result = CliRunner().invoke(cli, ["bench", "--quick", "--dtype", "float32", "--op", "softmax"])
    assert result.exit_code == 0, result.output
    assert "× torch" in result.output
